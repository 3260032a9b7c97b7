"""The XML-RPC adapter at /xmlrpc/v1: SavaPage's `onetime-auth.createToken`, and introspection.

A call's body is capped at MAX_BODY bytes (413 beyond, before it is parsed) and parsed by
defusedxml's expat parser with DTDs forbidden, so entity expansion (billion laughs) and
external entities (a local file, a URL) never happen. Every other problem is a fault,
answered with HTTP 200 as XML-RPC has it:

- protocol faults use the interoperability codes: -32700 not well-formed XML (or a DTD),
  -32600 well-formed but not an XML-RPC call, -32601 no such method, -32602 wrong parameter
  count or type, -32603 an internal error (the traceback goes to the log);
- service errors take their faultCode from the one error table (`printsrv/error_table.py`);
  a fault for a part that is unavailable (maintenance, the database) carries `Retry-After`
  too. It stays HTTP 200: an XML-RPC client reads the
  fault of a 200 only (Python's xmlrpc.client, PHP's, raise a bare protocol error for any
  other status and drop the body that says why).

Every call carries the TTP API key, so XML-RPC needs TLS off loopback
(`security.require_tls`); `createToken` logs a user in, so maintenance refuses it, and an
address that sent too many wrong keys is refused for a while (`people/ttp.py`).

The methods are thin: they check nothing themselves and call one service each.
"""

from __future__ import annotations

import logging
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.parsers.expat import ExpatError

from defusedxml import DefusedXmlException
from defusedxml.xmlrpc import DefusedExpatParser
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from printsrv import errors
from printsrv.error_table import answer_for, retry_after
from printsrv.http import client_of, installation_of, read_body
from printsrv.operations.installation import Installation
from printsrv.people import ttp
from printsrv.platform.security import Client, require_tls

log = logging.getLogger(__name__)

# createToken's call is ~300 bytes; 64 KiB leaves room for any honest client and keeps a
# hostile one from making the server buffer or parse much.
MAX_BODY = 64 * 1024

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class ProtocolFault(Exception):
    """A call that cannot be dispatched: malformed body, unknown method, bad parameters."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- the methods ------------------------------------------------------------------------------

_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "int": int,
    "boolean": bool,
    "double": float,
    "array": list,
    "struct": dict,
    "base64": xmlrpc.client.Binary,
    "dateTime.iso8601": xmlrpc.client.DateTime,
}


def _type_name(value: Any) -> str:
    if value is None:
        return "nil"
    for name, kind in _TYPES.items():
        # bool is an int in Python, but not in XML-RPC.
        if isinstance(value, kind) and not (name == "int" and isinstance(value, bool)):
            return name
    return type(value).__name__


@dataclass(frozen=True)
class Method:
    """One XML-RPC method.

    name:     the method name on the wire.
    function: called as function(installation, client, *params) in a database thread; the
              client is the caller (after trusted proxies), for limits per address.
    params:   (name, XML-RPC type) of each parameter, in order.
    returns:  the XML-RPC type of the result.
    help:     the text system.methodHelp answers.
    """

    name: str
    function: Callable[..., Any]
    params: tuple[tuple[str, str], ...]
    returns: str
    help: str

    def check(self, values: tuple[Any, ...]) -> None:
        """Raise ProtocolFault(INVALID_PARAMS) unless `values` fit the signature."""
        wanted = ", ".join(f"{name}: {kind}" for name, kind in self.params)
        if len(values) != len(self.params):
            raise ProtocolFault(
                INVALID_PARAMS,
                f"{self.name} takes {len(self.params)} parameter(s) ({wanted}); got {len(values)}",
            )
        for position, ((name, kind), value) in enumerate(zip(self.params, values, strict=True), 1):
            if _type_name(value) != kind:
                raise ProtocolFault(
                    INVALID_PARAMS,
                    f"{self.name}: parameter {position} ({name}) must be a {kind}, "
                    f"not {_type_name(value)}",
                )


def _create_token(installation: Installation, client: Client, apikey: str, username: str) -> str:
    return ttp.create_login_token(
        installation, api_key=apikey, user_name=username, address=client.host
    )


def _list_methods(installation: Installation, client: Client) -> list[str]:
    return sorted(METHODS)


def _method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ProtocolFault(METHOD_NOT_FOUND, f"Method {name[:100]!r} does not exist") from None


def _method_help(installation: Installation, client: Client, name: str) -> str:
    return _method(name).help


def _method_signature(installation: Installation, client: Client, name: str) -> list[list[str]]:
    method = _method(name)
    return [[method.returns, *(kind for _, kind in method.params)]]


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "onetime-auth.createToken",
            _create_token,
            (("apikey", "string"), ("username", "string")),
            "string",
            "Acquire a one-time token that logs `username` in to the web app once: POST it "
            "as auth_token, with the user name as auth_user, to /user. The apikey is the "
            "web-login.ttp.apikey property; web-login.ttp.enable must be Y; user aliases "
            "apply. The token expires after web-login.ttp.token.expiry-msecs.",
        ),
        Method(
            "system.listMethods",
            _list_methods,
            (),
            "array",
            "The names of the methods this server offers.",
        ),
        Method(
            "system.methodHelp",
            _method_help,
            (("method", "string"),),
            "string",
            "What the named method does.",
        ),
        Method(
            "system.methodSignature",
            _method_signature,
            (("method", "string"),),
            "array",
            "The named method's signatures: arrays of the return type and parameter types.",
        ),
    )
}


# --- the wire -----------------------------------------------------------------------------------


def parse_call(body: bytes) -> tuple[str, tuple[Any, ...]]:
    """The method name and parameters of an XML-RPC methodCall; ProtocolFault otherwise.

    Refuses any DTD, so no entity is ever declared, let alone expanded or fetched.
    """
    unmarshaller = xmlrpc.client.Unmarshaller()
    parser = DefusedExpatParser(unmarshaller, forbid_dtd=True)
    try:
        parser.feed(body)
        parser.close()
        params = unmarshaller.close()
    except DefusedXmlException:
        raise ProtocolFault(
            PARSE_ERROR, "XML with a DTD or entity declarations is not accepted"
        ) from None
    except (ExpatError, LookupError) as error:
        # LookupError: the XML declaration names an encoding Python does not know.
        raise ProtocolFault(PARSE_ERROR, f"Body is not well-formed XML: {error}") from None
    except xmlrpc.client.Fault:
        raise ProtocolFault(INVALID_REQUEST, "A fault is an answer, not a call") from None
    except Exception as error:
        # The unmarshaller's ResponseError, ValueError, TypeError ... for bad values
        # ("<int>x</int>", "<boolean>2</boolean>") or an unbalanced structure.
        detail = str(error)[:200] or type(error).__name__
        raise ProtocolFault(
            INVALID_REQUEST, f"Body is not a valid XML-RPC call: {detail}"
        ) from None
    name = unmarshaller.getmethodname()
    if not name:
        raise ProtocolFault(INVALID_REQUEST, "Body is not an XML-RPC methodCall")
    return name, params


def _xml(body: str) -> Response:
    return Response(body, media_type="text/xml")


def fault_response(code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """A methodResponse holding a fault (HTTP 200, as XML-RPC answers faults)."""
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(code, message), methodresponse=True)
    return Response(body, media_type="text/xml", headers=headers)


def service_fault(error: errors.PrintsrvError) -> Response:
    """The fault for a service error; `Retry-After` too when a part is unavailable."""
    seconds = retry_after(error)
    headers = None if seconds is None else {"Retry-After": str(seconds)}
    return fault_response(answer_for(error).fault, error.message, headers)


async def endpoint(request: Request) -> Response:
    """POST /xmlrpc/v1: read, parse and dispatch one call; answer its result or a fault."""
    try:
        body = await read_body(request, MAX_BODY)
    except errors.PayloadTooLarge as error:
        # Refused before parsing; closing the connection spares reading the rest.
        return PlainTextResponse(error.message + "\n", 413, headers={"Connection": "close"})
    installation = installation_of(request)
    try:
        client = client_of(request)
        require_tls(client, "XML-RPC")
        name, params = parse_call(body)
        method = _method(name)
        method.check(params)
        # Every method is short database work at most: the database's own threads.
        result = await installation.db.run(method.function, installation, client, *params)
    except ProtocolFault as fault:
        return fault_response(fault.code, fault.message)
    except errors.PrintsrvError as error:
        return service_fault(error)
    except Exception:
        log.exception("XML-RPC call failed")
        return fault_response(INTERNAL_ERROR, "Internal error; the server log has the details")
    return _xml(xmlrpc.client.dumps((result,), methodresponse=True, allow_none=False))
