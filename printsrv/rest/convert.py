"""LibreOffice Online's convert-to API: ``POST /lool/convert-to[/{format}]`` (and Collabora's
``/cool/convert-to``), mounted beside ``/restful/v1`` where LibreOffice Online clients look.

The file comes as the multipart field ``data``; the format as the path's last segment or the
form field ``format`` (pdf, png, txt); for png, ``page`` (default 1) and ``width`` in pixels
(default 1024). The answer is the converted bytes as an attachment; a refusal is REST's
envelope (``{"succes": false, "error": "..."}``) with the one error table's status.

Who may call (checked before the body is read), as LibreOffice Online's ``net.post_allow``:
a client whose address is in ``api.convert.ip-addresses-allowed`` (void: nobody), or any
client that presents credentials: the REST admin's (as the REST admin services check them)
or a user's name and UUID (as the REST user services). Credentials need TLS off loopback.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from printsrv.documents import convert_to as service
from printsrv.errors import InvalidInput, NotAllowed, PrintsrvError
from printsrv.http import client_of, installation_of
from printsrv.platform.security import (
    address_in,
    equals_constant_time,
    parse_basic_authorization,
    require_tls,
)
from printsrv.platform.threads import in_thread
from printsrv.platform.uploads import receive_upload
from printsrv.rest.guards import require_admin, require_user
from printsrv.rest.responses import handle_service_error, handle_unexpected_error

__all__ = ["content_disposition", "convert_to"]

FILE_FIELD = "data"


def check_caller(request: Request) -> None:
    """Let the caller in, or raise (blocking: a user's credentials are read from the database).

    With an ``Authorization`` header: TLS off loopback (403), then the REST admin's
    credentials when the name is the admin's (``require_admin``: its address allowlist,
    401 for a wrong password), else a user's name and UUID (``require_user``: 503 in
    maintenance, 401 when wrong). Without: the client's address must be in
    ``api.convert.ip-addresses-allowed`` (403).
    """
    client = client_of(request)
    header = request.headers.get("authorization")
    snapshot = installation_of(request).config.snapshot()
    if header is None:
        if not address_in(client.host, snapshot.cidr_set("api.convert.ip-addresses-allowed")):
            raise NotAllowed(
                f"Client address {client.host} is not allowed to use convert-to "
                "(api.convert.ip-addresses-allowed); or send admin or user credentials"
            )
        return
    require_tls(client, "convert-to with credentials")
    credentials = parse_basic_authorization(header)
    admin = snapshot["api.restful.auth.username"]
    if admin and equals_constant_time(credentials.username, admin):
        require_admin(request)
    else:
        require_user(request)


def content_disposition(file_name: str) -> str:
    """``attachment`` with ``file_name`` (already safe: ``convert_to.result_name``), and its
    UTF-8 form as RFC 6266's ``filename*`` when it is not plain ASCII."""
    fallback = "".join(c if " " <= c <= "~" else "_" for c in file_name)
    header = f'attachment; filename="{fallback}"'
    if fallback != file_name:
        header += f"; filename*=UTF-8''{quote(file_name, safe='')}"
    return header


async def convert_to(request: Request) -> Response:
    """POST /lool/convert-to[/{format}], /cool/convert-to[/{format}]."""
    try:
        if "authorization" in request.headers:
            await in_thread(check_caller, request)  # a user's credentials: the database
        else:
            check_caller(request)  # the address alone, from the config in memory
        installation = installation_of(request)
        settings = service.ConvertSettings.of(installation.config.snapshot())

        async def receive(work_dir: Path, max_bytes: int) -> service.Input:
            upload = await receive_upload(
                request, work_dir=work_dir, max_file_bytes=max_bytes, file_field=FILE_FIELD
            )
            if upload.path is None:
                raise InvalidInput(
                    f"Send the file as the multipart field '{FILE_FIELD}' (curl -F data=@NAME)"
                )
            fields = upload.fields
            target = service.Target.parse(
                request.path_params.get("format") or fields.get("format"),
                fields.get("page"),
                fields.get("width"),
            )
            return service.Input(upload.path, service.input_name(upload.file_name), target)

        result = await service.convert_to(installation.env.home, settings, receive)
    except PrintsrvError as error:
        return await handle_service_error(request, error)
    except Exception as error:
        # A bug of ours: still REST's envelope (it was Starlette's plain-text page), and the
        # traceback in the log.
        return await handle_unexpected_error(request, error)
    return Response(
        result.content,
        media_type=result.media_type,
        headers={"Content-Disposition": content_disposition(result.file_name)},
    )
