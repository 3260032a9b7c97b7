"""The convert-to service (documents/convert_to.py) without HTTP: targets, names, the three
formats, what each converter failure becomes, and the per-process cap with its time limit."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from printing_support import POSTSCRIPT, image_bytes, pdf_bytes
from pypdf import PdfReader
from support import require_programs

from printsrv.documents import convert_to
from printsrv.documents.convert import ConversionFailed, Limits
from printsrv.documents.convert_to import (
    ConversionTimedOut,
    ConverterBusy,
    ConvertSettings,
    DamagedDocument,
    Input,
    Target,
    convert_file,
    convert_path,
    input_name,
    result_name,
)
from printsrv.error_table import answer_for, retry_after
from printsrv.errors import InvalidInput, PayloadTooLarge
from printsrv.rest.convert import content_disposition

ENDLESS_POSTSCRIPT = b"%!PS\n{ 1 pop } loop\n"


def settings(timeout: float = 30, max_parallel: int = 2) -> ConvertSettings:
    return ConvertSettings(Limits(timeout=timeout, max_parallel=max_parallel), 10 * 1024 * 1024)


def write(directory: Path, name: str, content: bytes) -> Path:
    path = directory / name
    path.write_bytes(content)
    return path


# --- targets and names ---------------------------------------------------------------------


def test_a_target_from_text() -> None:
    assert Target.parse("PDF") == Target("pdf", 1, 1024)
    assert Target.parse("png", "3", " 200 ") == Target("png", 3, 200)
    assert Target.parse("txt", "", None) == Target("txt")


@pytest.mark.parametrize(
    ("format", "page", "width", "words"),
    [
        (None, None, None, "Name the format"),
        ("  ", None, None, "Name the format"),
        ("docx", None, None, "Unknown format 'docx'"),
        ('x"<script>', None, None, "Unknown format 'x??script?'"),
        ("png", "0", None, "page '0'"),
        ("png", "-1", None, "page '-1'"),
        ("png", None, "10001", "width '10001'"),
        ("png", None, "1e3", "width '1e3'"),
    ],
)
def test_a_bad_target_is_invalid_input(
    format: str | None, page: str | None, width: str | None, words: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        Target.parse(format, page, width)
    assert words in refused.value.message
    assert answer_for(refused.value).status == 400


@pytest.mark.parametrize(
    ("raw", "name", "result"),
    [
        ("report.final.txt", "report.final.txt", "report.final.pdf"),
        ("C:\\Users\\x\\a.txt", "a.txt", "a.pdf"),
        ("../../etc/passwd", "passwd", "passwd.pdf"),
        ('say "hi".txt', 'say "hi".txt', "say hi.pdf"),
        ("tab\there.txt", "tabhere.txt", "tabhere.pdf"),
        ("", "document", "document.pdf"),
        ("..", "document", "document.pdf"),
        (".bashrc", ".bashrc", "bashrc.pdf"),
        ("Übung.odt", "Übung.odt", "Übung.pdf"),
        ("x" * 300 + ".txt", "x" * 255, "x" * 100 + ".pdf"),
    ],
)
def test_names_are_made_safe(raw: str, name: str, result: str) -> None:
    assert input_name(raw) == name
    assert result_name(name, "pdf") == result


def test_content_disposition_adds_rfc_6266_filename_star_for_non_ascii() -> None:
    assert content_disposition("a.pdf") == 'attachment; filename="a.pdf"'
    assert content_disposition("Übung 1.png") == (
        "attachment; filename=\"_bung 1.png\"; filename*=UTF-8''%C3%9Cbung%201.png"
    )


# --- the three formats ---------------------------------------------------------------------


def test_each_input_family_becomes_a_pdf(tmp_path: Path) -> None:
    require_programs("gs")
    for name, content in [
        ("a.txt", b"plain text\n"),
        ("a.png", image_bytes("PNG")),
        ("a.ps", POSTSCRIPT),
        ("a.pdf", pdf_bytes(2)),
    ]:
        out = tmp_path / name.replace(".", "-")
        out.mkdir()
        source = write(out, name, content)
        result = convert_file(source, out, Target("pdf"), name=name, limits=Limits())
        assert len(PdfReader(result).pages) >= 1
    # A PDF asked as a PDF is the file itself: nothing is copied.
    pdf = tmp_path / "a-pdf" / "a.pdf"
    assert convert_file(pdf, tmp_path, Target("pdf"), name="a.pdf", limits=Limits()) == pdf


def test_png_is_the_page_asked_exactly_as_wide_as_asked(tmp_path: Path) -> None:
    require_programs("gs")
    source = write(tmp_path, "a.pdf", pdf_bytes(2, size=(612, 792)))
    for page, width, height in [(1, 1024, 1325), (2, 100, 129), (1, 1, 1)]:
        result = convert_file(
            source, tmp_path, Target("png", page, width), name="a.pdf", limits=Limits()
        )
        with Image.open(result) as picture:
            assert picture.size == (width, height)
    landscape = write(tmp_path, "wide.pdf", pdf_bytes(1, size=(842, 595)))
    result = convert_file(
        landscape, tmp_path, Target("png", 1, 842), name="wide.pdf", limits=Limits()
    )
    with Image.open(result) as picture:
        assert picture.size == (842, 595)


def test_png_refuses_a_page_the_document_lacks_and_a_huge_picture(tmp_path: Path) -> None:
    source = write(tmp_path, "a.pdf", pdf_bytes(2))
    with pytest.raises(InvalidInput, match=r"page 3 is past the end of 'a\.pdf', which has 2"):
        convert_file(source, tmp_path, Target("png", 3), name="a.pdf", limits=Limits())
    tall = write(tmp_path, "tall.pdf", pdf_bytes(1, size=(72, 14_000)))
    with pytest.raises(InvalidInput, match="pixels high"):
        convert_file(tall, tmp_path, Target("png", 1, 10_000), name="tall.pdf", limits=Limits())


def test_text_is_every_page_separated_by_a_form_feed(tmp_path: Path) -> None:
    source = write(tmp_path, "a.pdf", pdf_bytes(3))
    result = convert_file(source, tmp_path, Target("txt"), name="a.pdf", limits=Limits())
    pages = result.read_text(encoding="utf-8").split("\f")
    assert [p.strip() for p in pages] == [f"printsrv test page {n} of 3" for n in (1, 2, 3)]


# --- failures ------------------------------------------------------------------------------


def run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "content", "error", "status", "words"),
    [
        ("a.gz", b"\x1f\x8b\x08" + bytes(40), ConversionFailed, 415, "(application/gzip)"),
        ("a.bin", bytes(range(256)) * 4, ConversionFailed, 415, "application/octet-stream"),
        ("a.pdf", image_bytes("JPEG"), ConversionFailed, 415, "content is image/jpeg"),
        ("a.pdf", b"%PDF-1.4\ngarbage", DamagedDocument, 422, "'a.pdf' is damaged"),
        ("a.gif", image_bytes("GIF")[:30], DamagedDocument, 422, "image is broken"),
        ("a.ps", b"%!PS\n/undefinedthing load\n", DamagedDocument, 422, "Ghostscript failed"),
    ],
)
def test_each_failure_becomes_its_error(
    tmp_path: Path, name: str, content: bytes, error: type, status: int, words: str
) -> None:
    source = write(tmp_path, name, content)
    with pytest.raises(error) as refused:
        run(convert_path(source, tmp_path, Target("pdf"), name=name, settings=settings()))
    assert type(refused.value) is error
    assert words in refused.value.message
    assert answer_for(refused.value).status == status


def test_a_conversion_past_the_time_limit_is_a_504(tmp_path: Path) -> None:
    require_programs("gs")
    source = write(tmp_path, "loop.ps", ENDLESS_POSTSCRIPT)
    started = time.monotonic()
    with pytest.raises(ConversionTimedOut, match="longer than 1 s") as refused:
        run(
            convert_path(
                source, tmp_path, Target("pdf"), name="loop.ps", settings=settings(timeout=1)
            )
        )
    assert time.monotonic() - started < 5
    assert answer_for(refused.value).status == 504
    assert retry_after(refused.value) is None


def test_convert_to_removes_its_work_dir_whatever_happens(tmp_path: Path) -> None:
    seen: list[Path] = []

    async def receive(work_dir: Path, max_bytes: int) -> Input:
        seen.append(work_dir)
        return Input(write(work_dir, "upload", b"hello\n"), "a.txt", Target("pdf"))

    async def too_large(work_dir: Path, max_bytes: int) -> Input:
        seen.append(work_dir)
        write(work_dir, "upload", b"partial")
        raise PayloadTooLarge(f"over the {max_bytes} byte limit")

    result = run(convert_to.convert_to(tmp_path, settings(), receive))
    assert isinstance(result, convert_to.Result)
    assert result.media_type == "application/pdf" and result.file_name == "a.pdf"
    with pytest.raises(PayloadTooLarge, match="10485760"):
        run(convert_to.convert_to(tmp_path, settings(), too_large))
    assert len(seen) == 2
    assert not any(path.exists() for path in seen)
    assert list((tmp_path / "tmp").iterdir()) == []


# --- the cap -------------------------------------------------------------------------------


def test_the_cap_makes_conversions_wait_and_busy_past_the_time_limit(tmp_path: Path) -> None:
    require_programs("gs")
    loop_source = write(tmp_path, "loop.ps", ENDLESS_POSTSCRIPT)
    text_source = write(tmp_path, "a.txt", b"hello\n")

    async def scenario() -> None:
        slow = asyncio.create_task(
            convert_path(
                loop_source,
                tmp_path,
                Target("pdf"),
                name="loop.ps",
                settings=settings(timeout=2, max_parallel=1),
            )
        )
        while convert_to.running() == 0:
            await asyncio.sleep(0.01)
        with pytest.raises(ConverterBusy) as busy:
            await convert_path(
                text_source,
                tmp_path,
                Target("pdf"),
                name="a.txt",
                settings=settings(timeout=0.5, max_parallel=1),
            )
        assert answer_for(busy.value).status == 503
        assert retry_after(busy.value) == 1
        # A longer limit waits for the slot and converts.
        waited = await convert_path(
            text_source,
            tmp_path,
            Target("pdf"),
            name="a.txt",
            settings=settings(timeout=10, max_parallel=1),
        )
        assert waited.content.startswith(b"%PDF")
        with pytest.raises(ConversionTimedOut):
            await slow

    run(scenario())
    assert convert_to.running() == 0


def test_the_cap_holds_across_event_loops_in_one_process() -> None:
    gate = convert_to._Gate()
    peak = 0
    inside = 0
    lock = threading.Lock()

    async def hold() -> None:
        nonlocal peak, inside
        assert await gate.acquire(2, 10)
        try:
            with lock:
                inside += 1
                peak = max(peak, inside)
            await asyncio.sleep(0.05)
            with lock:
                inside -= 1
        finally:
            gate.release()

    async def many() -> None:
        await asyncio.gather(*(hold() for _ in range(5)))

    threads = [threading.Thread(target=asyncio.run, args=(many(),)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert peak == 2
    assert gate.running == 0


def test_a_waiter_cancelled_or_timed_out_gives_no_slot_away() -> None:
    gate = convert_to._Gate()

    async def scenario() -> None:
        assert await gate.acquire(1, 1)
        assert not await gate.acquire(1, 0.05)  # timed out waiting
        waiter = asyncio.create_task(gate.acquire(1, 10))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        gate.release()
        assert gate.running == 0
        assert await gate.acquire(1, 0.01)
        gate.release()

    asyncio.run(scenario())
    assert gate.running == 0
