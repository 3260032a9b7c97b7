"""`printsrv serve` as an operator runs it: first start, TLS, several workers."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import ssl
import stat
from pathlib import Path

import httpx
import pytest
from support import ServeProcess, make_certificate

from printsrv.app import create_app
from printsrv.operations.installation import Installation


@pytest.fixture
def fresh_home(tmp_path: Path, database_url: str) -> dict[str, str]:
    """A new installation: empty home, no secret set, the test database."""
    return {
        "PRINTSRV_HOME": str(tmp_path / "home"),
        "PRINTSRV_DATABASE_URL": database_url,
        "PRINTSRV_SECRET_KEY": "",
    }


def test_first_start_writes_the_admin_password_to_a_private_file_and_it_works(
    fresh_home: dict[str, str], tmp_path: Path
) -> None:
    password_file = tmp_path / "home" / "initial-admin-password"
    server = ServeProcess(fresh_home, log=tmp_path / "first.log").start()
    try:
        output = server.output()
        username = re.search(r"REST admin '(\S+)' was created", output)
        assert username and str(password_file) in output, output
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        password = password_file.read_text().strip()
        assert len(password) >= 20 and password not in output, "stdout is the journal"
        echo = httpx.post(
            f"http://127.0.0.1:{server.port}/restful/v1/tests/echo",
            auth=(username[1], password),
            content="Hello World!",
        )
        assert echo.status_code == 200 and echo.text == "Hello World!"
    finally:
        server.stop()
    assert (tmp_path / "home" / "secret.key").exists()

    again = ServeProcess(fresh_home, log=tmp_path / "second.log").start()
    try:
        assert "was created" not in again.output(), "the first admin is made only once"
        echo = httpx.post(
            f"http://127.0.0.1:{again.port}/restful/v1/tests/echo",
            auth=(username[1], password),
            content="again",
        )
        assert echo.status_code == 200, "the same secret key still verifies the stored hash"
    finally:
        again.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serves_https_with_a_certificate(fresh_home: dict[str, str], tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    server = ServeProcess(
        fresh_home, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key), log=tmp_path / "tls.log"
    )
    url = f"https://127.0.0.1:{server.port}/restful/v1/tests/http/request"
    server.start(ready_url=url, verify=context)
    try:
        body = httpx.get(url, verify=context).json()
        assert body["serverPort"] == server.port
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{server.port}/restful/v1/system/version", timeout=2)
    finally:
        server.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_ssl_certificate_without_key_is_a_usage_error(
    fresh_home: dict[str, str], tmp_path: Path
) -> None:
    cert, _ = make_certificate(tmp_path)
    server = ServeProcess(fresh_home, "--ssl-certfile", str(cert), log=tmp_path / "bad.log")
    with pytest.raises(AssertionError, match="go together"):
        server.start()
    server.stop()


def test_several_workers_serve_one_installation(fresh_home: dict[str, str], tmp_path: Path) -> None:
    server = ServeProcess(fresh_home, "--workers", "2", log=tmp_path / "workers.log").start()
    try:
        with httpx.Client() as client:
            for _ in range(20):
                response = client.get(
                    f"http://127.0.0.1:{server.port}/restful/v1/system/version",
                    headers={"Connection": "close"},
                )
                assert response.status_code == 200
    finally:
        server.stop()
    assert server.output().count("Started server process") == 2, server.output()
    cores = len(os.sched_getaffinity(0))
    assert ("run at most one worker per core" in server.output()) is (cores < 2)


def test_more_workers_than_cores_are_served_with_a_note(
    fresh_home: dict[str, str], tmp_path: Path
) -> None:
    workers = len(os.sched_getaffinity(0)) + 1
    server = ServeProcess(fresh_home, "--workers", str(workers), log=tmp_path / "more.log").start()
    try:
        response = httpx.get(f"http://127.0.0.1:{server.port}/restful/v1/system/version")
        assert response.status_code == 200
    finally:
        server.stop()
    assert f"note: {workers} workers on {workers - 1} core(s)" in server.output(), server.output()


async def _run_lifespan(app: object) -> int:
    async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
        return gc.get_freeze_count()


@pytest.mark.parametrize("setting, frozen", [("on", True), (None, False)])
def test_serve_freezes_the_startup_heap_out_of_the_collector(
    installation: Installation, monkeypatch: pytest.MonkeyPatch, setting: str | None, frozen: bool
) -> None:
    # `printsrv serve` sets the variable; a full collection then no longer walks what
    # startup built. Without it (tests build many apps) nothing is frozen.
    if setting:
        monkeypatch.setenv("PRINTSRV_FREEZE_STARTUP_HEAP", setting)
    else:
        monkeypatch.delenv("PRINTSRV_FREEZE_STARTUP_HEAP", raising=False)
    gc.unfreeze()
    try:
        count = asyncio.run(_run_lifespan(create_app(installation)))
    finally:
        gc.unfreeze()
    assert (count > 10_000) is frozen, count
