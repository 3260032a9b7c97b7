"""A second machine started with another installation secret than the database's refuses to
start and says so, where it used to serve and answer 401 to every credential (issue 21)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from support import TEST_SECRET, ServeProcess, free_port, set_config

from printsrv.operations.installation import Installation

ADMIN = ("admin", "admin-password-0123")


def machine_env(installation: Installation, home: Path, secret: str) -> dict[str, str]:
    return {
        "PRINTSRV_HOME": str(home),
        "PRINTSRV_DATABASE_URL": installation.env.database_url,
        "PRINTSRV_SECRET_KEY": secret,
    }


def test_a_machine_with_another_secret_refuses_to_start(
    installation: Installation, tmp_path: Path
) -> None:
    set_config(
        installation,
        {"api.restful.auth.username": ADMIN[0], "api.restful.auth.password": ADMIN[1]},
    )
    first = ServeProcess(
        machine_env(installation, tmp_path / "a", TEST_SECRET), log=tmp_path / "a.log"
    ).start()
    try:
        port = free_port()
        second = subprocess.Popen(
            [sys.executable, "-m", "printsrv", "serve", "--port", str(port)],
            env=ServeProcess(
                machine_env(installation, tmp_path / "b", "not-the-installations-secret-0123456"),
                log=tmp_path / "b.log",
            ).env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            output, _ = second.communicate(timeout=60)
        finally:
            if second.poll() is None:  # it started serving: the defect this test is about
                second.kill()
                second.communicate()
        assert second.returncode == 1, output
        assert "is not the one the database" in output and "PRINTSRV_SECRET_KEY" in output
        assert "Traceback" not in output
        # The installation's own machine goes on serving, credentials and all.
        url = f"http://127.0.0.1:{first.port}/restful/v1/documents"
        assert httpx.get(url, auth=ADMIN, timeout=10).status_code == 200
    finally:
        first.stop()
