"""Every JSON-RPC method by name: the one place the table is assembled.

Each method module lists its methods in a METHODS tuple (each wrapped by `rpc_method`, which
gives it its name); this module puts them together and refuses a name given twice. The
method modules import jsonrpc_methods for what they share, and nothing imports this module
but the adapter (jsonrpc.py), so the package has no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from printsrv.rpc import (
    jsonrpc_methods,
    jsonrpc_money,
    jsonrpc_printers,
    jsonrpc_quotas,
    jsonrpc_rules,
    jsonrpc_users,
)
from printsrv.rpc.jsonrpc_methods import rpc_name

MODULES: tuple[ModuleType, ...] = (
    jsonrpc_methods,
    jsonrpc_users,
    jsonrpc_money,
    jsonrpc_printers,
    jsonrpc_rules,
    jsonrpc_quotas,
)


def method_table(modules: Iterable[ModuleType]) -> dict[str, Callable[..., Any]]:
    """The methods of `modules` by JSON-RPC name; a name given twice is a ValueError."""
    table: dict[str, Callable[..., Any]] = {}
    for module in modules:
        for method in module.METHODS:
            name = rpc_name(method)
            if name in table:
                raise ValueError(f"JSON-RPC method {name!r} is registered twice")
            table[name] = method
    return table


METHODS: dict[str, Callable[..., Any]] = method_table(MODULES)
