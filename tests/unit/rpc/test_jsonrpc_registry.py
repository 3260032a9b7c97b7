"""The JSON-RPC method table: complete, each name once, and assembled without an import cycle.

Each method module lists its methods in a METHODS tuple and jsonrpc_registry.py puts the
tuples together; a method left out of its module's tuple would silently answer -32601.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType
from typing import Any

import grimp
import pytest

from printsrv.rpc import jsonrpc_registry
from printsrv.rpc.jsonrpc_methods import rpc_method, rpc_name

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()


def documented_methods() -> list[str]:
    """The method names in the README's `| method | parameters |` table."""
    table = README.split("| method | parameters |", 1)[1].split("\n\n", 1)[0]
    names: list[str] = []
    for row in table.splitlines()[2:]:
        first_cell = row.split("|")[1]
        names += re.findall(r"`(\w+)`", first_cell)
    return names


def test_the_readme_table_is_found() -> None:
    assert "systemStatus" in documented_methods()
    assert "printerAccessControl" in documented_methods()


def test_every_documented_method_is_registered() -> None:
    assert sorted(set(documented_methods()) - set(jsonrpc_registry.METHODS)) == []


def test_every_registered_method_is_documented_once() -> None:
    documented = documented_methods()
    assert sorted(documented) == sorted(jsonrpc_registry.METHODS)


@pytest.mark.parametrize("module", jsonrpc_registry.MODULES, ids=lambda m: m.__name__)
def test_every_method_a_module_defines_is_in_its_tuple(module: ModuleType) -> None:
    defined = {
        value for value in vars(module).values() if callable(value) and hasattr(value, "rpc_name")
    }
    assert defined == set(module.METHODS)


def test_no_name_is_registered_twice() -> None:
    names = [rpc_name(m) for module in jsonrpc_registry.MODULES for m in module.METHODS]
    assert len(names) == len(set(names))


def test_a_name_given_twice_is_refused() -> None:
    def first(context: Any) -> Any:
        return None

    module = ModuleType("twice")
    module.METHODS = (rpc_method("same")(first), rpc_method("same")(first))  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="'same' is registered twice"):
        jsonrpc_registry.method_table([module])


def test_the_rpc_package_has_no_import_cycle() -> None:
    graph = grimp.build_graph("printsrv", exclude_type_checking_imports=True)
    modules = sorted(m for m in graph.modules if m.startswith("printsrv.rpc."))
    cycles = [
        (importer, imported)
        for importer in modules
        for imported in sorted(graph.find_modules_directly_imported_by(importer))
        if graph.chain_exists(imported, importer)
    ]
    assert cycles == []
