"""Helpers for document and printing tests: test documents of every format, a private cupsd,
a user with a UUID and a balance, printers synced from CUPS, a REST client for users.

The cupsd (tests/cupsd.py) is shared by a test session; each test gets its own database, so
printers are synced into it per test (`printing_setup`).
"""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from cupsd import PrivateCups
from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from support import LiveServer, set_config

import financial
from financial.schema import AccountTrx, TrxType
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.platform.properties import REFRESH_INTERVAL
from printsrv.printing import printers
from printsrv.printing.context import PrintContext
from printsrv.printing.costs import CostModel
from printsrv.printing.models import PrintJob
from printsrv.printing.tracker import sync_from_cups

ADMIN = ("admin", "admin-password-0123")
USER = "janet"


def pdf_bytes(pages: int, *, size: tuple[float, float] = A4, text: str = "printsrv test") -> bytes:
    """A PDF with ``pages`` numbered pages."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=size)
    for number in range(1, pages + 1):
        pdf.drawString(72, size[1] - 100, f"{text} page {number} of {pages}")
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def image_bytes(fmt: str, size: tuple[int, int] = (400, 300), *, frames: int = 1) -> bytes:
    """An image in ``fmt`` (JPEG, PNG, GIF, TIFF); TIFF may have several pages."""
    buffer = io.BytesIO()
    images = [Image.new("RGB", size, (40 * i % 255, 120, 200)) for i in range(frames)]
    if frames > 1:
        images[0].save(buffer, fmt, save_all=True, append_images=images[1:])
    else:
        images[0].save(buffer, fmt)
    return buffer.getvalue()


POSTSCRIPT = b"""%!PS-Adobe-3.0
%%Pages: 2
/Helvetica findfont 20 scalefont setfont
72 700 moveto (printsrv PostScript page 1) show showpage
72 700 moveto (printsrv PostScript page 2) show showpage
%%EOF
"""


def _zip(entries: dict[str, str], *, stored_first: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if stored_first:
            archive.writestr(stored_first, entries[stored_first], zipfile.ZIP_STORED)
        for name, text in entries.items():
            if name != stored_first:
                archive.writestr(name, text)
    return buffer.getvalue()


def docx_bytes(text: str = "Hello from a docx") -> bytes:
    """A minimal Word document (what the Office Open XML spec requires, nothing more)."""
    return _zip(
        {
            "[Content_Types].xml": (
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Default Extension="rels" '
                'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="xml" ContentType="application/xml"/>'
                '<Override PartName="/word/document.xml" ContentType="application/'
                'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
                "</Types>"
            ),
            "_rels/.rels": (
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
                "</Relationships>"
            ),
            "word/document.xml": (
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/'
                f'main"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>'
            ),
        }
    )


def odt_bytes(text: str = "Hello from an odt") -> bytes:
    """A minimal OpenDocument text (the mimetype entry first and uncompressed, as ODF says)."""
    return _zip(
        {
            "mimetype": "application/vnd.oasis.opendocument.text",
            "META-INF/manifest.xml": (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:'
                'manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
                'manifest:media-type="application/vnd.oasis.opendocument.text"/>'
                '<manifest:file-entry manifest:full-path="content.xml" '
                'manifest:media-type="text/xml"/>'
                "</manifest:manifest>"
            ),
            "content.xml": (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:'
                'office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
                'office:version="1.2"><office:body><office:text>'
                f"<text:p>{text}</text:p></office:text></office:body></office:document-content>"
            ),
        },
        stored_first="mimetype",
    )


def xlsx_like_bytes() -> bytes:
    """A zip shaped like a spreadsheet (enough for sniffing)."""
    return _zip({"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<workbook/>"})


def pptx_like_bytes() -> bytes:
    """A zip shaped like a presentation (enough for sniffing)."""
    return _zip({"[Content_Types].xml": "<Types/>", "ppt/presentation.xml": "<p/>"})


RTF = b"{\\rtf1\\ansi{\\fonttbl\\f0\\fswiss Helvetica;}\\f0\\pard Hello from RTF.\\par}"


@pytest.fixture(scope="session")
def print_cups() -> Iterator[PrivateCups]:
    """A private cupsd with the capture, fail (abort-job) and null queues, for the session."""
    server = PrivateCups(prefix="printsrv-docs-cupsd-").start()
    try:
        server.add_standard_queues()
        yield server
    finally:
        server.close()


@dataclass
class PrintSetup:
    """One test's installation made ready to print: a user with a UUID, synced printers."""

    installation: Installation
    cups: PrivateCups
    user: str
    uuid: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.uuid)

    def balance(self) -> Decimal:
        with self.installation.db.read() as session:
            return financial.get_or_create_user_account(session, self.user).balance

    def set_balance(self, amount: str) -> None:
        with self.installation.db.transaction() as session:
            account = financial.get_or_create_user_account(session, self.user)
            financial.set_balance(
                session,
                account=account,
                amount=amount,
                comment="test",
                actor=financial.Actor("admin", "test"),
            )

    def set_cost(self, printer: str, per_side: str, **more: str) -> None:
        extra = {k: Decimal(v) for k, v in more.items()}
        with self.installation.db.transaction() as session:
            printers.set_cost(session, printer, CostModel.simple(Decimal(per_side), **extra))

    def sync(self) -> None:
        self.installation.config.refresh()  # a cups.server just set must be in force
        asyncio.run(sync_from_cups(PrintContext.of(self.installation)))

    def jobs(self) -> list[PrintJob]:
        with self.installation.db.read() as session:
            query = select(PrintJob).options(selectinload(PrintJob.document)).order_by(PrintJob.id)
            return list(session.scalars(query))

    def wait_job(self, job_id: int, timeout: float = 10.0) -> PrintJob:
        """Wait until the tracker has finished a job."""
        deadline = time.monotonic() + timeout
        while True:
            with self.installation.db.read() as session:
                job = session.get(PrintJob, job_id)
                assert job is not None
                if job.state not in ("queued", "submitted"):
                    return job
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"job {job_id} still {job.state} ({job.cups_state}) after {timeout} s\n"
                    f"{self.cups.error_log_tail()}"
                )
            time.sleep(0.02)


@pytest.fixture
def printing_setup(installation: Installation, print_cups: PrivateCups) -> PrintSetup:
    """The installation pointed at the session cupsd, its printers synced, user janet (UUID)
    with a balance of 10.00, and REST admin credentials."""
    set_config(
        installation,
        {
            "cups.server": print_cups.server,
            "api.restful.auth.username": ADMIN[0],
            "api.restful.auth.password": ADMIN[1],
        },
    )
    with installation.db.transaction() as session:
        users.add_user(session, USER)
        credential = users.issue_uuid(session, USER, hasher=installation.hasher)
    setup = PrintSetup(installation, print_cups, USER, credential)
    setup.sync()
    setup.set_balance("10.00")
    return setup


def set_config_live(installation: Installation, values: dict[str, str]) -> None:
    """Set config properties and wait until a running server has them (it polls them)."""
    set_config(installation, values)
    time.sleep(3 * REFRESH_INTERVAL)


def upload(
    url: str,
    auth: tuple[str, str],
    name: str,
    content: bytes,
    **fields: str,
) -> httpx.Response:
    """POST /restful/v1/documents/print with one file and form fields."""
    return httpx.post(
        f"{url}/restful/v1/documents/print",
        auth=auth,
        files={"file": (name, content)},
        data=fields,
        timeout=60,
    )


def hold(server: LiveServer, setup: PrintSetup, name: str = "held.pdf", pages: int = 2) -> int:
    """Upload a PDF of ``pages`` pages to janet's inbox (held, not printed); its id."""
    response = upload(server.url, setup.auth, name, pdf_bytes(pages))
    assert response.status_code == 200 and response.json()["status"] == "held", response.text
    return int(response.json()["id"])


def print_charges(setup: PrintSetup) -> int:
    """How many prints were charged (PRINT_OUT rows in the ledger)."""
    with setup.installation.db.read() as session:
        return session.scalar(
            select(func.count()).select_from(AccountTrx).where(
                AccountTrx.trx_type == TrxType.PRINT_OUT
            )
        )  # fmt: skip


def stored_files(installation: Installation) -> list[Path]:
    """Every file under PRINTSRV_HOME/documents and PRINTSRV_HOME/tmp."""
    home = installation.env.home
    return sorted(
        p
        for d in ("documents", "tmp")
        if (home / d).exists()
        for p in (home / d).rglob("*")
        if p.is_file()
    )
