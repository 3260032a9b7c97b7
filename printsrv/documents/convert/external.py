"""Converters that are other programs or servers: Ghostscript, LibreOffice, convert-to.

Each runs in its own process group with a file-size limit and is killed at the deadline, so
neither a PostScript loop nor a document that expands without end outlives its time or
fills the disk.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from printsrv.documents.convert.common import ConversionFailed, Limits
from printsrv.documents.convert.formats import FORMATS

__all__ = [
    "office_to_pdf_local",
    "office_to_pdf_remote",
    "postscript_to_pdf",
    "run_program",
    "run_reading",
]

T = TypeVar("T")


def _run(command: list[str], *, name: str, what: str, limits: Limits, deadline: float) -> None:
    """Run a converter in its own process group with a file-size limit; kill it at the deadline."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ConversionFailed(
            name, f"conversion took longer than {limits.timeout:.0f} s", kind="timeout"
        )
    # prlimit caps what the converter may write (SIGXFSZ past it): a bomb cannot fill the disk.
    prefix = []
    if shutil.which("prlimit"):
        prefix = ["prlimit", f"--fsize={limits.max_output_bytes}", "--"]
    process = subprocess.Popen(
        [*prefix, *command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a kill reaches its children
    )
    try:
        output, _ = process.communicate(timeout=remaining)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ConversionFailed(
            name, f"{what} took longer than {limits.timeout:.0f} s", kind="timeout"
        ) from None
    finally:
        # soffice leaves helper processes behind on some errors; none may outlive the call.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    if process.returncode != 0:
        tail = output.decode("utf-8", "replace").strip().splitlines()[-1:] if output else []
        detail = f": {tail[0][:200]}" if tail else ""
        raise ConversionFailed(
            name, f"{what} failed (exit {process.returncode}){detail}", kind="damaged"
        )


def run_reading(
    command: list[str],
    consume: Callable[[IO[bytes]], T],
    *,
    name: str,
    what: str,
    limits: Limits,
    deadline: float,
) -> T:
    """Run a program whose standard output ``consume`` reads as it comes (a page raster is
    too large to collect like ``_run`` does); return what ``consume`` returns.

    The same rules as ``_run``: its own process group, killed at the deadline, and the same
    ``ConversionFailed`` messages for a time-out and for a non-zero exit (with the last line
    of its standard error, which goes to a file so that a chatty program cannot block).
    """
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ConversionFailed(
            name, f"{what} took longer than {limits.timeout:.0f} s", kind="timeout"
        )
    too_late = ConversionFailed(
        name, f"{what} took longer than {limits.timeout:.0f} s", kind="timeout"
    )
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            start_new_session=True,  # its own process group, so a kill reaches its children
        )
        killed = threading.Event()

        def kill() -> None:
            # Killing closes the pipe, so a ``consume`` blocked in read() returns at once.
            killed.set()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(remaining, kill)
        timer.daemon = True
        timer.start()
        try:
            assert process.stdout is not None
            try:
                result = consume(process.stdout)
            except Exception:
                if killed.is_set():
                    raise too_late from None
                raise
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise too_late from None
        finally:
            timer.cancel()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if killed.is_set():
            raise too_late
        if process.returncode != 0:
            errors.seek(0)
            lines = errors.read().decode("utf-8", "replace").strip().splitlines()[-1:]
            detail = f": {lines[0][:200]}" if lines else ""
            raise ConversionFailed(
                name, f"{what} failed (exit {process.returncode}){detail}", kind="damaged"
            )
        return result


def postscript_to_pdf(
    source: Path, target: Path, *, name: str, limits: Limits, deadline: float
) -> None:
    """Distill PostScript with Ghostscript (``-dSAFER``: no file access beyond its own)."""
    gs = shutil.which("gs")
    if gs is None:
        raise ConversionFailed(name, "Ghostscript (gs) is not installed on the server")
    command = [
        gs, "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite",
        f"-sOutputFile={target}", str(source),
    ]  # fmt: skip
    _run(command, name=name, what="Ghostscript", limits=limits, deadline=deadline)


def office_to_pdf_local(
    source: Path, target: Path, *, name: str, key: str, limits: Limits, deadline: float
) -> None:
    """Convert with headless LibreOffice, in a fresh profile that is removed afterwards.

    A private ``-env:UserInstallation`` per conversion lets conversions run side by side (one
    profile cannot be shared) and keeps one user's document out of another's conversion.
    """
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        raise ConversionFailed(
            name, "office documents need LibreOffice on the server or convert.office.url"
        )
    work = target.parent / f"office-{os.getpid()}-{threading.get_ident()}"
    work.mkdir(mode=0o700)
    try:
        extension = FORMATS[key].extensions[0] if key != "ole" else ".doc"
        document = work / f"document{extension}"
        try:
            os.link(source, document)
        except OSError:  # another file system
            shutil.copyfile(source, document)
        profile = work / "profile"
        command = [
            soffice,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless", "--invisible", "--nologo", "--nodefault", "--norestore",
            "--nolockcheck", "--convert-to", "pdf", "--outdir", str(work), str(document),
        ]  # fmt: skip
        _run(command, name=name, what="LibreOffice", limits=limits, deadline=deadline)
        produced = work / "document.pdf"
        if not produced.is_file():
            raise ConversionFailed(name, "LibreOffice produced no PDF", kind="damaged")
        os.replace(produced, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def office_to_pdf_remote(
    source: Path, target: Path, *, name: str, key: str, limits: Limits, deadline: float
) -> None:
    """POST the document to a LibreOffice Online / Collabora ``convert-to`` endpoint.

    The endpoint takes the file as the multipart field ``data`` and answers with the PDF; a
    URL without a format (``.../convert-to``) gets the ``format=pdf`` field as well.
    """
    import httpx

    url = limits.office_url
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ConversionFailed(
            name, f"conversion took longer than {limits.timeout:.0f} s", kind="timeout"
        )
    extension = FORMATS[key].extensions[0] if key != "ole" else ".doc"
    data = {} if url.rstrip("/").endswith("/pdf") else {"format": "pdf"}
    try:
        with open(source, "rb") as handle, httpx.Client(timeout=remaining) as client:
            files = {"data": (f"document{extension}", handle, FORMATS[key].mime)}
            with client.stream("POST", url, files=files, data=data) as response:
                if response.status_code != 200:
                    raise ConversionFailed(
                        name, f"the office converter answered HTTP {response.status_code}"
                    )
                written = 0
                with open(target, "wb") as out:
                    for chunk in response.iter_bytes():
                        written += len(chunk)
                        if written > limits.max_output_bytes:
                            raise ConversionFailed(name, "the office converter's PDF is too large")
                        if time.monotonic() > deadline:
                            raise ConversionFailed(
                                name,
                                f"conversion took longer than {limits.timeout:.0f} s",
                                kind="timeout",
                            )
                        out.write(chunk)
    except httpx.TimeoutException:
        raise ConversionFailed(
            name, f"the office converter took longer than {limits.timeout:.0f} s", kind="timeout"
        ) from None
    except httpx.HTTPError as exc:
        raise ConversionFailed(name, f"the office converter is unreachable ({exc})") from None


def run_program(
    command: list[str], *, name: str, what: str, limits: Limits, deadline: float
) -> None:
    """Run another converter program (``gs`` rendering a page, say) under the same rules as
    the converters here: its own process group, a file-size limit, killed at ``deadline``;
    ``ConversionFailed`` (kind ``timeout`` or ``damaged``) when it runs late or fails."""
    _run(command, name=name, what=what, limits=limits, deadline=deadline)
