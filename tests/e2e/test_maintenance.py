"""Maintenance (`system.maintenance`) keeps users out of every user-facing API and changes
nothing, while the admin services, JSON-RPC and /metrics keep answering; a switch made
anywhere holds on every server sharing the database within a second.

Over a real socket, on both back-ends.
"""

from __future__ import annotations

import json
import re
import time
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from printing_support import (
    PrintSetup,
    pdf_bytes,
    print_cups,  # noqa: F401 - a fixture
    printing_setup,  # noqa: F401 - a fixture
    stored_files,
    upload,
)
from sqlalchemy import func, select
from support import JSONRPC_KEY, LiveServer, ServeProcess, open_jsonrpc, rpc, set_config, wait_until
from web_support import API_KEY, PASSWORD, add_person, create_token, enable_ttp, give_credit

from financial import AccountTrx
from printsrv.accounts import service as accounting
from printsrv.accounts.models import IdempotencyKey
from printsrv.documents.models import Document
from printsrv.errors import UnderMaintenance
from printsrv.operations.installation import Installation
from printsrv.operations.status import MAINTENANCE_MESSAGE
from printsrv.people import users
from printsrv.people.models import LoginThrottle, SpentLoginToken, WebSession
from printsrv.printing.models import PrintJob

ADMIN = ("admin", "admin-password")  # what open_jsonrpc sets
RETRY_AFTER = str(UnderMaintenance.retry_after)
COUNTED = (
    AccountTrx,
    IdempotencyKey,
    WebSession,
    LoginThrottle,
    SpentLoginToken,
    Document,
    PrintJob,
)


def rows(installation: Installation) -> dict[str, int]:
    """How many rows each table a user operation could write holds."""
    with installation.db.read() as session:
        return {
            table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
            for table in COUNTED
        }


def maintenance(installation: Installation, on: bool) -> None:
    """Switch maintenance as `printsrv system maintenance on|off` does (a third process)."""
    set_config(installation, {"system.maintenance": "Y" if on else "N"})


@dataclass
class World:
    installation: Installation
    server: LiveServer
    uuid: str

    @property
    def rest(self) -> str:
        return f"{self.server.url}/restful/v1"

    def balance(self, uuid: str | None = None) -> httpx.Response:
        return httpx.get(f"{self.rest}/financial/balance", auth=("janet", uuid or self.uuid))

    def transfer(self, **headers: str) -> httpx.Response:
        return httpx.post(
            f"{self.rest}/financial/transfer?name=rijk&amount=1.50",
            auth=("janet", self.uuid),
            headers=headers,
        )


@pytest.fixture
def world(installation: Installation) -> Iterator[World]:
    """janet (password, UUID, 12.50) and rijk; admin credentials, JSON-RPC, token logins."""
    open_jsonrpc(installation, admin=True)
    enable_ttp(installation)
    add_person(installation, "janet")
    add_person(installation, "rijk", full_name="Rijk")
    give_credit(installation, "janet", "12.50", "Semester credit")
    with installation.db.transaction() as session:
        uuid = users.issue_uuid(session, "janet", hasher=installation.hasher)
    server = LiveServer(installation).start()
    try:
        yield World(installation, server, uuid)
    finally:
        server.stop()


def assert_under_maintenance(response: httpx.Response) -> None:
    """503, Retry-After and the REST envelope saying why."""
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == RETRY_AFTER
    assert response.json() == {"succes": False, "error": MAINTENANCE_MESSAGE}


def janet_balance(installation: Installation) -> Decimal:
    with installation.db.read() as session:
        return accounting.user_balance(session, "janet")


# --- REST ----------------------------------------------------------------------------------------


def test_rest_user_services_answer_503_and_change_nothing(world: World) -> None:
    installation = world.installation
    assert world.transfer().status_code == 200  # open before
    maintenance(installation, True)
    # Polled with a read: a transfer let through while the flag travels would change money.
    wait_until(lambda: world.balance().status_code == 503, timeout=1.0)
    before = rows(installation)
    assert_under_maintenance(world.balance())
    assert_under_maintenance(world.transfer())
    assert_under_maintenance(world.transfer(**{"Idempotency-Key": "retry-7"}))
    # Refused before the credentials are read: a wrong UUID learns nothing more.
    assert_under_maintenance(world.balance("not-the-uuid"))
    assert rows(installation) == before, "a refused request changes nothing"
    assert janet_balance(installation) == Decimal("11.000000")

    # The admin works on: REST admin services, JSON-RPC provisioning and status, /metrics.
    admin_balance = httpx.get(
        f"{world.rest}/financial/account/balance?type=USER&name=janet", auth=ADMIN
    )
    assert admin_balance.json() == {"succes": True, "result": "11.000000"}
    top_up = httpx.post(
        f"{world.rest}/financial/account/balance?type=USER&name=janet&amount=1&adjust=true",
        auth=ADMIN,
    )
    assert top_up.json() == {"succes": True, "result": "12.000000"}
    status = rpc(world.server, "systemStatus")
    assert status["result"]["data"]["value"] == "MAINTENANCE"
    listed = rpc(world.server, "listUsers", {"startIndex": 0, "itemsPerPage": 10})
    assert "error" not in listed, listed
    assert httpx.get(f"{world.server.url}/metrics", auth=ADMIN).status_code == 200
    assert httpx.get(f"{world.rest}/system/version").status_code == 200

    maintenance(installation, False)
    wait_until(lambda: world.balance().status_code == 200, timeout=1.0)
    assert world.transfer(**{"Idempotency-Key": "retry-7"}).status_code == 200
    assert janet_balance(installation) == Decimal("10.500000")


@pytest.fixture
def print_server(printing_setup: PrintSetup) -> Iterator[LiveServer]:  # noqa: F811
    server = LiveServer(printing_setup.installation).start()
    yield server
    server.stop()


def test_uploads_and_releases_answer_503_and_print_nothing(
    printing_setup: PrintSetup,  # noqa: F811
    print_server: LiveServer,
) -> None:
    setup = printing_setup
    installation = setup.installation
    setup.set_cost("capture", "0.10")
    held = upload(print_server.url, setup.auth, "held.pdf", pdf_bytes(2))
    assert held.status_code == 200 and held.json()["status"] == "held", held.text
    release_url = f"{print_server.url}/restful/v1/documents/{held.json()['id']}/print"

    maintenance(installation, True)
    balance_url = f"{print_server.url}/restful/v1/financial/balance"
    wait_until(lambda: httpx.get(balance_url, auth=setup.auth).status_code == 503, timeout=1.0)
    before, files = rows(installation), stored_files(installation)
    assert_under_maintenance(upload(print_server.url, setup.auth, "new.pdf", pdf_bytes(1)))
    assert_under_maintenance(httpx.post(release_url, auth=setup.auth, data={"printer": "capture"}))
    assert rows(installation) == before
    assert stored_files(installation) == files
    assert setup.jobs() == [] and setup.balance() == Decimal("10.00")

    maintenance(installation, False)
    wait_until(lambda: httpx.get(balance_url, auth=setup.auth).status_code == 200, timeout=1.0)
    released = httpx.post(release_url, auth=setup.auth, data={"printer": "capture"})
    assert released.status_code == 200 and released.json()["status"] == "printing", released.text


# --- XML-RPC -------------------------------------------------------------------------------------


def create_token_call(server: LiveServer, user: str = "janet") -> httpx.Response:
    body = xmlrpc.client.dumps((API_KEY, user), "onetime-auth.createToken")
    return httpx.post(f"{server.url}/xmlrpc/v1", content=body, headers={"Content-Type": "text/xml"})


def test_create_token_is_a_maintenance_fault(world: World) -> None:
    maintenance(world.installation, True)
    wait_until(lambda: "faultCode" in create_token_call(world.server).text, timeout=1.0)
    response = create_token_call(world.server)
    # XML-RPC answers faults with HTTP 200 (clients drop the body of any other status);
    # Retry-After rides along.
    assert response.status_code == 200
    assert response.headers["retry-after"] == RETRY_AFTER
    with pytest.raises(xmlrpc.client.Fault) as fault:
        xmlrpc.client.loads(response.content)
    assert fault.value.faultCode == 13
    assert fault.value.faultString == MAINTENANCE_MESSAGE
    # Introspection carries no log-in: it answers.
    with xmlrpc.client.ServerProxy(f"{world.server.url}/xmlrpc/v1") as client:
        assert "onetime-auth.createToken" in client.system.listMethods()
    maintenance(world.installation, False)
    wait_until(lambda: "faultCode" not in create_token_call(world.server).text, timeout=1.0)


# --- the web app ---------------------------------------------------------------------------------


def csrf_in(page: httpx.Response, form: str | None = None) -> str:
    pattern = r'name="csrf_token" value="([^"]+)"'
    if form:
        pattern = rf'action="{form}".*?' + pattern
    found = re.search(pattern, page.text, re.S)
    assert found, page.text
    return found[1]


def assert_maintenance_page(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == RETRY_AFTER
    assert response.headers["content-type"].startswith("text/html")
    assert "Under maintenance" in response.text
    assert "under maintenance" in response.text
    assert 'name="password"' not in response.text


def test_web_app_shows_a_maintenance_page_and_changes_nothing(world: World) -> None:
    installation, url = world.installation, world.server.url
    token = create_token(world.server, "janet")  # an LMS handed it out just before
    janet = httpx.Client()
    visitor = httpx.Client()
    try:
        login_csrf = csrf_in(janet.get(f"{url}/user"))
        logged_in = janet.post(
            f"{url}/user/login",
            data={"username": "janet", "password": PASSWORD, "csrf_token": login_csrf},
            follow_redirects=True,
        )
        transfer_csrf = csrf_in(logged_in, "/user/transfer")
        visitor_csrf = csrf_in(visitor.get(f"{url}/user"))

        maintenance(installation, True)
        wait_until(lambda: janet.get(f"{url}/user").status_code == 503, timeout=1.0)
        before = rows(installation)
        assert_maintenance_page(visitor.get(f"{url}/user"))
        assert_maintenance_page(janet.get(f"{url}/user"))
        assert_maintenance_page(
            janet.post(
                f"{url}/user/transfer",
                data={"csrf_token": transfer_csrf, "recipient": "rijk", "amount": "1.00"},
            )
        )
        assert_maintenance_page(
            visitor.post(
                f"{url}/user/login",
                data={"username": "rijk", "password": PASSWORD, "csrf_token": visitor_csrf},
            )
        )
        assert_maintenance_page(
            visitor.post(f"{url}/user", data={"auth_user": "janet", "auth_token": token})
        )
        assert rows(installation) == before, "no session, no throttle row, no token spent"
        assert janet_balance(installation) == Decimal("12.500000")

        # Logging out only ends a session: allowed, so a shared computer can be left safely.
        out = janet.post(
            f"{url}/user/logout", data={"csrf_token": transfer_csrf}, follow_redirects=False
        )
        assert out.status_code == 303
        assert rows(installation)["web_session"] == before["web_session"] - 1

        maintenance(installation, False)
        wait_until(lambda: visitor.get(f"{url}/user").status_code == 200, timeout=1.0)
        # The token was not spent while it was refused: it still logs janet in.
        back = visitor.post(
            f"{url}/user", data={"auth_user": "janet", "auth_token": token}, follow_redirects=False
        )
        assert back.status_code == 303, back.text
    finally:
        janet.close()
        visitor.close()


# --- two servers, one database -----------------------------------------------------------------


def test_maintenance_switched_on_one_server_holds_on_another_within_a_second(
    installation: Installation, tmp_path: Path
) -> None:
    """Two `printsrv serve` processes share the database: the switch is made through one
    (JSON-RPC setConfigProperty), and the other keeps users out within a second."""
    open_jsonrpc(installation, admin=True)
    add_person(installation, "janet")
    with installation.db.transaction() as session:
        uuid = users.issue_uuid(session, "janet", hasher=installation.hasher)
    env = {
        "PRINTSRV_HOME": str(installation.env.home),
        "PRINTSRV_DATABASE_URL": installation.env.database_url,
        "PRINTSRV_SECRET_KEY": installation.env.secret_key or "",
    }
    first = ServeProcess(env, log=tmp_path / "a.log").start()
    second = ServeProcess(env, log=tmp_path / "b.log").start()
    a, b = f"http://127.0.0.1:{first.port}", f"http://127.0.0.1:{second.port}"
    try:

        def switch(value: str) -> float:
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "setConfigProperty",
                "params": {"name": "system.maintenance", "value": value},
            }
            answer = httpx.post(
                f"{a}/jsonrpc/v1", headers={"X-Auth-Key": JSONRPC_KEY}, content=json.dumps(body)
            ).json()
            assert "error" not in answer, answer
            return time.monotonic()

        def balance_status() -> int:
            return httpx.get(f"{b}/restful/v1/financial/balance", auth=("janet", uuid)).status_code

        assert balance_status() == 200
        switched = switch("Y")
        wait_until(lambda: balance_status() == 503, timeout=1.0, interval=0.02)
        assert time.monotonic() - switched < 1.0
        assert httpx.get(f"{b}/user").status_code == 503
        switched = switch("N")
        wait_until(lambda: balance_status() == 200, timeout=1.0, interval=0.02)
        assert time.monotonic() - switched < 1.0
    finally:
        first.stop()
        second.stop()
