"""Bad input to POST /restful/v1/documents/print: each gets the right 4xx with a message, and
nothing is charged, logged or left on disk."""

from __future__ import annotations

import contextlib
import io
import socket
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from printing_support import (
    PrintSetup,
    image_bytes,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    set_config_live,
    stored_files,
    upload,
)
from pypdf import PdfWriter
from sqlalchemy import func, select
from support import LiveServer

from financial.schema import AccountTrx
from printsrv.documents.models import Document
from printsrv.printing import queues
from printsrv.printing.models import PrintJob


@pytest.fixture
def server(printing_setup: PrintSetup) -> Iterator[LiveServer]:  # noqa: F811
    setup = printing_setup
    setup.set_cost("capture", "0.10")
    with setup.installation.db.transaction() as session:
        queues.add_queue(session, "lab", printer="capture")
        queues.add_queue(session, "closed", printer="capture")
        queues.set_enabled(session, "closed", False)
        queues.add_queue(session, "remote-only", printer="capture", ip_allowed="10.0.0.0/8")
    live = LiveServer(setup.installation).start()
    yield live
    live.stop()


def assert_nothing_happened(setup: PrintSetup) -> None:
    with setup.installation.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Document)) == 0
        assert session.scalar(select(func.count()).select_from(PrintJob)) == 0
        charges = session.scalar(
            select(func.count()).select_from(AccountTrx).where(AccountTrx.trx_type == "PRINT_OUT")
        )
        assert charges == 0
    assert setup.balance() == Decimal("10.00")
    assert stored_files(setup.installation) == []


def pdf_with(pages: int, width: float = 595, height: float = 842) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=width, height=height)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# (name, content, form fields, status, words the message must contain)
BAD_UPLOADS: list[tuple[str, bytes, dict[str, str], int, str]] = [
    ("empty.pdf", b"", {"queue": "lab"}, 400, "is empty"),
    ("invoice.pdf", image_bytes("PNG"), {"queue": "lab"}, 415, "content is image/png"),
    ("noise.bin", bytes(range(256)) * 64, {"queue": "lab"}, 415, "not a format"),
    ("broken.pdf", b"%PDF-1.7\nnothing here", {"queue": "lab"}, 415, "broken"),
    ("locked.pdf", encrypted_pdf(), {"queue": "lab"}, 415, "encrypted"),
    ("bomb.pdf", pdf_with(6), {"queue": "lab"}, 415, "6 pages; at most 5"),
    ("wide.pdf", pdf_with(1, width=100_000), {"queue": "lab"}, 415, "at most 14400"),
    ("../../etc/passwd.pdf", pdf_bytes(1), {"queue": "lab"}, 400, "'..'"),
    ("a" * 10_000 + ".pdf", pdf_bytes(1), {"queue": "lab"}, 400, "longer than 255"),
    ("a.pdf", pdf_bytes(1), {"queue": "lab", "ipp_options": "{copies: 2"}, 400, "not JSON"),
    ("a.pdf", pdf_bytes(1), {"queue": "lab", "ipp_options": "[1]"}, 400, "JSON object"),
    ("a.pdf", pdf_bytes(1), {"queue": "lab", "ipp_options": '{"staple": "yes"}'}, 400,
     "'staple'"),
    ("a.pdf", pdf_bytes(1), {"queue": "lab", "ipp_options": '{"copies": "-1"}'}, 400,
     "not a positive integer"),
    ("a.pdf", pdf_bytes(1), {"queue": "lab", "ipp_options": '{"copies": "1000000"}'}, 400,
     "1-9999"),
    ("a.pdf", pdf_bytes(1), {"queue": "lab", "ipp_options": '{"copies": 2}'}, 400,
     "not a string"),
    ("a.pdf", pdf_bytes(1), {"queue": "lab", "ipp_options": '{"sides": "three-sided"}'}, 400,
     "one-sided, two-sided-long-edge, two-sided-short-edge"),
    ("a.pdf", pdf_bytes(1), {"ipp_options": '{"media": "../../x"}'}, 400, "media"),
    ("a.pdf", pdf_bytes(1), {"queue": "lab", "ipp_options": '{"page-ranges": "3-4"}'}, 400,
     "document has 1 pages"),
    ("a.pdf", pdf_bytes(1), {"queue": "nowhere"}, 404, "Queue 'nowhere' does not exist"),
    ("a.pdf", pdf_bytes(1), {"queue": "closed"}, 403, "disabled"),
    ("a.pdf", pdf_bytes(1), {"queue": "remote-only"}, 403, "127.0.0.1 may not print"),
    ("a.pdf", pdf_bytes(1), {"ext_id": "x" * 300}, 400, "ext_id is longer"),
]  # fmt: skip


def test_bad_uploads_are_refused_and_leave_nothing(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    set_config_live(setup.installation, {"convert.max-pages": "5"})
    for name, content, fields, status, words in BAD_UPLOADS:
        response = upload(server.url, setup.auth, name, content, **fields)
        shown = (name[:40], fields)
        assert response.status_code == status, (shown, response.text)
        body = response.json()
        assert body["succes"] is False, shown
        assert words in body["error"], (shown, body["error"])
    assert_nothing_happened(setup)


def test_requests_that_are_not_uploads(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    url = f"{server.url}/restful/v1/documents/print"
    no_file = httpx.post(url, auth=setup.auth, files={"other": ("a.pdf", b"x")}, data={"q": "1"})
    assert no_file.status_code == 400 and "no 'file' part" in no_file.json()["error"]
    not_multipart = httpx.post(url, auth=setup.auth, content=pdf_bytes(1))
    assert not_multipart.status_code == 400 and "multipart" in not_multipart.json()["error"]
    wrong = httpx.post(url, auth=("janet", "not-her-uuid"), files={"file": ("a.pdf", b"x")})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Basic")
    anonymous = httpx.post(url, files={"file": ("a.pdf", b"x")})
    assert anonymous.status_code == 401
    two_files = httpx.post(
        url, auth=setup.auth, files=[("file", ("a.pdf", pdf_bytes(1))), ("file", ("b.pdf", b"x"))]
    )
    assert two_files.status_code == 400 and "one 'file' part" in two_files.json()["error"]
    truncated = httpx.post(
        url,
        auth=setup.auth,
        content=b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n%PDF',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert truncated.status_code == 400
    # httpx (like browsers) escapes a NUL in a file name as %00; a hostile client does not.
    nul_name = httpx.post(
        url,
        auth=setup.auth,
        content=b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00.pdf"\r\n\r\n'
        + pdf_bytes(1)
        + b"\r\n--b--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert nul_name.status_code == 400 and "control characters" in nul_name.json()["error"]
    assert_nothing_happened(setup)


def test_a_duplicate_ext_id_is_refused(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    first = upload(server.url, setup.auth, "a.pdf", pdf_bytes(1), ext_id="order-7")
    assert first.status_code == 200
    again = upload(server.url, setup.auth, "b.pdf", pdf_bytes(2), ext_id="order-7")
    assert again.status_code == 409
    assert f"used by document {first.json()['id']}" in again.json()["error"]


def _raw_post(port: int, head: bytes, body_parts: Iterator[bytes]) -> tuple[bytes, float]:
    """Send a request by hand and read what the server answers; stops sending on its answer."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        answer = b""
        for part in body_parts:
            with contextlib.suppress(BlockingIOError):
                answer += sock.recv(65536)
            if answer:
                break
            try:
                sock.sendall(part)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        sock.settimeout(2)
        while b"}" not in answer:  # the JSON body's end
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            answer += chunk
    return answer, time.monotonic() - started


PART_HEAD = (
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n\r\n%PDF-1.7\n'
)


def test_a_2gb_upload_is_refused_before_it_is_read(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    credentials = httpx.BasicAuth(*setup.auth)._auth_header.encode()
    head = (
        b"POST /restful/v1/documents/print HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: " + credentials + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 2147483648\r\n\r\n"
    )
    answer, elapsed = _raw_post(server.port, head, iter([PART_HEAD] + [bytes(65536)] * 64))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"Upload of 2147483648 bytes is over the 104857600 byte limit" in answer
    assert elapsed < 5
    assert_nothing_happened(setup)


def test_a_chunked_upload_over_the_cap_is_cut_off(
    printing_setup: PrintSetup,  # noqa: F811
    server: LiveServer,
) -> None:
    setup = printing_setup
    set_config_live(setup.installation, {"print.upload.max-bytes": str(1024 * 1024)})
    credentials = httpx.BasicAuth(*setup.auth)._auth_header.encode()
    head = (
        b"POST /restful/v1/documents/print HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: " + credentials + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )

    def chunks() -> Iterator[bytes]:
        yield b"%x\r\n%s\r\n" % (len(PART_HEAD), PART_HEAD)
        block = bytes(64 * 1024)
        for _ in range(200):  # 12.5 MiB if nobody stopped us
            yield b"%x\r\n%s\r\n" % (len(block), block)

    answer, _ = _raw_post(server.port, head, chunks())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"The file is over the 1048576 byte limit" in answer
    time.sleep(0.2)
    assert_nothing_happened(setup)
