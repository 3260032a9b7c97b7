"""GET /restful/v1/user/documents: a user's own uploads and prints, with the admin log's
parameters and shape, authenticated with the user's name and UUID, over a real socket on
both back-ends (issue 14, item 11)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from printing_support import (
    ADMIN,
    PrintSetup,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    upload,
)
from sqlalchemy import func, select, update
from support import LiveServer

from printsrv.accounts.models import IdempotencyKey
from printsrv.documents.models import Document
from printsrv.people import users
from printsrv.printing.models import PrintJob

PATH = "/restful/v1/user/documents"


@pytest.fixture
def server(printing_setup: PrintSetup) -> Iterator[LiveServer]:  # noqa: F811
    live = LiveServer(printing_setup.installation).start()
    yield live
    live.stop()


@pytest.fixture
def rijk(printing_setup: PrintSetup) -> tuple[str, str]:  # noqa: F811
    """A second user, with a UUID."""
    installation = printing_setup.installation
    with installation.db.transaction() as session:
        users.add_user(session, "rijk")
        return ("rijk", users.issue_uuid(session, "rijk", hasher=installation.hasher))


@pytest.fixture
def logged(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    rijk: tuple[str, str],
) -> dict[str, int]:
    """janet: three uploads a day apart (B with an ext_id) and a print of B; rijk: two uploads
    and a print, interleaved in time with janet's."""
    setup = printing_setup
    ids: dict[str, int] = {}
    for name, auth, ext_id in (
        ("A.pdf", setup.auth, ""),
        ("rijk-1.pdf", rijk, ""),
        ("B.pdf", setup.auth, "b-ref"),
        ("rijk-2.pdf", rijk, "b-ref"),  # the same ext_id as janet's: each user has their own
        ("C.pdf", setup.auth, ""),
    ):
        fields = {"ext_id": ext_id} if ext_id else {}
        response = upload(server.url, auth, name, pdf_bytes(1, text=name), **fields)
        assert response.status_code == 200, response.text
        ids[name] = response.json()["id"]
    for name, auth in (("B.pdf", setup.auth), ("rijk-2.pdf", rijk)):
        released = httpx.post(
            f"{server.url}/restful/v1/documents/{ids[name]}/print",
            auth=auth,
            data={"printer": "null"},
        )
        assert released.status_code == 200, released.text
    with setup.installation.db.transaction() as session:
        for name in ("B.pdf", "rijk-2.pdf"):
            ids[f"print {name}"] = session.scalars(
                select(Document.id).where(Document.source_id == ids[name])
            ).one()
        base = datetime(2019, 9, 12, 7, 49, 48, tzinfo=UTC)
        order = ["A.pdf", "rijk-1.pdf", "B.pdf", "rijk-2.pdf", "C.pdf"]
        order += ["print B.pdf", "print rijk-2.pdf"]
        for offset, name in enumerate(order):
            session.execute(
                update(Document)
                .where(Document.id == ids[name])
                .values(created_at=base + timedelta(hours=12 * offset))
            )
    for job in setup.jobs():
        setup.wait_job(job.id)
    return ids


def mine(server: LiveServer, auth: tuple[str, str], **params: str) -> httpx.Response:
    return httpx.get(f"{server.url}{PATH}", params=params, auth=auth)


def admin_view(server: LiveServer, **params: str) -> list[dict[str, object]]:
    response = httpx.get(f"{server.url}/restful/v1/documents", params=params, auth=ADMIN)
    assert response.status_code == 200, response.text
    return list(response.json())


def test_a_user_sees_only_their_own_entries_in_the_admin_logs_shape(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    logged: dict[str, int],
) -> None:
    response = mine(server, printing_setup.auth, limit="10")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert [d["id"] for d in body] == [
        logged["print B.pdf"], logged["C.pdf"], logged["B.pdf"], logged["A.pdf"]
    ]  # fmt: skip
    # Entry for entry what the admin's log shows of the same documents.
    everything = {d["id"]: d for d in admin_view(server, limit="10")}
    assert body == [everything[d["id"]] for d in body]
    printed = body[0]
    assert printed["type"] == "print" and printed["ext_id"] == "b-ref"
    assert printed["status"] == "completed" and printed["job"]["printer"] == "null"


def test_default_paging_sort_type_and_dates_as_in_the_admin_log(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    logged: dict[str, int],
) -> None:
    auth = printing_setup.auth
    assert len(mine(server, auth).json()) == 4  # five by default; janet has four
    ascending = mine(server, auth, sort="+created").json()
    assert [d["id"] for d in ascending] == [
        logged["A.pdf"], logged["B.pdf"], logged["C.pdf"], logged["print B.pdf"]
    ]  # fmt: skip
    assert [d["id"] for d in mine(server, auth, type="print").json()] == [logged["print B.pdf"]]
    assert [d["id"] for d in mine(server, auth, type="out").json()] == [logged["print B.pdf"]]
    uploads = mine(server, auth, type="in", limit="2", page="1").json()
    assert [d["id"] for d in uploads] == [logged["A.pdf"]]
    assert mine(server, auth, type="in", limit="2", page="2").json() == []
    window = mine(
        server, auth, sort="+created", created_gte="2019-09-13T00:00:00+00:00",
        created_lte="2019-09-14T23:59:59+00:00",
    ).json()  # fmt: skip
    # B (13th), C and B's print (14th); rijk's upload on the 13th is not janet's.
    assert [d["id"] for d in window] == [logged["B.pdf"], logged["C.pdf"], logged["print B.pdf"]]


def test_the_other_user_sees_theirs(
    server: LiveServer, logged: dict[str, int], rijk: tuple[str, str]
) -> None:
    body = mine(server, rijk, limit="10").json()
    assert [d["id"] for d in body] == [
        logged["print rijk-2.pdf"], logged["rijk-2.pdf"], logged["rijk-1.pdf"]
    ]  # fmt: skip


def _state(setup: PrintSetup) -> tuple[int, int, int]:
    with setup.installation.db.read() as session:
        return (
            int(session.scalar(select(func.count()).select_from(Document)) or 0),
            int(session.scalar(select(func.count()).select_from(PrintJob)) or 0),
            int(session.scalar(select(func.count()).select_from(IdempotencyKey)) or 0),
        )


@pytest.mark.parametrize(
    "auth",
    [
        None,
        ("janet", "00000000-0000-0000-0000-000000000000"),  # wrong UUID
        ("nobody", "00000000-0000-0000-0000-000000000000"),  # unknown user
        ADMIN,  # the REST admin is not a user
        ("rijk", "RIJK"),  # a user's name with another user's UUID (filled in below)
    ],
)
def test_wrong_credentials_are_401_in_the_envelope(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    logged: dict[str, int],
    rijk: tuple[str, str],
    auth: tuple[str, str] | None,
) -> None:
    if auth == ("rijk", "RIJK"):
        auth = ("rijk", printing_setup.uuid)
    before = _state(printing_setup)
    # Bad parameters too: the credentials are checked first.
    response = httpx.get(f"{server.url}{PATH}", params={"limit": "0"}, auth=auth)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    body = response.json()
    assert body["succes"] is False and body["error"]
    if auth is not None:
        assert body["error"] == "Unknown user or wrong UUID"  # one message for every failure
    assert _state(printing_setup) == before


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"type": "everything"}, "type 'everything'"),
        ({"sort": "title"}, "sort 'title'"),
        ({"limit": "0"}, "limit 0"),
        ({"limit": "1001"}, "limit 1001"),
        ({"limit": "ten"}, "limit 'ten'"),
        ({"page": "-1"}, "page '-1'"),
        ({"created_gte": "yesterday"}, "created_gte 'yesterday'"),
        ({"created_lte": "2019-13-45"}, "created_lte '2019-13-45'"),
    ],
)
def test_bad_paging_and_filters_are_400_in_the_envelope(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
    params: dict[str, str],
    words: str,
) -> None:
    before = _state(printing_setup)
    response = mine(server, printing_setup.auth, **params)
    assert response.status_code == 400
    body = response.json()
    assert body["succes"] is False and words in body["error"]
    assert _state(printing_setup) == before


def test_only_get(printing_setup: PrintSetup, server: LiveServer) -> None:  # noqa: F811
    response = httpx.post(f"{server.url}{PATH}", auth=printing_setup.auth)
    assert response.status_code == 405 and response.json()["succes"] is False
