"""POST /restful/v1/jobs, GET /jobs/{key} and /jobs/{key}/files/{name} over a real socket."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from support import LiveServer, set_config, wait_until

import financial
from printsrv.accounts import service as accounting
from printsrv.jobs import service as jobs
from printsrv.jobs.models import Job
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.platform.models import utcnow

ADMIN = ("admin", "s3cret-admin-pw")
SECRET = "jobs-jwt-secret-0123456789abcdef-xyz"
ADMIN_ACTOR = accounting.admin_actor("admin")
REPORT = {"select": {"account_name": "rijk"}, "media_type": "CSV"}


@pytest.fixture
def server(installation: Installation) -> Iterator[LiveServer]:
    set_config(
        installation,
        {"api.restful.auth.username": ADMIN[0], "api.restful.auth.password": ADMIN[1]},
    )
    with installation.db.transaction() as session:
        users.add_user(session, "rijk")
        users.add_user(session, "alice")
        users.add_user(session, "bob")
        account = financial.get_account(session, "USER", "rijk")
        for n in range(300):
            financial.adjust_balance(
                session, account=account, amount="0.25", comment=f"row {n}", actor=ADMIN_ACTOR
            )
    live = LiveServer(installation).start()
    yield live
    live.stop()


def uuid_of(installation: Installation, name: str) -> tuple[str, str]:
    with installation.db.transaction() as session:
        return name, users.issue_uuid(session, name, hasher=installation.hasher)


def post(server: LiveServer, body: Any, *, auth: Any = ADMIN) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{server.url}/restful/v1/jobs",
        content=content,
        auth=auth,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )


def poll_to_end(server: LiveServer, key: str, *, auth: Any = ADMIN) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    def ended() -> dict[str, Any] | None:
        answer = post(server, {"async": True, "key": key}, auth=auth)
        assert answer.status_code == 200, answer.text
        seen.append(answer.json())
        return seen[-1] if seen[-1]["end"] else None

    final = wait_until(ended, timeout=60, interval=0.05)
    for partial in seen[:-1]:
        assert partial["key"] == key and partial["end"] is False
        assert 0 <= partial["progress"] <= 100
    return final


def sync_report(server: LiveServer, body: Any) -> bytes:
    response = httpx.post(
        f"{server.url}/restful/v1/reports/accounttrx", json=body, auth=ADMIN, timeout=60
    )
    assert response.status_code == 200, response.text
    return response.content


def job_rows(installation: Installation) -> int:
    with installation.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


def test_async_report_polled_to_the_end_matches_the_sync_csv(server: LiveServer) -> None:
    first = post(server, {"async": True, "type": "report.accounttrx", "argument": REPORT})
    assert first.status_code == 200, first.text
    key = first.json()["key"]
    assert first.json() == {"key": key, "end": False}
    final = poll_to_end(server, key)
    url = f"{server.url}/restful/v1/jobs/{key}/files/accounttrx.csv"
    assert final == {"key": key, "end": True, "urls": {"accounttrx.csv": url}}
    # GET polls answer the same.
    polled = httpx.get(f"{server.url}/restful/v1/jobs/{key}", auth=ADMIN)
    assert polled.json() == final
    download = httpx.get(url, auth=ADMIN)
    assert download.status_code == 200, download.text
    assert download.headers["content-type"].startswith("text/csv")
    assert int(download.headers["content-length"]) == len(download.content)
    assert download.content == sync_report(server, REPORT)
    assert download.content.count(b"\r\n") == 301


def test_async_pdf_report_has_the_sync_reports_pages(server: LiveServer) -> None:
    body = {**REPORT, "media_type": "PDF"}
    key = post(server, {"async": True, "type": "report.accounttrx", "argument": body}).json()["key"]
    final = poll_to_end(server, key)
    (name, url), *_ = final["urls"].items()
    assert name == "accounttrx.pdf"
    ours = PdfReader(io.BytesIO(httpx.get(url, auth=ADMIN).content))
    theirs = PdfReader(io.BytesIO(sync_report(server, body)))
    assert len(ours.pages) == len(theirs.pages) >= 2
    # Page by page the same, but for the moment each was generated at.
    for mine, sync in zip(ours.pages, theirs.pages, strict=True):
        lines = [line for line in mine.extract_text().splitlines() if "Generated" not in line]
        others = [line for line in sync.extract_text().splitlines() if "Generated" not in line]
        assert lines == others


def test_a_synchronous_request_waits_for_the_end(server: LiveServer) -> None:
    answer = post(server, {"async": False, "type": "report.accounttrx", "argument": REPORT})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["end"] is True and list(body["urls"]) == ["accounttrx.csv"]
    again = post(server, {"key": body["key"]})  # "async" left out: false, as in the seed
    assert again.json() == body


def test_a_failed_generation_is_answered_with_its_code(
    server: LiveServer, installation: Installation
) -> None:
    key = post(server, {"async": True, "type": "report.accounttrx", "argument": REPORT}).json()[
        "key"
    ]
    poll_to_end(server, key)
    # A job whose account vanished between request and run: the input cannot be read.
    with installation.db.transaction() as session:
        view = jobs.create_job(
            session,
            job_type="report.accounttrx",
            argument={"select": {"account_name": "nobody-at-all"}},
            owner=jobs.Owner.admin("admin"),
        )
    final = poll_to_end(server, view.key)
    assert final["end"] is True and final["error"] == -4
    assert "nobody-at-all" in final["message"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"async": True, "type": "printer.melt"}, 400, "'type' is 'printer.melt'"),
        ({"async": True}, 400, "'type' is missing"),
        ({"async": "yes", "type": "backup"}, 400, "'async'"),
        ({"async": True, "type": "backup", "colour": 1}, 400, "'colour' is not known"),
        ({"async": True, "type": "backup", "argument": {"to": "/tmp"}}, 400, "'argument.to'"),
        (
            {"async": True, "type": "report.accounttrx", "argument": {"select": {"x": 1}}},
            400,
            "'argument.select.x' is not known",
        ),
        (
            {"async": True, "type": "report.accounttrx", "argument": {"media_type": "XLS"}},
            400,
            "'argument.media_type'",
        ),
        (
            {
                "async": True,
                "type": "report.accounttrx",
                "argument": {"select": {"account_name": "ghost"}},
            },
            404,
            "ghost",
        ),
        ({"async": True, "key": "nope", "type": "backup"}, 400, "'type' is not expected"),
        ({"async": True, "key": "no-such-key"}, 404, "no-such-key"),
        (b"{not json", 400, "not valid JSON"),
        ({"async": True, "type": "users.sync"}, 400, "auth.method"),
    ],
)
def test_bad_requests_are_refused_in_the_rest_envelope_and_write_nothing(
    server: LiveServer, installation: Installation, body: Any, status: int, words: str
) -> None:
    answer = post(server, body)
    assert answer.status_code == status, answer.text
    assert answer.json()["succes"] is False
    assert words in answer.json()["error"]
    assert job_rows(installation) == 0


def test_another_callers_key_is_answered_as_a_missing_one(
    server: LiveServer, installation: Installation
) -> None:
    key = post(server, {"async": True, "type": "report.accounttrx", "argument": REPORT}).json()[
        "key"
    ]
    final = poll_to_end(server, key)
    alice, bob = uuid_of(installation, "alice"), uuid_of(installation, "bob")
    with installation.db.transaction() as session:
        bobs = jobs.create_job(
            session,
            job_type="report.accounttrx",
            argument=REPORT,
            owner=jobs.Owner.user(users.get_user(session, "bob").id, "bob"),
        ).key
    for url in (
        f"{server.url}/restful/v1/jobs/{key}",
        f"{server.url}/restful/v1/jobs/{bobs}",
        final["urls"]["accounttrx.csv"],
    ):
        theirs = httpx.get(url, auth=alice)
        assert theirs.status_code == 404, theirs.text
    missing = httpx.get(f"{server.url}/restful/v1/jobs/{'x' * len(key)}", auth=alice)
    foreign = httpx.get(f"{server.url}/restful/v1/jobs/{bobs}", auth=alice)
    assert missing.status_code == foreign.status_code == 404
    assert missing.json()["error"].replace("x" * len(key), "K") == foreign.json()["error"].replace(
        bobs, "K"
    )
    # Bob reads his; the admin does not read a user's job either.
    assert httpx.get(f"{server.url}/restful/v1/jobs/{bobs}", auth=bob)
    assert httpx.get(f"{server.url}/restful/v1/jobs/{bobs}", auth=ADMIN).status_code == 404
    # A user may not start an admin job.
    refused = post(server, {"async": True, "type": "backup"}, auth=alice)
    assert refused.status_code == 403, refused.text
    wrong = httpx.get(f"{server.url}/restful/v1/jobs/{key}", auth=("alice", "wrong"))
    assert wrong.status_code == 401


def test_a_result_fetched_after_its_ttl_is_gone(
    server: LiveServer, installation: Installation
) -> None:
    set_config(installation, {"api.jobs.result-ttl-secs": "2"})
    time.sleep(0.6)  # the runner reads the TTL from its refreshed config
    answer = post(server, {"async": False, "type": "report.accounttrx", "argument": REPORT})
    key, url = answer.json()["key"], answer.json()["urls"]["accounttrx.csv"]
    assert httpx.get(url, auth=ADMIN).status_code == 200
    poll = f"{server.url}/restful/v1/jobs/{key}"
    assert httpx.get(poll, auth=ADMIN).status_code == 200
    with installation.db.read() as session:
        expires_at = session.get(Job, key).expires_at  # type: ignore[union-attr]
    time.sleep(max(0.0, (expires_at - utcnow()).total_seconds()) + 0.1)
    late = httpx.get(url, auth=ADMIN)
    assert late.status_code == 410, late.text
    assert late.json()["succes"] is False
    assert httpx.get(poll, auth=ADMIN).status_code == 410, "even where the answer was cached"
    jobs.purge_expired(installation.db, ttl_secs=3600)
    assert httpx.get(url, auth=ADMIN).status_code == 410
    assert httpx.get(poll, auth=ADMIN).status_code == 410


def token(payload: dict[str, Any], secret: str = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=alg)


def unsigned(payload: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def test_with_a_jwt_secret_only_a_good_token_passes(
    server: LiveServer, installation: Installation
) -> None:
    request = {"async": True, "type": "report.accounttrx", "argument": REPORT}
    token_less = post(server, {"async": True, "token": token(request)})
    assert token_less.status_code == 400, "a token without a secret set is a mistake"
    set_config(installation, {"api.jobs.jwt-secret": SECRET})
    wait_until(lambda: post(server, request).status_code == 403, timeout=5)
    before = job_rows(installation)  # requests sent before the secret was in force ran
    for bad in (
        request,  # no token at all
        {"token": token(request, secret="another-secret-of-enough-length-0000")},
        {"token": unsigned(request)},
        {"token": token(request, secret=SECRET * 2, alg="HS512")},
        {"token": "not.a.jwt"},
        {"token": token({**request, "exp": int(time.time()) - 60})},
    ):
        refused = post(server, bad)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == -8, refused.text
        assert "message" in refused.json()
    assert job_rows(installation) == before
    good = post(server, {"token": token({**request, "iat": int(time.time())})})
    assert good.status_code == 200, good.text
    key = good.json()["key"]
    final = post(server, {"token": token({"async": False, "key": key})})
    assert final.json()["end"] is True and "urls" in final.json()
    with installation.db.read() as session:
        from printsrv.platform.models import ConfigProperty

        stored = session.get(ConfigProperty, "api.jobs.jwt-secret")
        assert stored is not None and SECRET not in stored.value


def stored_document(installation: Installation, owner: str, tmp_path: Any) -> int:
    """A document of `owner` in the log, its PDF (two pages of text) in the store."""
    from reportlab.pdfgen import canvas

    from printsrv.documents import log
    from printsrv.documents.store import PdfStore

    source = tmp_path / f"{owner}.pdf"
    drawing = canvas.Canvas(str(source))
    for page in ("first page words", "second page words"):
        drawing.drawString(72, 720, page)
        drawing.showPage()
    drawing.save()
    size = source.stat().st_size
    stored = PdfStore(installation.env.home).put(source)  # moves the file into the store
    with installation.db.transaction() as session:
        return log.log_upload(
            session,
            user=users.get_user(session, owner),
            title="minutes.pdf",
            pdf=stored,
            pages=2,
            source_type="pdf",
            source_bytes=size,
            source_sha256=stored.sha256,
            client_address="127.0.0.1",
            queue_name="webservice",
            ipp_options="{}",
            ext_id=None,
        ).id


def test_a_user_converts_their_own_document_and_no_one_elses(
    server: LiveServer, installation: Installation, tmp_path: Any
) -> None:
    alice, bob = uuid_of(installation, "alice"), uuid_of(installation, "bob")
    alices = stored_document(installation, "alice", tmp_path)
    bobs = stored_document(installation, "bob", tmp_path)
    request = {"async": False, "type": "convert", "argument": {"document": alices, "format": "txt"}}
    answer = post(server, request, auth=alice)
    assert answer.status_code == 200, answer.text
    (name, url), *_ = answer.json()["urls"].items()
    assert name == "minutes.txt"
    text = httpx.get(url, auth=alice)
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert "first page words" in text.text and "second page words" in text.text
    assert httpx.get(url, auth=bob).status_code == 404
    # bob's document is refused to alice as if it did not exist; nothing is queued.
    before = job_rows(installation)
    for document in (bobs, 999_999):
        refused = post(
            server,
            {"async": True, "type": "convert", "argument": {"document": document, "format": "png"}},
            auth=alice,
        )
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"] == f"Document {document} does not exist"
    assert job_rows(installation) == before
    # The admin converts anyone's: a PNG of page 2.
    png = post(
        server,
        {
            "async": False,
            "type": "convert",
            "argument": {"document": bobs, "format": "png", "page": 2, "width": 200},
        },
    )
    assert png.status_code == 200, png.text
    picture = httpx.get(png.json()["urls"]["minutes.png"], auth=ADMIN).content
    assert picture.startswith(b"\x89PNG")
    for argument, words in (
        ({"format": "pdf"}, "'argument.document' is missing"),
        ({"document": alices, "format": "docx"}, "Unknown format"),
        ({"document": "1", "format": "pdf"}, "'argument.document'"),
        ({"document": alices, "format": "png", "page": 0}, "'argument.page'"),
    ):
        bad = post(server, {"async": True, "type": "convert", "argument": argument}, auth=alice)
        assert bad.status_code == 400 and words in bad.json()["error"], bad.text
