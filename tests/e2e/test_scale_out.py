"""Two `printsrv serve` processes on two ports against one PostgreSQL behave as one server."""

from __future__ import annotations

import json
import os
import threading
import xmlrpc.client
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from support import (
    JSONRPC_KEY,
    ServeProcess,
    empty_postgresql,
    open_jsonrpc,
    set_config,
    wait_until,
)

from financial import checks
from printsrv.operations.installation import Installation
from printsrv.people import users

pytestmark = pytest.mark.skipif(
    not os.environ.get("PRINTSRV_TEST_DATABASE_URL"), reason="needs PostgreSQL"
)
ADMIN = ("admin", "admin-password")  # what open_jsonrpc sets
API_KEY = "lms-key-for-scale-out"


@pytest.fixture(params=["postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """PostgreSQL only: SQLite is one file on one machine."""
    url = request.getfixturevalue("postgresql_schema_url")
    empty_postgresql(url)
    return url


@pytest.fixture
def two_servers(installation: Installation, tmp_path: Path) -> Iterator[tuple[str, str]]:
    open_jsonrpc(installation, admin=True)
    set_config(installation, {"web-login.ttp.enable": "Y", "web-login.ttp.apikey": API_KEY})
    with installation.db.transaction() as session:
        for name in ("alice", "bob"):
            users.add_user(session, name, full_name=name.title())
    env = {
        "PRINTSRV_HOME": str(installation.env.home),
        "PRINTSRV_DATABASE_URL": installation.env.database_url,
        "PRINTSRV_SECRET_KEY": installation.env.secret_key or "",
    }
    first = ServeProcess(env, log=tmp_path / "a.log").start()
    second = ServeProcess(env, log=tmp_path / "b.log").start()
    try:
        yield f"http://127.0.0.1:{first.port}", f"http://127.0.0.1:{second.port}"
    finally:
        first.stop()
        second.stop()


def test_one_time_token_made_on_one_is_spent_everywhere(two_servers: tuple[str, str]) -> None:
    a, b = two_servers
    with xmlrpc.client.ServerProxy(f"{a}/xmlrpc/v1") as lms:
        token = getattr(lms, "onetime-auth").createToken(API_KEY, "alice")
    with httpx.Client() as browser:
        first = browser.post(
            f"{b}/user", data={"auth_user": "alice", "auth_token": token}, follow_redirects=False
        )
        assert first.status_code == 303, first.text
    with httpx.Client() as browser:
        again = browser.post(
            f"{a}/user", data={"auth_user": "alice", "auth_token": token}, follow_redirects=False
        )
        assert again.status_code != 303, "a spent token must be refused on every server"


def test_config_change_through_one_is_in_force_on_the_other_within_a_second(
    two_servers: tuple[str, str],
) -> None:
    a, b = two_servers

    def status(base: str) -> str:
        body = {"jsonrpc": "2.0", "id": 1, "method": "systemStatus"}
        answer = httpx.post(
            f"{base}/jsonrpc/v1", headers={"X-Auth-Key": JSONRPC_KEY}, content=json.dumps(body)
        ).json()
        return answer["result"]["data"]["value"]

    assert status(b) == "READY"
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "setConfigProperty",
        "params": {"name": "system.maintenance", "value": "Y"},
    }
    answer = httpx.post(
        f"{a}/jsonrpc/v1", headers={"X-Auth-Key": JSONRPC_KEY}, content=json.dumps(body)
    ).json()
    assert "error" not in answer, answer
    wait_until(lambda: status(b) == "MAINTENANCE", timeout=1.0, interval=0.05)


def test_concurrent_balance_changes_through_both_stay_exact(
    two_servers: tuple[str, str], installation: Installation
) -> None:
    bases = list(two_servers)
    results: list[int] = []

    def adjust(base: str, name: str, amount: str) -> None:
        with httpx.Client(auth=ADMIN) as client:
            for _ in range(25):
                response = client.post(
                    f"{base}/restful/v1/financial/account/balance",
                    params={
                        "type": "USER",
                        "name": name,
                        "amount": amount,
                        "adjust": "true",
                        "details": "scale-out",
                    },
                )
                results.append(response.status_code)

    threads = [
        threading.Thread(target=adjust, args=(bases[i % 2], name, amount))
        for i, (name, amount) in enumerate(
            [("alice", "1.10"), ("alice", "-0.30"), ("bob", "2.00"), ("bob", "0.05")] * 2
        )
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(200) == len(results) == 200
    with installation.db.read() as session:
        from financial import accounts

        alice = accounts.get_account(session, "USER", "alice").balance
        bob = accounts.get_account(session, "USER", "bob").balance
        assert checks.verify(session) == []
    assert alice == Decimal("1.10") * 50 + Decimal("-0.30") * 50
    assert bob == Decimal("2.00") * 50 + Decimal("0.05") * 50
