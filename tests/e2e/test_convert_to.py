"""POST /lool/convert-to (and /cool/convert-to): LibreOffice Online's convert-to API over a
real socket, on both back-ends (issue 16).

The README's curl lines run unchanged (real curl); each format comes back as the right bytes
with the right headers; each refusal has its status and message in REST's envelope; the
caller is let in by address (void: nobody) or by admin or user credentials; the cap makes a
conversion wait and the time limit, waiting included, answers 503 or 504. After every
answer, refusals and a client that went away included, the work area is empty.
"""

from __future__ import annotations

import io
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from printing_support import ADMIN, image_bytes, odt_bytes, pdf_bytes, set_config_live
from pypdf import PdfReader
from support import LiveServer, require_programs, set_config, wait_until

from printsrv.documents import convert_to
from printsrv.operations.installation import Installation
from printsrv.people import users

LOOPBACK = "127.0.0.1/32, ::1"
# A PostScript program that never ends: Ghostscript runs until it is killed.
ENDLESS_POSTSCRIPT = b"%!PS\n{ 1 pop } loop\n"


@pytest.fixture
def server(installation: Installation) -> Iterator[LiveServer]:
    set_config(
        installation,
        {
            "api.convert.ip-addresses-allowed": LOOPBACK,
            "api.restful.auth.username": ADMIN[0],
            "api.restful.auth.password": ADMIN[1],
        },
    )
    live = LiveServer(installation).start()
    yield live
    live.stop()


@pytest.fixture
def user(installation: Installation) -> tuple[str, str]:
    with installation.db.transaction() as session:
        users.add_user(session, "janet")
        return ("janet", users.issue_uuid(session, "janet", hasher=installation.hasher))


def work_area(installation: Installation) -> list[Path]:
    """What is left under the installation's work area (PRINTSRV_HOME/tmp)."""
    tmp = installation.env.home / "tmp"
    while True:
        try:
            return sorted(tmp.rglob("*")) if tmp.exists() else []
        except FileNotFoundError:
            # The server removed a directory while it was being listed (CI saw it while a
            # refused upload was cleaned up): list again.
            continue


def post(
    server: LiveServer,
    name: str,
    content: bytes,
    format: str | None = "pdf",
    *,
    prefix: str = "/lool",
    **options: object,
) -> httpx.Response:
    path = f"{prefix}/convert-to" + (f"/{format}" if format else "")
    fields = options.pop("data", None)
    return httpx.post(
        server.url + path,
        files={"data": (name, content)},
        data=fields,  # type: ignore[arg-type]
        timeout=60,
        **options,  # type: ignore[arg-type]
    )


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def png_size(content: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR, after checking its signature."""
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    assert content[12:16] == b"IHDR"
    width, height = struct.unpack(">II", content[16:24])
    return width, height


def assert_refused(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["succes"] is False
    for word in words:
        assert word in body["error"], body["error"]


# --- the README's curl lines ---------------------------------------------------------------


def test_the_readme_curl_lines_work_unchanged(
    server: LiveServer, installation: Installation, tmp_path: Path
) -> None:
    require_programs("curl", "soffice")
    (tmp_path / "test.txt").write_text("Hello from convert-to\n")
    (tmp_path / "test.odt").write_bytes(odt_bytes("Hello from an odt"))
    host_port = f"127.0.0.1:{server.port}"
    lines = [
        f'curl -F "data=@test.txt" http://{host_port}/lool/convert-to/pdf > out.pdf',
        f'curl -F "data=@test.odt" -F "format=pdf" http://{host_port}/lool/convert-to > out2.pdf',
    ]
    for line in lines:
        # The lines as a user types them, redirection included: a shell runs them.
        subprocess.run(line, shell=True, cwd=tmp_path, check=True, timeout=120)  # noqa: S602
    assert "Hello from convert-to" in pdf_text((tmp_path / "out.pdf").read_bytes())
    assert "Hello from an odt" in pdf_text((tmp_path / "out2.pdf").read_bytes())
    assert work_area(installation) == []


# --- formats -------------------------------------------------------------------------------


def test_text_to_pdf_with_its_headers_on_both_paths(
    server: LiveServer, installation: Installation
) -> None:
    for prefix in ("/lool", "/cool"):
        response = post(server, "notes.txt", b"Minutes of the meeting\n", prefix=prefix)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["content-disposition"] == 'attachment; filename="notes.pdf"'
        assert "Minutes of the meeting" in pdf_text(response.content)
    assert work_area(installation) == []


def test_pdf_to_png_one_page_at_the_width_asked(
    server: LiveServer, installation: Installation
) -> None:
    document = pdf_bytes(3)
    default = post(server, "report.pdf", document, "png")
    assert default.status_code == 200, default.text
    assert default.headers["content-type"] == "image/png"
    assert default.headers["content-disposition"] == 'attachment; filename="report.png"'
    assert png_size(default.content) == (1024, 1448)  # A4's proportions

    second = post(server, "report.pdf", document, "png", data={"page": "2", "width": "300"})
    assert second.status_code == 200, second.text
    with Image.open(io.BytesIO(second.content)) as picture:
        assert picture.size == (300, 424)
        assert picture.format == "PNG"
    assert second.content != default.content
    assert work_area(installation) == []


def test_pdf_to_text_and_the_format_as_a_form_field(
    server: LiveServer, installation: Installation
) -> None:
    response = post(server, "report.pdf", pdf_bytes(3), None, data={"format": "txt"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="report.txt"'
    pages = response.text.split("\f")
    assert len(pages) == 3
    assert "printsrv test page 2 of 3" in pages[1]
    assert work_area(installation) == []


def test_an_image_becomes_a_pdf_page(server: LiveServer, installation: Installation) -> None:
    response = post(server, "photo.jpg", image_bytes("JPEG"))
    assert response.status_code == 200, response.text
    assert len(PdfReader(io.BytesIO(response.content)).pages) == 1
    assert work_area(installation) == []


def raw_post(server: LiveServer, file_name: bytes, content: bytes) -> httpx.Response:
    """A multipart body with the file name as these bytes (httpx would escape some)."""
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\n".encode()
        + b'Content-Disposition: form-data; name="data"; filename="'
        + file_name
        + b'"\r\n\r\n'
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return httpx.post(
        f"{server.url}/lool/convert-to/pdf",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=30,
    )


def test_the_file_name_is_made_safe(server: LiveServer, installation: Installation) -> None:
    for sent, header in [
        (b"..\\evil'name;.txt", 'attachment; filename="evilname.pdf"'),
        (b"../../etc/pass\x01wd", 'attachment; filename="passwd.pdf"'),
        (b"C:\\Users\\x\\a b.txt", 'attachment; filename="a b.pdf"'),
        (b"", 'attachment; filename="document.pdf"'),
        (b"...", 'attachment; filename="document.pdf"'),
        (
            "\u00dcbung.txt".encode(),
            "attachment; filename=\"_bung.pdf\"; filename*=UTF-8''%C3%9Cbung.pdf",
        ),
    ]:
        response = raw_post(server, sent, b"text\n")
        assert response.status_code == 200, (sent, response.text)
        assert response.headers["content-disposition"] == header
    assert work_area(installation) == []


# --- refusals ------------------------------------------------------------------------------

# (name, content, format in the path, form fields, status, words of the message)
REFUSALS: list[tuple[str, bytes, str | None, dict[str, str], int, tuple[str, ...]]] = [
    ("a.txt", b"text", "docx", {}, 400, ("Unknown format 'docx'", "pdf, png or txt")),
    ("a.txt", b"text", None, {}, 400, ("Name the format",)),
    ("a.pdf", pdf_bytes(1), "png", {"page": "2"}, 400, ("page 2 is past the end",)),
    ("a.pdf", pdf_bytes(1), "png", {"width": "0"}, 400, ("width '0'",)),
    ("a.gz", b"\x1f\x8b\x08\x00" + bytes(60), "pdf", {}, 415, ("application/gzip",)),
    ("invoice.pdf", image_bytes("PNG"), "pdf", {}, 415, ("content is image/png",)),
    ("empty.txt", b"", "pdf", {}, 415, ("an empty file",)),
    ("broken.pdf", b"%PDF-1.7\nnothing here", "pdf", {}, 422, ("damaged", "broken")),
    ("broken.png", image_bytes("PNG")[:60], "pdf", {}, 422, ("damaged", "image is broken")),
]


@pytest.mark.parametrize(
    ("name", "content", "format", "fields", "status", "words"),
    REFUSALS,
    ids=[f"{r[4]}-{r[0]}-{r[2]}" for r in REFUSALS],
)
def test_each_refusal_has_its_status_and_message(
    server: LiveServer,
    installation: Installation,
    name: str,
    content: bytes,
    format: str | None,
    fields: dict[str, str],
    status: int,
    words: tuple[str, ...],
) -> None:
    assert_refused(post(server, name, content, format, data=fields), status, *words)
    assert work_area(installation) == []


def test_a_body_without_the_data_field_is_a_400(
    server: LiveServer, installation: Installation
) -> None:
    response = httpx.post(
        f"{server.url}/lool/convert-to/pdf", files={"file": ("a.txt", b"text")}, timeout=30
    )
    assert_refused(response, 400, "multipart field 'data'")
    not_multipart = httpx.post(f"{server.url}/lool/convert-to/pdf", content=b"text", timeout=30)
    assert_refused(not_multipart, 400, "multipart/form-data")
    assert work_area(installation) == []


def test_a_file_over_max_bytes_is_a_413(server: LiveServer, installation: Installation) -> None:
    set_config_live(installation, {"api.convert.max-bytes": "2048"})
    assert_refused(post(server, "big.txt", b"x" * 4096), 413, "2048 byte limit")
    # Streamed without a length (chunked): refused as the bytes pass the cap.
    boundary = "b0undary"

    def body() -> Iterator[bytes]:
        yield (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="data"; filename="big.txt"\r\n\r\n'
        ).encode()
        for _ in range(300):
            yield b"x" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    response = httpx.post(
        f"{server.url}/lool/convert-to/pdf",
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=30,
    )
    assert_refused(response, 413, "2048 byte limit")
    assert post(server, "small.txt", b"x" * 1000).status_code == 200
    assert work_area(installation) == []


def test_a_client_that_goes_away_mid_upload_leaves_nothing(
    server: LiveServer, installation: Installation
) -> None:
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="data"; filename="a.txt"\r\n\r\n'
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /lool/convert-to/pdf HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Type: multipart/form-data; boundary={boundary}\r\n".encode()
            + b"Content-Length: 100000\r\n\r\n"
            + head
            + b"x" * 5000
        )
        # Generous limits: a loaded machine once took more than 5 s (CI); a fast one returns
        # as soon as the condition holds.
        wait_until(lambda: work_area(installation), timeout=30)  # the upload is being written
    wait_until(lambda: work_area(installation) == [], timeout=30)


# --- who may call --------------------------------------------------------------------------


def test_the_address_allowlist_void_lets_nobody_in(
    server: LiveServer, installation: Installation, user: tuple[str, str]
) -> None:
    set_config_live(installation, {"api.convert.ip-addresses-allowed": ""})
    assert_refused(post(server, "a.txt", b"text"), 403, "127.0.0.1 is not allowed")
    # Credentials let a caller in from any address.
    assert post(server, "a.txt", b"text", auth=ADMIN).status_code == 200
    assert post(server, "a.txt", b"text", auth=user).status_code == 200
    # Wrong ones are a 401, even from an allowed address.
    assert_refused(post(server, "a.txt", b"text", auth=(ADMIN[0], "wrong")), 401)
    assert_refused(post(server, "a.txt", b"text", auth=(user[0], "not-the-uuid")), 401)
    assert_refused(post(server, "a.txt", b"text", auth=("nobody", "x")), 401)
    set_config_live(installation, {"api.convert.ip-addresses-allowed": "10.0.0.0/8"})
    assert_refused(post(server, "a.txt", b"text"), 403)
    set_config_live(installation, {"api.convert.ip-addresses-allowed": "127.0.0.0/8"})
    assert post(server, "a.txt", b"text").status_code == 200
    assert_refused(post(server, "a.txt", b"text", auth=("nobody", "x")), 401)
    assert work_area(installation) == []


def test_credentials_off_loopback_need_tls(
    server: LiveServer, installation: Installation, user: tuple[str, str]
) -> None:
    set_config_live(
        installation,
        {"server.trusted-proxies": "127.0.0.1/32", "api.convert.ip-addresses-allowed": ""},
    )
    remote = {"X-Forwarded-For": "192.0.2.10"}
    plain = post(server, "a.txt", b"text", auth=user, headers=remote)
    assert_refused(plain, 403, "TLS is required")
    https = {**remote, "X-Forwarded-Proto": "https"}
    assert post(server, "a.txt", b"text", auth=user, headers=https).status_code == 200
    assert_refused(post(server, "a.txt", b"text", headers=https), 403, "192.0.2.10")


def test_the_admin_is_held_to_the_rest_admin_allowlist(
    server: LiveServer, installation: Installation
) -> None:
    set_config_live(installation, {"api.restful.ip-addresses-allowed": "10.0.0.0/8"})
    assert_refused(post(server, "a.txt", b"text", auth=ADMIN), 403, "admin services")


# --- the cap and the time limit ------------------------------------------------------------


def _in_background(call: object) -> tuple[threading.Thread, list[httpx.Response]]:
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(call()))  # type: ignore[operator]
    thread.start()
    return thread, answers


def test_a_conversion_over_the_time_limit_is_a_504(
    server: LiveServer, installation: Installation
) -> None:
    require_programs("gs")
    set_config_live(installation, {"api.convert.timeout-secs": "2"})
    started = time.monotonic()
    response = post(server, "loop.ps", ENDLESS_POSTSCRIPT)
    assert 1.5 < time.monotonic() - started < 10
    assert_refused(response, 504, "took longer than 2 s", "api.convert.timeout-secs")
    assert work_area(installation) == []


def test_above_the_cap_a_conversion_waits_its_turn(
    server: LiveServer, installation: Installation
) -> None:
    require_programs("gs")
    set_config_live(
        installation, {"api.convert.max-parallel": "1", "api.convert.timeout-secs": "4"}
    )
    slow, slow_answer = _in_background(lambda: post(server, "loop.ps", ENDLESS_POSTSCRIPT))
    wait_until(lambda: convert_to.running() == 1, timeout=30)
    time.sleep(0.5)
    started = time.monotonic()
    waiting = post(server, "a.txt", b"waited for its turn\n")  # deadline 0.5 s after the slow one's
    waited = time.monotonic() - started
    slow.join(30)
    assert_refused(slow_answer[0], 504)
    assert waiting.status_code == 200, waiting.text
    assert 2.5 < waited < 4.5
    assert "waited for its turn" in pdf_text(waiting.content)
    assert convert_to.running() == 0
    assert work_area(installation) == []


def test_waiting_past_the_time_limit_is_a_503_with_retry_after(
    server: LiveServer, installation: Installation
) -> None:
    require_programs("gs")
    set_config_live(
        installation, {"api.convert.max-parallel": "1", "api.convert.timeout-secs": "5"}
    )
    slow, slow_answer = _in_background(lambda: post(server, "loop.ps", ENDLESS_POSTSCRIPT))
    wait_until(lambda: convert_to.running() == 1, timeout=30)
    # The time limit in force when a request comes is its own.
    set_config_live(installation, {"api.convert.timeout-secs": "1"})
    started = time.monotonic()
    busy = post(server, "a.txt", b"text\n")
    assert 0.9 < time.monotonic() - started < 3
    assert_refused(busy, 503, "busy")
    assert busy.headers["retry-after"] == "1"
    slow.join(30)
    assert_refused(slow_answer[0], 504, "took longer than 5 s")
    assert work_area(installation) == []
