"""The layers hold: adapters -> services -> platform, financial apart (pyproject's importlinter).

`lint-imports` checks every contract in pyproject.toml's `[tool.importlinter]`; docs/architecture.md
says what each one keeps and where new code goes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def _thread_hops(path: Path) -> list[str]:
    """The places in a module that start blocking work in a thread some other way than the
    one policy of printsrv/platform/threads.py."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module in ("starlette.concurrency", "anyio"):
            found.append(f"{path}:{node.lineno} imports {node.module}")
        elif isinstance(node, ast.Attribute) and node.attr in ("run_in_executor", "to_thread"):
            found.append(f"{path}:{node.lineno} calls {node.attr}")
    return found


def test_blocking_work_takes_the_one_thread_policy() -> None:
    """Only platform/threads.py hops to a thread itself; everything else goes through
    `in_thread`, `iterate_in_thread`, `run_in_thread` or `Database.run`, all waited for."""
    policy = ROOT / "printsrv" / "platform" / "threads.py"
    hops = [
        hop
        for path in sorted((ROOT / "printsrv").rglob("*.py"))
        if path != policy
        for hop in _thread_hops(path)
    ]
    assert hops == []
    assert _thread_hops(policy), "the check no longer sees the policy's own hop"
