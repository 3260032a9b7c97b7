"""Every service error has a deliberate answer in every adapter's envelope.

Like httpx's "all exceptions mapped" test: a new error class that only falls through to
the generic base entry (REST 400 / JSON-RPC -32603 "Internal error") fails here, so its
author decides what callers see.
"""

from __future__ import annotations

import pytest
from support import every_service_error_class

from printsrv import errors
from printsrv.rest.responses import ERROR_STATUS
from printsrv.rpc.jsonrpc_methods import ERROR_CODES

# One loader of every printsrv module and its error classes, shared with the XML-RPC and
# web tables' tests.
ERROR_CLASSES = every_service_error_class()


def nearest(cls: type, table: dict) -> type:
    return next(c for c in cls.__mro__ if c in table)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_rest_maps_every_error_deliberately(cls: type) -> None:
    assert nearest(cls, ERROR_STATUS) is not errors.PrintsrvError, (
        f"{cls.__qualname__} falls through to the generic REST entry"
    )


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_jsonrpc_maps_every_error_deliberately(cls: type) -> None:
    assert nearest(cls, ERROR_CODES) is not errors.PrintsrvError, (
        f"{cls.__qualname__} falls through to the generic JSON-RPC entry"
    )


def test_error_envelopes_keep_their_shapes() -> None:
    from printsrv.rest.responses import failure
    from printsrv.rpc.jsonrpc import error_object

    assert failure("x", 404).body == b'{"succes":false,"error":"x"}'
    assert error_object("id", -32601, "Method not found", "m") == {
        "jsonrpc": "2.0",
        "id": "id",
        "result": False,
        "error": {
            "code": -32601,
            "message": "Method not found",
            "data": {"@type": "BASIC", "reason": "m"},
        },
    }
