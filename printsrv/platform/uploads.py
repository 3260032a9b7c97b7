"""Receiving a multipart/form-data upload: one file streamed to disk, small text fields.

Starlette's ``request.form()`` caps only the non-file fields and spools files to the system
temp directory without a limit, so printsrv parses the stream itself with python-multipart's
push parser: the file part goes chunk by chunk into a private work directory (hashed on the
way), the cap is checked on every chunk, and a body declared larger than the cap is refused
before a byte of it is read. Nothing of a refused upload stays on disk.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from printsrv.errors import InvalidInput, PayloadTooLarge

if TYPE_CHECKING:  # read through its interface only: platform imports no web framework
    from starlette.requests import Request

__all__ = ["Upload", "receive_upload"]

# Room for the other fields, part headers and boundaries around the file.
FORM_OVERHEAD: Final = 256 * 1024
MAX_FIELD_BYTES: Final = 64 * 1024
MAX_FIELDS: Final = 32
# A part header line may hold a long file name; longer ones are refused with a message.
MAX_HEADER_BYTES: Final = 16 * 1024
MAX_NAME_LENGTH: Final = 255


@dataclass
class Upload:
    """What a multipart upload brought.

    Attributes:
        fields: the text fields by name (the last one wins when a name repeats).
        path: where the file part was written, or None when there was none.
        file_name: the file name the client gave (not trusted, never used as a path).
        size: the file's size in bytes.
        sha256: the file's SHA-256.
    """

    fields: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    file_name: str = ""
    size: int = 0
    sha256: str = ""


class _TooLarge(Exception):
    pass


class _Receiver:
    """python-multipart callbacks that route parts to a file or to fields."""

    def __init__(self, *, work_dir: Path, file_field: str, max_file_bytes: int) -> None:
        self.work_dir = work_dir
        self.file_field = file_field
        self.max_file_bytes = max_file_bytes
        self.upload = Upload()
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, str] = {}
        self._fd: int | None = None
        self._hash = hashlib.sha256()
        self._field: str | None = None
        self._value = bytearray()
        self._fields = 0
        self.error: InvalidInput | None = None

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._headers = {}
        self._field = None
        self._value = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        name = self._header_name.decode("latin-1").strip().lower()
        # Latin-1 keeps every byte as one character; _decode turns a UTF-8 file name back.
        self._headers[name] = bytes(self._header_value).decode("latin-1")
        self._header_name = bytearray()
        self._header_value = bytearray()

    def on_headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get("content-disposition"))
        if disposition != b"form-data" or b"name" not in params:
            raise InvalidInput(
                "Every multipart part needs Content-Disposition: form-data; name=..."
            )
        name = params[b"name"].decode("latin-1")
        if name == self.file_field:
            if self.upload.path is not None:
                raise InvalidInput(f"Send one '{self.file_field}' part, not several")
            raw_name = params.get(b"filename", b"")
            self.upload.file_name = _decode(raw_name)
            path = self.work_dir / "upload"
            # O_EXCL: never follow or reuse something already there.
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self.upload.path = path
            return
        self._fields += 1
        if self._fields > MAX_FIELDS:
            raise InvalidInput(f"More than {MAX_FIELDS} form fields")
        self._field = name

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._fd is not None:
            self.upload.size += len(chunk)
            if self.upload.size > self.max_file_bytes:
                raise _TooLarge
            self._hash.update(chunk)
            view = memoryview(chunk)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            return
        if self._field is not None:
            self._value += chunk
            if len(self._value) > MAX_FIELD_BYTES:
                raise InvalidInput(
                    f"Form field '{self._field}' is longer than {MAX_FIELD_BYTES} bytes"
                )

    def on_part_end(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.upload.sha256 = self._hash.hexdigest()
            return
        if self._field is not None:
            try:
                self.upload.fields[self._field] = self._value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"Form field '{self._field}' is not UTF-8") from None
            self._field = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _decode(raw: bytes) -> str:
    # parse_options_header gives back the header's own bytes (latin-1 of our decoded text).
    text = raw.decode("latin-1")
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return text


def _boundary(request: Request) -> bytes:
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise InvalidInput("Send the document as multipart/form-data (curl -F file=@NAME)")
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInput("The multipart/form-data Content-Type has no boundary")
    return boundary


async def receive_upload(
    request: Request, *, work_dir: Path, max_file_bytes: int, file_field: str = "file"
) -> Upload:
    """Read a multipart body: the ``file_field`` part into ``work_dir/upload``, fields in memory.

    Raises ``PayloadTooLarge`` as soon as the file passes ``max_file_bytes`` (or at once, when
    Content-Length says it will), ``InvalidInput`` for a body that is not well-formed
    multipart. On any error the partial file is removed; ``work_dir`` is the caller's to
    remove in any case.
    """
    boundary = _boundary(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_file_bytes + FORM_OVERHEAD:
        raise PayloadTooLarge(
            f"Upload of {int(declared)} bytes is over the {max_file_bytes} byte limit"
        )
    receiver = _Receiver(work_dir=work_dir, file_field=file_field, max_file_bytes=max_file_bytes)
    parser = MultipartParser(
        boundary,
        receiver.callbacks(),
        max_header_size=MAX_HEADER_BYTES,  # type: ignore[arg-type]
    )
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_file_bytes + FORM_OVERHEAD:
                raise _TooLarge
            parser.write(chunk)
        parser.finalize()
    except _TooLarge:
        receiver.close()
        _discard(receiver.upload)
        raise PayloadTooLarge(f"The file is over the {max_file_bytes} byte limit") from None
    except FormParserError as exc:
        receiver.close()
        _discard(receiver.upload)
        raise InvalidInput(f"The multipart body is malformed: {exc}") from None
    except BaseException:
        receiver.close()
        _discard(receiver.upload)
        raise
    if receiver._fd is not None:  # the body ended inside the file part
        receiver.close()
        _discard(receiver.upload)
        raise InvalidInput("The multipart body ended before the file did")
    return receiver.upload


def _discard(upload: Upload) -> None:
    if upload.path is not None:
        upload.path.unlink(missing_ok=True)
        upload.path = None


def clean_file_name(name: str) -> str:
    """The title a file name gives a document; InvalidInput for a name that is an attack.

    Refused: control characters (NUL ...), ``..`` path segments, more than 255 characters.
    A path the client sent along (``C:\\Users\\x\\a.pdf``) is cut to its last segment.
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInput("The file name contains control characters")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"The file name is longer than {MAX_NAME_LENGTH} characters")
    segments = name.replace("\\", "/").split("/")
    if ".." in (segment.strip() for segment in segments):
        raise InvalidInput("The file name must not contain '..' path segments")
    return segments[-1].strip()
