"""The parsers that take raw bytes, each wrapped as a fuzz target with its contract.

A target takes any bytes and returns normally when the parser kept its contract: it gave a
valid result, or it refused with the domain's own error, the one its adapter renders in its
protocol's envelope (an XML-RPC fault, a JSON-RPC error object, REST's error envelope).
Anything else escapes as the exception itself: that is a finding.

`bench/fuzz_parsers.py` runs these under atheris (or a plain mutation loop) for minutes;
`tests/unit/fuzz/` drives the same targets with hypothesis in CI, so both check one contract.
Each target has seeds (valid inputs to mutate from) in `SEEDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import tempfile
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from printsrv.errors import InvalidInput, PayloadTooLarge

__all__ = ["SEEDS", "TARGETS", "Target", "pdf_seeds", "strict_loads"]

BOUNDARY = b"fuzzboundary1234"


# --- XML-RPC -----------------------------------------------------------------------------


def xmlrpc_body(data: bytes) -> None:
    """An XML-RPC body: a call (name, params) or a ProtocolFault, whose fault is well-formed."""
    from printsrv.rpc.xmlrpc import METHODS, ProtocolFault, fault_response, parse_call

    try:
        name, params = parse_call(data)
        method = METHODS.get(name)
        if method is not None:
            method.check(params)
    except ProtocolFault as fault:
        # The fault must be a methodResponse a client can read back.
        body = bytes(fault_response(fault.code, fault.message).body)
        try:
            xmlrpc.client.loads(body)
        except xmlrpc.client.Fault as answer:
            assert answer.faultCode == fault.code
        else:
            raise AssertionError("a fault response that is not a fault") from None


# --- JSON-RPC ----------------------------------------------------------------------------


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} in an answer is not JSON")


def strict_loads(body: bytes) -> Any:
    """Decode an answer as a strict JSON client would: NaN and Infinity are not JSON."""
    return json.loads(body, parse_constant=_no_constant)


def jsonrpc_body(data: bytes) -> None:
    """A JSON-RPC body: parsed, or refused with a parse error; every request object either
    well-formed or answered with an Invalid Request object that encodes as JSON."""
    from printsrv.rpc.jsonrpc import (
        INVALID_REQUEST,
        encode,
        error_object,
        parse_body,
        request_id,
        shape_problem,
    )

    try:
        parsed = parse_body(data)
    except (ValueError, RecursionError):
        return
    requests = parsed if isinstance(parsed, list) else [parsed]
    for obj in requests:
        problem = shape_problem(obj)
        answer = error_object(request_id(obj), INVALID_REQUEST, "Invalid Request", problem or "")
        strict_loads(encode(answer))


# --- multipart uploads -------------------------------------------------------------------


def upload_request(body: bytes, content_type: bytes) -> Any:
    from starlette.requests import Request

    chunks = [body[i : i + 977] for i in range(0, len(body), 977)] or [b""]
    messages = [
        {"type": "http.request", "body": c, "more_body": n < len(chunks) - 1}
        for n, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-type", content_type)],
        "query_string": b"",
    }
    return Request(scope, receive)


_LOOP: asyncio.AbstractEventLoop | None = None


def run_async(coroutine: Any) -> Any:
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
    return _LOOP.run_until_complete(coroutine)


def multipart_body(data: bytes) -> None:
    """A multipart/form-data body: an Upload (its file on disk, its title clean or refused),
    or InvalidInput / PayloadTooLarge with nothing left on disk."""
    from printsrv.platform.uploads import clean_file_name, receive_upload

    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        request = upload_request(data, b"multipart/form-data; boundary=" + BOUNDARY)
        try:
            upload = run_async(receive_upload(request, work_dir=work_dir, max_file_bytes=64 * 1024))
        except (InvalidInput, PayloadTooLarge):
            assert list(work_dir.iterdir()) == [], "a refused upload left a file behind"
            return
        if upload.path is not None:
            assert upload.path.stat().st_size == upload.size
            with contextlib.suppress(InvalidInput):
                clean_file_name(upload.file_name)


# --- IPP option values ---------------------------------------------------------------------


def _printer() -> Any:
    from printsrv.printing.types import PrinterInfo

    return PrinterInfo(
        name="fuzz",
        state="idle",
        state_message="",
        state_reasons=(),
        accepting=True,
        info="",
        location="",
        make_and_model="",
        copies_supported=(1, 9999),
        sides_supported=("one-sided", "two-sided-long-edge"),
        print_color_mode_supported=("color", "monochrome"),
        media_supported=("iso_a4_210x297mm",),
        sheet_collate_supported=("collated", "uncollated"),
        number_up_supported=(1, 2, 4),
        page_ranges_supported=True,
        orientation_requested_supported=(3, 4),
        print_quality_supported=(3, 4, 5),
        print_scaling_supported=("auto", "fit"),
        defaults=(("copies", "1"), ("sides", "one-sided")),
    )


def ipp_options(data: bytes) -> None:
    """``ipp_options`` text (a form field: UTF-8) and a ``page-ranges`` value: options checked
    against a printer, or InvalidInput (OptionRejected is one) naming what is wrong."""
    from printsrv.printing.options import merge_options, parse_page_ranges, validate_options
    from printsrv.printing.queues import parse_ipp_options

    text = data.decode("utf-8", "replace")
    printer = _printer()
    try:
        requested = parse_ipp_options(text)
        merged = merge_options(printer.default_options(), {}, requested)
        checked = validate_options(merged, printer, pages=len(data) % 50 + 1)
        assert all(isinstance(v, str) for v in checked.values())
    except InvalidInput:
        pass
    try:
        ranges = parse_page_ranges(text, pages=None if len(data) % 2 else 999)
        assert all(1 <= a <= b for a, b in ranges)
    except InvalidInput:
        pass


# --- PDF intake --------------------------------------------------------------------------


def _pdf_file(data: bytes, work: Path) -> Path:
    path = work / "upload.pdf"
    path.write_bytes(data)
    return path


def pdf_intake(data: bytes) -> None:
    """A PDF upload: a page count or ConversionFailed; colour scanning never raises; a
    convert-to page picture is sized or refused with InvalidInput."""
    from printsrv.documents.convert import ConversionFailed, inspect_pdf
    from printsrv.documents.convert.colour import provably_grayscale
    from printsrv.documents.convert_to import Target, page_geometry

    with tempfile.TemporaryDirectory() as work:
        path = _pdf_file(data, Path(work))
        try:
            pages = inspect_pdf(path, name="fuzz.pdf", max_pages=50)
        except ConversionFailed:
            return
        assert pages >= 1
        assert provably_grayscale(path, pages=pages, deadline=None) in (True, False)
        with contextlib.suppress(InvalidInput):
            page_geometry(path, Target("png", page=1 + len(data) % pages), name="fuzz.pdf")


def document_conversion(data: bytes) -> None:
    """Any upload sniffed and converted in-process (text, images; PDFs checked): a PDF, or
    ConversionFailed. Formats that need an external program stop at the sniff."""
    from printsrv.documents.convert import ConversionFailed, Limits, convert_sync, sniff
    from printsrv.documents.convert.formats import FORMATS

    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "upload"
        source.write_bytes(data)
        key = sniff(source)
        if key is not None and FORMATS[key].family not in ("text", "image", "pdf"):
            return
        try:
            converted = convert_sync(
                source, Path(work), name="upload", limits=Limits(timeout=10.0, max_pages=20)
            )
        except ConversionFailed:
            return
        assert converted.pages >= 1


# --- JSON bodies of REST services ----------------------------------------------------------


def report_request(data: bytes) -> None:
    """POST /reports/accounttrx's JSON selection: a ReportRequest or InvalidInput."""
    from printsrv.accounts.reports import ReportRequest

    with contextlib.suppress(InvalidInput):
        ReportRequest.parse_body(data)


def release_request(data: bytes) -> None:
    """POST /release's JSON (a card, or a user and PIN): a TerminalRequest or InvalidInput."""
    from printsrv.accounts.reports import strict_json
    from printsrv.release.stations import TerminalRequest

    with contextlib.suppress(InvalidInput):
        TerminalRequest.parse(strict_json(data, "{}"))


def agent_bodies(data: bytes) -> None:
    """The agent API's JSON bodies (printers, state reports): parsed or InvalidInput."""
    from printsrv.accounts.reports import strict_json
    from printsrv.agents.dispatch import parse_report
    from printsrv.agents.printers import parse_printers

    try:
        document = strict_json(data, "{}")
    except InvalidInput:
        return
    for parse in (parse_printers, parse_report):
        with contextlib.suppress(InvalidInput):
            parse(document)


def convert_to_fields(data: bytes) -> None:
    """convert-to's form fields (format, page, width) and file name: a Target and a safe
    answer name (a Content-Disposition that is a valid header), or InvalidInput."""
    from printsrv.documents.convert_to import Target, input_name, result_name
    from printsrv.rest.convert import content_disposition

    parts = data.decode("utf-8", "replace").split("\x00")
    format_, page, width, name = ([*parts, "", "", "", ""])[:4]
    try:
        target = Target.parse(format_, page or None, width or None)
    except InvalidInput:
        target = None
    shown = result_name(input_name(name), target.format if target else "pdf")
    content_disposition(shown).encode("latin-1")


@dataclass(frozen=True)
class Target:
    """A fuzz target: its name, the function under contract and what it parses."""

    name: str
    run: Callable[[bytes], None]
    about: str


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("xmlrpc", xmlrpc_body, "XML-RPC bodies (defusedxml, xmlrpc.client)"),
        Target("jsonrpc", jsonrpc_body, "JSON-RPC bodies and request objects"),
        Target("multipart", multipart_body, "multipart uploads (python-multipart)"),
        Target("ipp", ipp_options, "ipp_options JSON and page-ranges"),
        Target("pdf", pdf_intake, "PDF intake: pypdf page count, colour scan, page size"),
        Target("convert", document_conversion, "sniffing and in-process conversion"),
        Target("report", report_request, "report selections (JSON)"),
        Target("release", release_request, "release-terminal card/PIN requests (JSON)"),
        Target("agents", agent_bodies, "agent API bodies (JSON)"),
        Target("convert_to", convert_to_fields, "convert-to form fields and file names"),
    )
}


# --- seeds -------------------------------------------------------------------------------


def pdf_seeds() -> list[bytes]:
    """Small valid PDFs: a blank page, a grey text page, a colour page, a form XObject."""
    from pypdf import PdfWriter
    from pypdf.generic import (
        ArrayObject,
        DecodedStreamObject,
        DictionaryObject,
        NameObject,
        NumberObject,
    )
    from reportlab.pdfgen.canvas import Canvas

    seeds = []
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=300)
    buffer = io.BytesIO()
    writer.write(buffer)
    seeds.append(buffer.getvalue())
    for colour in ((0.5, 0.5, 0.5), (1, 0, 0)):
        buffer = io.BytesIO()
        canvas = Canvas(buffer, pagesize=(200, 200), pageCompression=0)
        canvas.setFillColorRGB(*colour)
        canvas.drawString(20, 100, "fuzz")
        canvas.rect(10, 10, 50, 50, fill=1)
        canvas.showPage()
        canvas.save()
        seeds.append(buffer.getvalue())
    writer = PdfWriter()
    page = writer.add_blank_page(width=100, height=100)
    form = DecodedStreamObject()
    form.set_data(b"0.2 g 0 0 10 10 re f")
    form.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Form"),
            NameObject("/BBox"): ArrayObject([NumberObject(0), NumberObject(0)] * 2),
        }
    )
    content = DecodedStreamObject()
    content.set_data(b"q /F0 Do Q")
    page[NameObject("/Contents")] = writer._add_object(content)
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/XObject"): DictionaryObject({NameObject("/F0"): writer._add_object(form)})}
    )
    buffer = io.BytesIO()
    writer.write(buffer)
    seeds.append(buffer.getvalue())
    return seeds


def _multipart(parts: list[tuple[bytes, bytes]]) -> bytes:
    body = b""
    for disposition, content in parts:
        body += b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; " + disposition
        body += b"\r\n\r\n" + content + b"\r\n"
    return body + b"--" + BOUNDARY + b"--\r\n"


def _seeds() -> dict[str, list[bytes]]:
    create_token = xmlrpc.client.dumps(("key", "janet"), "onetime-auth.createToken").encode()
    return {
        "xmlrpc": [
            create_token,
            xmlrpc.client.dumps((), "system.listMethods").encode(),
            xmlrpc.client.dumps(
                ({"a": [1, 2.5, True, None]}, xmlrpc.client.Binary(b"x")),
                "system.methodHelp",
                allow_none=True,
            ).encode(),
        ],
        "jsonrpc": [
            b'{"jsonrpc":"2.0","method":"systemStatus","id":1}',
            b'[{"jsonrpc":"2.0","method":"getUserCount","params":{"apiVersion":"1"},"id":"a"},'
            b'{"jsonrpc":"2.0","method":"x","params":[1.5]}]',
            b'{"jsonrpc":"2.0","method":"systemStatus","id":1.5}',
        ],
        "multipart": [
            _multipart(
                [
                    (b'name="file"; filename="a.pdf"', b"%PDF-1.4 hello"),
                    (b'name="queue"', b"webservice"),
                    (b'name="ipp_options"', b'{"copies": "2"}'),
                ]
            ),
            _multipart([(b'name="file"; filename="\xc3\xa9t\xc3\xa9.txt"', b"text\r\n--")]),
        ],
        "ipp": [
            b'{"copies": "2", "sides": "two-sided-long-edge", "page-ranges": "1-3,5"}',
            b'{"number-up": "4", "print-color-mode": "monochrome", "fit-to-page": "true"}',
            b"1-3,5,7-9",
        ],
        "pdf": pdf_seeds(),
        "convert": [b"Hello\nworld\n\x0c page two\n", *pdf_seeds()[:1], _png()],
        "report": [
            b'{"select": {"account_type": "USER", "account_name": "rijk", "text": null,'
            b' "trx_type": "PRINT_OUT", "date_from": {"ccyy": 2023, "mm": 1, "dd": 1,'
            b' "zzz": "+01"}, "date_to": {"ccyy": 2023, "mm": 6, "dd": 1, "zzz": "-05:30"}},'
            b' "sort": {"field": "TRX_DATE", "ascending": true}, "media_type": "CSV"}'
        ],
        "release": [
            b'{"printer": "fuzzagent/fuzz", "card": "04A1B2C3"}',
            b'{"printer": "fuzzagent/fuzz", "user": "janet", "pin": "1234", "documents": [1, 2]}',
            b'{"printer": "p", "card": "x", "documents": "all"}',
        ],
        "agents": [
            json.dumps({"printers": [agent_printer()]}).encode(),
            b'{"claim": "abc", "state": "completed", "cups_job_id": 7, "impressions": 2}',
        ],
        "convert_to": [b"png\x002\x00800\x00C:\\docs\\report.docx", b"txt\x00\x00\x00a.pdf"],
    }


def agent_printer() -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(_printer())
    data["markers"] = [{"name": "black", "type": "toner", "level": 40}]
    return data


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


class _Seeds(dict[str, list[bytes]]):
    """Built on first use: making PDFs and PNGs costs an import of reportlab and Pillow."""

    def __missing__(self, key: str) -> list[bytes]:
        self.update(_seeds())
        return dict.__getitem__(self, key)


SEEDS: dict[str, list[bytes]] = _Seeds()
