"""A config change reaches a running server within a second even while its work threads are
busy (issue 21: once, under load, a JSON-RPC allowlist change took more than 3 s).

The server is a real `printsrv serve` process. The load is JSON-RPC `setUserProperties` with
a new password from many clients at once: each call hashes with argon2 (about 50 ms of CPU)
inside a write transaction, so the work threads are all busy and more calls wait for them.
Clients are told apart by a trusted proxy's X-Forwarded-For: the load comes from LOAD, a probe
from PROBE, and the test lets PROBE in and out of the allowlist while the load goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import JSONRPC_KEY, ServeProcess, open_jsonrpc, set_config

from printsrv.operations.installation import Installation
from printsrv.people import users

LOAD, PROBE = "10.0.0.1", "10.0.0.2"
CLIENTS = 48
PROMISE = 1.0  # seconds: README, "in force everywhere within a second"
ALLOWLIST = "api.jsonrpc.ext.ip-addresses-allowed"


def call(client: httpx.Client, url: str, address: str, body: dict) -> dict:
    response = client.post(
        f"{url}/jsonrpc/v1",
        json=body,
        headers={
            "X-Auth-Key": JSONRPC_KEY,
            "X-Forwarded-For": address,
            "X-Forwarded-Proto": "https",
        },
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def probe_allowed(client: httpx.Client, url: str) -> bool:
    answer = call(client, url, PROBE, {"jsonrpc": "2.0", "id": 1, "method": "systemStatus"})
    return "error" not in answer


@pytest.fixture
def server(installation: Installation, tmp_path: Path) -> Iterator[str]:
    open_jsonrpc(installation, admin=True, allowed=LOAD)
    set_config(installation, {"server.trusted-proxies": "127.0.0.1"})
    with installation.db.transaction() as session:
        for n in range(CLIENTS):
            users.add_user(session, f"load-{n}")
    env = {
        "PRINTSRV_HOME": str(installation.env.home),
        "PRINTSRV_DATABASE_URL": installation.env.database_url,
        "PRINTSRV_SECRET_KEY": installation.env.secret_key or "",
    }
    process = ServeProcess(env, "--no-access-log", log=tmp_path / "serve.log").start()
    try:
        yield f"http://127.0.0.1:{process.port}"
    finally:
        process.stop()


def test_an_allowlist_change_is_in_force_within_a_second_under_load(
    server: str, installation: Installation
) -> None:
    stop = threading.Event()
    done: list[int] = []

    def load(n: int) -> None:
        with httpx.Client() as client:
            while not stop.is_set():
                user = {"userName": f"load-{n}", "password": f"new-password-{time.time()}"}
                body = {"jsonrpc": "2.0", "id": n, "method": "setUserProperties"}
                answer = call(client, server, LOAD, {**body, "params": {"user": user}})
                assert "error" not in answer, answer
                done.append(n)

    workers = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(CLIENTS)]
    for worker in workers:
        worker.start()
    delays = []
    try:
        with httpx.Client() as probe:
            assert not probe_allowed(probe, server)
            time.sleep(2)  # the load in full swing: every work thread busy, more waiting
            calls_before = len(done)
            for allowed in (f"{LOAD}, {PROBE}", LOAD, f"{LOAD}, {PROBE}", LOAD):
                set_config(installation, {ALLOWLIST: allowed})
                changed = time.monotonic()
                while probe_allowed(probe, server) != (PROBE in allowed):
                    assert time.monotonic() - changed < 30, "the change never took effect"
                    time.sleep(0.01)
                delays.append(time.monotonic() - changed)
            assert len(done) > calls_before, "the load was served all along"
    finally:
        stop.set()
        for worker in workers:
            worker.join(60)
    print(f"allowlist changes in force after {[f'{d:.2f}' for d in delays]} s "
          f"under {len(done)} password changes")  # fmt: skip
    assert max(delays) < PROMISE, delays
