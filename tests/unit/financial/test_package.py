"""The financial package's boundary, public surface and exception tree."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path

import financial
from financial import errors

PACKAGE = Path(financial.__file__).parent
ALLOWED = {"financial", "sqlalchemy", "reportlab"} | set(sys.stdlib_module_names)


def _imported_top_levels(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_financial_imports_nothing_from_printsrv_or_the_web() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        unexpected = _imported_top_levels(path) - ALLOWED
        assert not unexpected, f"{path.name} imports {sorted(unexpected)}"


def test_all_is_sorted_and_complete() -> None:
    exported = list(financial.__all__)
    isort_order = sorted(exported, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))
    assert exported == isort_order
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert getattr(financial, name) is not None


def test_every_error_is_in_the_tree_and_documented() -> None:
    classes = [
        value
        for value in vars(errors).values()
        if inspect.isclass(value)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    ]
    assert errors.__doc__ is not None
    for cls in classes:
        assert cls.__doc__, f"{cls.__name__} has no docstring"
        assert cls.__name__ in errors.__doc__, f"{cls.__name__} missing from the tree"
        if cls is errors.LedgerMisuse:
            assert issubclass(cls, RuntimeError)
            assert not issubclass(cls, errors.FinancialError)
        else:
            assert issubclass(cls, errors.FinancialError)
            assert cls.__name__ in financial.__all__


def test_every_public_function_has_a_docstring() -> None:
    for name in financial.__all__:
        value = getattr(financial, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__doc__, f"{name} has no docstring"
