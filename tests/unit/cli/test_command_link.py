"""scripts/install puts the printsrv command on PATH (issue 14 item 8): as root it links
/usr/local/bin/printsrv to the clone's .venv/bin/printsrv (scripts/link-command), otherwise
it says exactly how. PRINTSRV_COMMAND_LINK points the link into the test's directory."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "link-command"
COMMAND = ROOT / ".venv" / "bin" / "printsrv"


def link_command(link: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRINTSRV_COMMAND_LINK": str(link)}
    return subprocess.run([str(SCRIPT)], capture_output=True, text=True, env=env, check=True)


def test_install_runs_it() -> None:
    assert "scripts/link-command" in (ROOT / "scripts" / "install").read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="the link is made only as root")
def test_root_gets_a_working_link(tmp_path: Path) -> None:
    link = tmp_path / "bin" / "printsrv"
    first = link_command(link)
    assert f"Linked {link} -> {COMMAND}" in first.stdout
    assert link.is_symlink() and link.resolve() == COMMAND.resolve()
    version = subprocess.run([str(link), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("printsrv, version")
    # A warm install (scripts/serve runs it every time) says nothing.
    assert link_command(link).stdout == ""
    # A stale link (another clone, since removed) is replaced.
    link.unlink()
    link.symlink_to(tmp_path / "gone" / "printsrv")
    assert "Linked" in link_command(link).stdout and link.resolve() == COMMAND.resolve()


@pytest.mark.skipif(os.geteuid() != 0, reason="the link is made only as root")
def test_a_real_file_is_left_alone(tmp_path: Path) -> None:
    link = tmp_path / "printsrv"
    link.write_text("#!/bin/sh\necho mine\n")
    result = link_command(link)
    assert "is not a link, so it was left alone" in result.stderr
    assert link.read_text() == "#!/bin/sh\necho mine\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="as root the link is made instead")
def test_others_are_told_how(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(SCRIPT)], capture_output=True, text=True, env=env, check=True)
    assert f'export PATH="{ROOT}/.venv/bin:$PATH"' in result.stdout
