"""Printing figures: upload-and-print throughput next to `lp`, RSS during a 500 MB upload,
text-to-PDF pages per second, colour detection pages per second.

    .venv/bin/python -m bench.printing [--jobs 400] [--clients 16] [--database URL]
    .venv/bin/python -m bench.printing --colour-only      # only figure 4, a few seconds

1. Throughput: ``--jobs`` one-page PDFs uploaded by ``--clients`` concurrent clients to a printsrv
   queue routed to a file-backed CUPS printer (``file:`` device, Generic PDF PPD) of a private
   cupsd, against ``lp`` submitting the same files to the same queue with the same concurrency,
   in the same run. Both are timed from the first request until CUPS reports every job
   completed (target: printsrv at least 0.5 of lp).
2. Memory: the server's peak RSS (VmHWM) while one 500 MB PDF uploads to the inbox, above its
   RSS when idle (target: under 100 MB).
3. Conversion: text-to-PDF pages per second, in-process (ASCII and Unicode text).
4. Colour detection (printsrv.documents.convert.colour, run on every upload): pages per second
   and ms per page on a one-page document (rendered, mostly Ghostscript's start-up), a text document
   and a document with a colour photo on every other page, as an upload runs it (content
   scan, else rendering) and rendered whatever the scan says,
   next to Ghostscript's inkcov device (the detector it replaces, rendering at the same 72 dpi)
   and ``pdfinfo`` (reading the page count only) on the same files, in the same run.

Everything runs on loopback against processes this script starts and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.common import PG_URL, ROOT, SECRET, Row, print_table, printsrv_server, private_schema

sys.path.insert(0, str(ROOT / "tests"))

from cupsd import GENERIC_PDF_PPD, PrivateCups

from printsrv.documents.convert import Limits, colour, convert_sync
from printsrv.documents.convert.colour import detect_colours_sync
from printsrv.migrations import upgrade_schema
from printsrv.operations.installation import Installation, open_installation
from printsrv.people import users
from printsrv.platform import properties as config
from printsrv.platform.environment import Environment
from printsrv.printing import queues
from printsrv.printing.context import PrintContext
from printsrv.printing.tracker import sync_from_cups

QUEUE = "filepdf"
BIG_BYTES = 500 * 1024 * 1024


def one_page_pdf(path: Path) -> Path:
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path))
    pdf.drawString(72, 720, "printsrv bench: one page")
    pdf.showPage()
    pdf.save()
    return path


def big_pdf(path: Path, size: int) -> Path:
    """A valid one-page PDF of ``size`` bytes: the bulk is an unused stream object."""
    body = b"BT /F1 12 Tf 72 720 Td (printsrv 500 MB bench) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(body), body),
    ]
    with open(path, "wb") as out:
        out.write(b"%PDF-1.4\n")
        offsets = []
        for number, obj in enumerate(objects, start=1):
            offsets.append(out.tell())
            out.write(b"%d 0 obj\n%s\nendobj\n" % (number, obj))
        filler = size - out.tell() - 400
        offsets.append(out.tell())
        out.write(b"5 0 obj\n<< /Length %d >>\nstream\n" % filler)
        block = b"\0" * (4 * 1024 * 1024)
        left = filler
        while left > 0:
            out.write(block[: min(left, len(block))])
            left -= len(block)
        out.write(b"\nendstream\nendobj\n")
        xref = out.tell()
        out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1))
        for offset in offsets:
            out.write(b"%010d 00000 n \n" % offset)
        out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
            len(offsets) + 1, xref))  # fmt: skip
    return path


@contextmanager
def bench_cups(out_file: Path) -> Iterator[PrivateCups]:
    """A private cupsd with one queue printing to a file through the Generic PDF PPD."""
    cups = PrivateCups(prefix="printsrv-bench-cupsd-").start()
    try:
        # Today's CUPS no longer creates a file: device's output file; it must exist first.
        cups.prepare_output_file(out_file)
        subprocess.run(
            ["lpadmin", "-h", cups.server, "-p", QUEUE, "-E", "-v", f"file://{out_file}",
             "-P", GENERIC_PDF_PPD, "-o", "printer-error-policy=abort-job"],
            check=True, capture_output=True,
        )  # fmt: skip
        yield cups
    finally:
        cups.close()


def completed_jobs(cups: PrivateCups) -> int:
    out = subprocess.run(
        ["lpstat", "-h", cups.server, "-W", "completed", "-o", QUEUE],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return len(out.splitlines())


def wait_completed(cups: PrivateCups, target: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while completed_jobs(cups) < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {completed_jobs(cups)} of {target} jobs completed")
        time.sleep(0.05)


def prepare(home: Path, database_url: str, cups: PrivateCups) -> tuple[Installation, str]:
    """Migrate, point printsrv at the cupsd, sync printers, route a queue, make a user."""
    installation = open_installation(
        Environment(home=home, database_url=database_url, secret_key=SECRET)
    )
    upgrade_schema(installation.db)
    with installation.db.transaction() as session:
        for name, value in {
            "cups.server": cups.server,
            "print.upload.max-bytes": str(BIG_BYTES + 1024 * 1024),
            "convert.timeout-secs": "600",
        }.items():
            config.set_property(session, name, value, hasher=installation.hasher, actor="bench")
    asyncio.run(sync_from_cups(PrintContext.of(installation)))
    with installation.db.transaction() as session:
        queues.add_queue(session, "bench", printer=QUEUE)
        users.add_user(session, "bench")
        credential = users.issue_uuid(session, "bench", hasher=installation.hasher)
    return installation, credential


def purge_jobs(cups: PrivateCups) -> None:
    """Forget every job of the queue (cupsd answers at most 500 jobs to one query)."""
    subprocess.run(["cancel", "-h", cups.server, "-a", "-x", QUEUE], check=True)


async def upload_many(url: str, auth: tuple[str, str], pdf: bytes, jobs: int, clients: int) -> int:
    """``jobs`` uploads from ``clients`` concurrent clients; return how many were refused."""
    counter = iter(range(jobs))
    failures = 0

    async def client() -> None:
        nonlocal failures
        async with httpx.AsyncClient(timeout=60) as http:
            for index in counter:
                response = await http.post(
                    f"{url}/restful/v1/documents/print",
                    auth=auth,
                    files={"file": (f"page-{index}.pdf", pdf, "application/pdf")},
                    data={"queue": "bench"},
                )
                if response.status_code != 200 or response.json()["status"] != "printing":
                    failures += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return failures


def lp_many(cups: PrivateCups, pdf: Path, jobs: int, clients: int) -> int:
    """``jobs`` submissions by ``lp``, ``clients`` at a time; return how many failed."""
    env = {**os.environ, "CUPS_SERVER": cups.server}
    failures = 0
    running: list[subprocess.Popen[bytes]] = []
    started = 0
    while started < jobs or running:
        while started < jobs and len(running) < clients:
            running.append(
                subprocess.Popen(
                    ["lp", "-d", QUEUE, "-t", f"lp-{started}", str(pdf)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            started += 1
        still = []
        for process in running:
            if process.poll() is None:
                still.append(process)
            elif process.returncode != 0:
                failures += 1
        running = still
        time.sleep(0.001)
    return failures


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def upload_peak_rss(url: str, auth: tuple[str, str], pid: int, big: Path) -> tuple[int, int, float]:
    """(idle RSS, peak RSS during the upload, seconds) of the server process, in KiB.

    The kernel's high-water mark is reset first (clear_refs 5), and VmRSS is also sampled
    every 5 ms, in case the reset is not allowed.
    """
    idle = rss_kib(pid, "VmRSS")
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    peak = idle
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_kib(pid, "VmRSS"))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    with open(big, "rb") as handle:
        response = httpx.post(
            f"{url}/restful/v1/documents/print", auth=auth,
            files={"file": ("big.pdf", handle, "application/pdf")}, timeout=600,
        )  # fmt: skip
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    if response.status_code != 200:
        raise RuntimeError(f"500 MB upload: {response.status_code} {response.text}")
    peak = max(peak, rss_kib(pid, "VmHWM"))
    return idle, peak, elapsed


def text_pages_per_second(work: Path) -> list[tuple[str, str, str, str]]:
    rows = []
    line = "The quick brown fox jumps over the lazy dog; printsrv converts text to PDF. "
    for label, text in (("ASCII", line), ("Unicode", line + "κόσμε – ünïcödé ")):
        source = work / f"{label}.txt"
        source.write_text("\n".join(f"{n:6d} {text}" for n in range(64 * 1000)), "utf-8")
        target_dir = work / label
        target_dir.mkdir()
        started = time.perf_counter()
        result = convert_sync(source, target_dir, name=source.name, limits=Limits(max_pages=5000))
        elapsed = time.perf_counter() - started
        label = f"text to PDF, {label} ({result.pages} pages)"
        rows.append((label, f"{result.pages / elapsed:.0f} pages/s", "-", "-"))
    return rows


def photo_pdf(path: Path, pages: int) -> Path:
    """``pages`` pages of black text; every other one also has a 600 x 400 colour photo."""
    from PIL import Image
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    photo = Image.radial_gradient("L").resize((600, 400)).convert("RGB")
    photo = Image.merge("RGB", (photo.getchannel(0), Image.linear_gradient("L").resize(
        (600, 400)), photo.getchannel(2).point(lambda v: 255 - v)))  # fmt: skip
    pdf = canvas.Canvas(str(path))
    for page in range(pages):
        for line in range(40):
            pdf.drawString(72, 780 - 16 * line, f"Page {page + 1}, line {line + 1}: black text.")
        if page % 2:
            pdf.drawImage(ImageReader(photo), 72, 72, width=450, height=300)
        pdf.showPage()
    pdf.save()
    return path


def _per_page(command: list[str], pages: int, rounds: int) -> float:
    """Seconds per page of the best of ``rounds`` runs of ``command``."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best / pages


def colour_detection_rows(work: Path, *, rounds: int = 3) -> list[Row]:
    """Colour detection per page next to inkcov and pdfinfo on the same PDFs (best of
    ``rounds``, taking turns so that neither gets a quieter machine)."""
    text = work / "colour-text.txt"
    line = "The quick brown fox jumps over the lazy dog; printsrv converts text to PDF. "
    text.write_text("\n".join(f"{n:6d} {line}" for n in range(60 * 100)), "utf-8")
    converted_dir = work / "colour-text"
    converted_dir.mkdir()
    converted = convert_sync(text, converted_dir, name=text.name, limits=Limits(max_pages=5000))
    documents = [
        # One page: rendering it is mostly the start-up of Ghostscript, paid once per upload.
        ("one page", one_page_pdf(work / "colour-one.pdf"), 1),
        ("text", converted.pdf, converted.pages),
        ("colour photo every other page", photo_pdf(work / "colour-photo.pdf", 60), 60),
    ]
    rows: list[Row] = []
    limits = Limits(timeout=600)
    for label, pdf, pages in documents:
        # As an upload runs it (the content scan first, Ghostscript when it proves nothing),
        # and rendered whatever the scan says: the cost of a document the scan cannot prove.
        scanned = colour.provably_grayscale(pdf, pages=pages)
        detect = render = inkcov = pdfinfo = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            found = detect_colours_sync(pdf, pages=pages, name=pdf.name, limits=limits)
            detect = min(detect, (time.perf_counter() - started) / pages)
            render = min(render, _rendered_per_page(pdf, pages, limits))
            gs_inkcov = ["gs", "-q", "-dSAFER", "-o", "-", "-sDEVICE=inkcov", str(pdf)]
            inkcov = min(inkcov, _per_page(gs_inkcov, pages, 1))
            pdfinfo = min(pdfinfo, _per_page(["pdfinfo", str(pdf)], pages, 1))
        how = "content scan" if scanned else "rendered"
        rows.append((
            f"colour detection, {label} ({pages} pages, {found.pages_color} colour): {how}",
            f"{1 / detect:.0f} pages/s, {detect * 1000:.2f} ms/page",
            f"inkcov {inkcov * 1000:.1f} ms/page, pdfinfo {pdfinfo * 1000:.2f} ms/page",
            f"{inkcov / detect:.2f}",
        ))  # fmt: skip
        if scanned:
            rows.append((
                "... the same, rendered by Ghostscript",
                f"{1 / render:.0f} pages/s, {render * 1000:.2f} ms/page",
                f"inkcov {inkcov * 1000:.1f} ms/page",
                f"{inkcov / render:.2f}",
            ))  # fmt: skip
    return rows


def _rendered_per_page(pdf: Path, pages: int, limits: Limits) -> float:
    """Seconds per page of detection with the content scan's short cut turned off."""
    scan = colour.provably_grayscale
    colour.provably_grayscale = lambda pdf, **kwargs: False  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        detect_colours_sync(pdf, pages=pages, name=pdf.name, limits=limits)
        return (time.perf_counter() - started) / pages
    finally:
        colour.provably_grayscale = scan


TITLE = "printsrv printing (CUPS file printer, PostgreSQL unless --database)"


def figures(
    *,
    jobs: int = 400,
    clients: int = 16,
    workers: int = 1,
    database: str = PG_URL,
    skip_big: bool = False,
) -> list[Row]:
    """Upload-and-print next to lp, RSS during a 500 MB upload, text-to-PDF pages per second."""
    if jobs > 480:
        raise ValueError("at most 480 jobs: cupsd lists at most 500 jobs at once")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="printsrv-bench-", dir="/tmp") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # noqa: S103 - cupsd's lp user writes the file queue's output here
        pdf = one_page_pdf(work / "one.pdf")
        home = work / "home"
        with bench_cups(work / "printed.pdf") as cups, private_schema(database, "printing") as url:
            if not url.startswith("postgresql"):
                url = f"sqlite:///{home / 'printsrv.db'}"
            installation, credential = prepare(home, url, cups)
            installation.db.dispose()
            auth = ("bench", credential)
            # lp first: the same queue, file and concurrency.
            started = time.perf_counter()
            lp_failed = lp_many(cups, pdf, jobs, clients)
            lp_submitted = time.perf_counter() - started
            wait_completed(cups, jobs)
            lp_done = time.perf_counter() - started
            purge_jobs(cups)
            with printsrv_server(home, url, workers=workers) as server:
                base = f"http://127.0.0.1:{server.port}"
                content = pdf.read_bytes()
                # Warm up (imports, connection pools), then measure.
                asyncio.run(upload_many(base, auth, content, 8, 4))
                wait_completed(cups, 8)
                purge_jobs(cups)
                started = time.perf_counter()
                failed = asyncio.run(upload_many(base, auth, content, jobs, clients))
                submitted = time.perf_counter() - started
                wait_completed(cups, jobs)
                done = time.perf_counter() - started
                rows.append((
                    f"{jobs} 1-page PDFs, {clients} clients: submitted",
                    f"{jobs / submitted:.1f} jobs/s",
                    f"lp {jobs / lp_submitted:.1f} jobs/s",
                    f"{lp_submitted / submitted:.2f}",
                ))  # fmt: skip
                rows.append((
                    "... until CUPS completed every job (target, issue 22: >= 0.8)",
                    f"{jobs / done:.1f} jobs/s",
                    f"lp {jobs / lp_done:.1f} jobs/s",
                    f"{lp_done / done:.2f}",
                ))  # fmt: skip
                if failed or lp_failed:
                    rows.append(("refused/failed", str(failed), f"lp {lp_failed}", "-"))
                if not skip_big:
                    assert server.process is not None
                    big = big_pdf(work / "big.pdf", BIG_BYTES)
                    idle, peak, elapsed = upload_peak_rss(base, auth, server.process.pid, big)
                    big.unlink()
                    rows.append((
                        "server peak RSS during a 500 MB upload, above idle (target < 100 MB)",
                        f"{(peak - idle) / 1024:.1f} MB", f"idle {idle / 1024:.1f} MB", "-",
                    ))  # fmt: skip
                    rows.append(("... the upload took", f"{elapsed:.1f} s",
                                 f"{BIG_BYTES / elapsed / 1e6:.0f} MB/s", "-"))  # fmt: skip
        rows += text_pages_per_second(work)
        rows += colour_detection_rows(work)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database", default=PG_URL, help="SQLAlchemy URL (default PostgreSQL)")
    parser.add_argument("--skip-big", action="store_true", help="skip the 500 MB upload")
    parser.add_argument(
        "--colour-only", action="store_true", help="only colour detection per page (figure 4)"
    )
    args = parser.parse_args()
    if args.colour_only:
        with tempfile.TemporaryDirectory(prefix="printsrv-bench-", dir="/tmp") as tmp:
            print_table("printsrv colour detection", colour_detection_rows(Path(tmp)))
        return
    if args.jobs > 480:
        parser.error("--jobs at most 480: cupsd lists at most 500 jobs at once")
    rows = figures(
        jobs=args.jobs,
        clients=args.clients,
        workers=args.workers,
        database=args.database,
        skip_big=args.skip_big,
    )
    print_table(TITLE, rows)


if __name__ == "__main__":
    main()
