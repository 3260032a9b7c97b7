"""The README's quick start, run as written against a live server on a fresh installation.

Every ``sh`` block of the README's "Quick start" section runs, in order, in one bash process
(the blocks share shell variables, as they would in one terminal) with ``set -euo pipefail``,
and ``curl`` fails on an HTTP error. Two things are replaced, and only these: the port of the
live server for ``127.0.0.1:8631``, and the private cupsd's socket for ``/run/cups/cups.sock``
(the tests never touch the machine's own CUPS).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cupsd import PrivateCups
from support import ServeProcess

README = Path(__file__).resolve().parents[2] / "README.md"
VENV_BIN = Path(sys.executable).parent

# Makes an HTTP error status fail the script, as a person reading the answer would notice it.
PREAMBLE = """\
curl() { command curl --silent --show-error --fail-with-body "$@"; echo; }
"""


def quick_start_blocks(readme: str) -> list[str]:
    """The ``sh`` blocks of the "## Quick start" section, in order."""
    section = re.search(r"(?ms)^## Quick start\n(.*?)(?=^## )", readme)
    assert section, "README.md has no '## Quick start' section"
    return re.findall(r"(?ms)^```sh\n(.*?)^```\n", section.group(1))


def test_the_quick_start_has_blocks_for_each_step() -> None:
    blocks = quick_start_blocks(README.read_text())

    assert len(blocks) >= 4
    text = "\n".join(blocks)
    for step in ("printsrv user add janet", "printsrv printer add hall-laser", "systemStatus"):
        assert step in text


@pytest.fixture
def quick_start_cups() -> PrivateCups:
    cups = PrivateCups(prefix="printsrv-readme-cupsd-").start()
    yield cups
    cups.close()


def test_the_readme_quick_start_runs_top_to_bottom_on_a_fresh_install(
    tmp_path: Path, quick_start_cups: PrivateCups
) -> None:
    # Arrange: a fresh clone's view of things: ./var is the home, nothing set up yet.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRINTSRV_", "CUPS_"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PRINTSRV_HOME"] = str(tmp_path / "var")
    server = ServeProcess({}, log=tmp_path / "serve.log")
    server.env = {**env, "PYTHONUNBUFFERED": "1"}
    server.start()
    try:
        script = PREAMBLE + "\n".join(quick_start_blocks(README.read_text()))
        script = script.replace("127.0.0.1:8631", f"127.0.0.1:{server.port}")
        script = script.replace("/run/cups/cups.sock", quick_start_cups.server)

        # Act
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

        # Assert: it ran through, and each step did what its comment says.
        assert result.returncode == 0, (
            f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            f"\n--- server\n{server.output()}"
        )
        out = result.stdout
        assert "Hello World!" in out
        assert not (tmp_path / "var" / "initial-admin-password").exists()
        assert '{"succes":true,"result":"10.000000"}' in out
        assert '"status":"printing"' in out and '"cost":"0.100000"' in out
        assert '"value":"READY"' in out
        assert (tmp_path / "hello.txt").exists()
        _the_print_completes_in_cups(server.port, out, quick_start_cups)
    finally:
        server.stop()


def _the_print_completes_in_cups(port: int, output: str, cups: PrivateCups) -> None:
    """The print the quick start sent reached the private CUPS and completed there."""
    upload = next(json.loads(line) for line in output.splitlines() if line.startswith('{"id":'))
    deadline = time.monotonic() + 20
    while True:
        jobs = subprocess.run(
            ["lpstat", "-h", cups.server, "-W", "completed", "-o", "hall-laser"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if "hall-laser-" in jobs:
            break
        assert time.monotonic() < deadline, cups.diagnostics()
        time.sleep(0.1)
    assert upload["title"] == "hello.txt" and upload["queue"] == "first"
    assert httpx.get(f"http://127.0.0.1:{port}/restful/v1/system/version").status_code == 200
