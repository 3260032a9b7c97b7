"""What every JSON-RPC method module shares, and the public methods (docs/jsonrpc.md).

The error table, the result shapes, the parameter checks and `rpc_method`; then
systemStatus, authUserSource and the config methods. The other method modules
(jsonrpc_users, jsonrpc_money, jsonrpc_printers) import this one, never the reverse;
jsonrpc_registry.py assembles the method table from all of them.

Each method checks its parameters, makes one service call in one transaction, and wraps
the answer in its `@type` data object. Service errors become JSON-RPC error objects
through the one error table (`printsrv/error_table.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any

from jsonrpcserver import Success
from jsonrpcserver.exceptions import JsonRpcError

from printsrv import errors
from printsrv.error_table import ACCESS_DENIED, answer_for
from printsrv.operations.installation import Installation
from printsrv.people import sources as usersource
from printsrv.platform import properties as config_service
from printsrv.platform.properties import Snapshot
from printsrv.platform.security import Client


def basic_reason(reason: str | None) -> dict[str, str]:
    return {"@type": "BASIC", "reason": reason or "unknown"}


# -- result shapes -------------------------------------------------------------------------------


def enum_result(value: str) -> dict[str, Any]:
    return {"data": {"@type": "enum", "value": value}}


def boolean_result(value: bool) -> dict[str, Any]:
    return {"data": {"@type": "boolean", "value": value}}


def string_result(value: str) -> dict[str, Any]:
    return {"data": {"@type": "string", "value": value}}


def basic_result(code: int = 0, message: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"@type": "BASIC", "code": code}
    if message is not None:
        data["message"] = message
    return {"data": data}


@dataclass(frozen=True)
class Page:
    """A slice of a sorted list: 0-based start and page size."""

    start: int
    size: int

    def fields(self, shown: int, total: int) -> dict[str, int]:
        return {
            "currentItemCount": shown,
            "itemsPerPage": self.size,
            "startIndex": self.start,
            "totalItems": total,
            "pageIndex": self.start // self.size,
            "totalPages": math.ceil(total / self.size) if total else 0,
        }


def list_result(type_name: str, items: list[Any], page: Page, total: int) -> dict[str, Any]:
    return {"data": {"@type": type_name, "items": items, **page.fields(len(items), total)}}


def names_page(type_name: str, names: Sequence[str], page: Page) -> dict[str, Any]:
    return list_result(
        type_name, list(names[page.start : page.start + page.size]), page, len(names)
    )


# -- parameters ----------------------------------------------------------------------------------


def bad_param(name: str, what: str) -> errors.InvalidInput:
    return errors.InvalidInput(f"Parameter {name!r} {what}", reason=name)


def text_param(name: str, value: Any, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise bad_param(name, "must be a non-empty string" if required else "must be a string")
    return value


def bool_param(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise bad_param(name, "must be true or false")
    return value


def int_param(name: str, value: Any, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise bad_param(name, f"must be a whole number from {minimum} to {maximum}")
    return value


def page_params(start_index: Any, items_per_page: Any) -> Page:
    return Page(
        int_param("startIndex", 0 if start_index is None else start_index, 0, 10**9),
        int_param("itemsPerPage", 100 if items_per_page is None else items_per_page, 1, 1000),
    )


def object_param(name: str, value: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_param(name, "must be an object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise errors.InvalidInput(
            f"Parameter {name!r} has unknown field {unknown[0]!r}", reason=f"{name}.{unknown[0]}"
        )
    return value


# -- method wrapper ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallContext:
    """What every method gets besides its parameters."""

    installation: Installation
    snapshot: Snapshot
    client: Client


def rpc_method(name: str, *, admin: bool = True) -> Callable[[Callable[..., Any]], Any]:
    """Make `func` the JSON-RPC method `name`; admin methods answer only when
    api.jsonrpc.admin.enable is Y.

    The wrapper keeps the method's signature (functools.wraps), which jsonrpcserver uses
    to refuse missing or unexpected parameters with -32602, and carries its name
    (`rpc_name`). Nothing is registered here: each method module lists its methods in its
    METHODS tuple, and jsonrpc_registry.py assembles the table from those tuples.
    """

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(func)
        def method(context: CallContext, *args: Any, **kwargs: Any) -> Any:
            if admin and not context.snapshot["api.jsonrpc.admin.enable"]:
                code, message = ACCESS_DENIED
                raise JsonRpcError(
                    code,
                    message,
                    basic_reason(
                        f"{name} is a provisioning method: set api.jsonrpc.admin.enable to Y"
                    ),
                )
            try:
                return Success(func(context, *args, **kwargs))
            except errors.PrintsrvError as error:
                code, _ = answer_for(error).jsonrpc
                raise JsonRpcError(code, error.message, basic_reason(error.reason)) from None

        method.rpc_name = name  # type: ignore[attr-defined]
        return method

    return register


def rpc_name(method: Callable[..., Any]) -> str:
    """The JSON-RPC name `rpc_method` gave `method`."""
    name: str = method.rpc_name  # type: ignore[attr-defined]
    return name


# -- public methods ------------------------------------------------------------------------------


def system_status(context: CallContext) -> dict[str, Any]:
    """READY, or why users are kept out: SETUP, MAINTENANCE or UNAVAILABLE."""
    return enum_result(context.installation.monitor.status(context.snapshot).value)


# Methods without parameters, cheap enough to answer on the event loop (no database, no
# blocking call), called straight from the adapter: a monitoring system polls them.
INLINE_METHODS: dict[str, Callable[[CallContext], dict[str, Any]]] = {"systemStatus": system_status}
system_status_method = rpc_method("systemStatus", admin=False)(system_status)


@rpc_method("authUserSource", admin=False)
def auth_user_source(context: CallContext, username: Any, password: Any) -> dict[str, Any]:
    """Whether user name and password are valid in the user source (aliases apply)."""
    name = text_param("username", username)
    secret = text_param("password", password, required=False)
    with context.installation.db.transaction() as session:
        return boolean_result(usersource.authenticate(session, context.snapshot, name, secret))


# Properties only the command line may change: who may call the APIs, and how callers are
# identified. A leaked X-Auth-Key must not be enough to widen its own access.
GUARDED_PROPERTIES = frozenset(
    {
        "api.jsonrpc.admin.enable",
        "api.jsonrpc.ext.ip-addresses-allowed",
        "api.jsonrpc.secret-key",
        "api.restful.auth.password",
        "api.restful.auth.username",
        "api.restful.ip-addresses-allowed",
        "server.trusted-proxies",
        "web-login.ttp.apikey",
    }
)


@rpc_method("getConfigProperty")
def get_config_property(context: CallContext, uniqueName: Any) -> dict[str, Any]:
    """A property's value; a secret's value is never returned."""
    name = text_param("uniqueName", uniqueName)
    prop = config_service.get_definition(name)
    if prop.secret:
        raise errors.NotAllowed(
            f"Config property {name!r} is a secret; it is never returned", reason=name
        )
    with context.installation.db.read() as session:
        [(_, value)] = config_service.describe(session, [name])
    return string_result(value)


@rpc_method("setConfigProperty")
def set_config_property(context: CallContext, name: Any, value: Any) -> dict[str, Any]:
    """Validate and store a property; secret, allowlist and credential properties refused."""
    key = text_param("name", name)
    text = text_param("value", value, required=False)
    config_service.get_definition(key)
    if key in GUARDED_PROPERTIES:
        raise errors.NotAllowed(
            f"Config property {key!r} can only be changed with the printsrv command", reason=key
        )
    with context.installation.db.transaction() as session:
        config_service.set_property(
            session,
            key,
            text,
            hasher=context.installation.hasher,
            actor=f"jsonrpc {context.client.host}",
        )
    return basic_result()


# jsonrpc_registry.py assembles the method table from this tuple and the other modules'.
METHODS = (system_status_method, auth_user_source, get_config_property, set_config_property)
