"""The JSON-RPC methods against the real server: systemStatus, authUserSource, provisioning."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import LiveServer, jsonrpc_call, open_jsonrpc, rpc, set_config, wait_until

from printsrv.operations.installation import Installation
from printsrv.operations.status import batch_job
from printsrv.people import users
from printsrv.platform import properties as config


@pytest.fixture
def server(installation: Installation) -> Iterator[LiveServer]:
    open_jsonrpc(installation, admin=True)
    # SavaPage's reference example logs john in with "AzFi7I", shorter than the default
    # user.password.min-length (8); an installation may lower the minimum.
    set_config(installation, {"user.password.min-length": "6"})
    with installation.db.transaction() as session:
        users.add_user(
            session, "john", password="AzFi7I", full_name="John Doe", email="john@example.edu"
        )
        users.add_alias(session, "s1001", "john")
    live = LiveServer(installation).start()
    yield live
    live.stop()


def status(server: LiveServer) -> str:
    return rpc(server, "systemStatus")["result"]["data"]["value"]


def error_of(answer: dict) -> tuple[int, str]:
    assert answer["result"] is False, answer
    return answer["error"]["code"], answer["error"]["data"]["reason"]


def ok(answer: dict) -> dict:
    assert "error" not in answer, answer
    return answer["result"]["data"]


# -- systemStatus ---------------------------------------------------------------------------------


def test_status_is_ready_on_a_set_up_system(server: LiveServer) -> None:
    assert status(server) == "READY"


def test_status_follows_maintenance_and_batch_jobs_with_precedence(
    server: LiveServer, installation: Installation
) -> None:
    set_config(installation, {"system.maintenance": "Y"})
    wait_until(lambda: status(server) == "MAINTENANCE", timeout=2)
    with batch_job(installation.db, "user-sync"):
        wait_until(lambda: installation.monitor.running_job_kinds() == ["user-sync"], timeout=2)
        assert status(server) == "MAINTENANCE", "MAINTENANCE outranks UNAVAILABLE"
        set_config(installation, {"system.maintenance": "N"})
        wait_until(lambda: status(server) == "UNAVAILABLE", timeout=2)
        with installation.db.transaction() as session:
            config.unset_property(session, "api.restful.auth.password")
        wait_until(lambda: status(server) == "SETUP", timeout=2)
        set_config(installation, {"api.restful.auth.password": "again-0123456"})
        wait_until(lambda: status(server) == "UNAVAILABLE", timeout=2)
    wait_until(lambda: status(server) == "READY", timeout=2)


def test_a_polled_status_is_answered_current_and_still_checks_the_caller(
    server: LiveServer, installation: Installation
) -> None:
    # A monitoring system sends the same bytes every time; the adapter keeps the encoded
    # answer per body, which must neither go stale nor skip the access check.
    body = b'{"jsonrpc":"2.0","id":"poll-7","method":"systemStatus"}'
    for _ in range(3):
        answer = jsonrpc_call(server, body)
        assert answer.json() == {
            "jsonrpc": "2.0",
            "id": "poll-7",
            "result": {"data": {"@type": "enum", "value": "READY"}},
        }
    set_config(installation, {"system.maintenance": "Y"})
    wait_until(
        lambda: jsonrpc_call(server, body).json()["result"]["data"]["value"] == "MAINTENANCE",
        timeout=2,
    )
    refused = jsonrpc_call(server, body, key="wrong").json()
    assert refused["error"]["message"] == "Access denied." and refused["id"] == "poll-7"
    other_id = jsonrpc_call(server, body.replace(b"poll-7", b"poll-8")).json()
    assert other_id["id"] == "poll-8" and other_id["result"]["data"]["value"] == "MAINTENANCE"


def test_status_of_a_job_that_died_without_cleaning_up_expires(
    server: LiveServer, installation: Installation
) -> None:
    from datetime import timedelta

    from printsrv.operations.models import BatchJob
    from printsrv.platform.models import utcnow

    with installation.db.transaction() as session:
        session.add(BatchJob(kind="backup", heartbeat_at=utcnow() - timedelta(minutes=5)))
    installation.monitor.refresh()
    assert status(server) == "READY"


# -- authUserSource -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password", "expected"),
    [
        ("john", "AzFi7I", True),
        ("JOHN", "AzFi7I", True),
        ("s1001", "AzFi7I", True),
        ("john", "azfi7i", False),
        ("john", "", False),
        ("nobody", "AzFi7I", False),
    ],
)
def test_auth_user_source(server: LiveServer, username: str, password: str, expected: bool) -> None:
    answer = rpc(
        server, "authUserSource", {"username": username, "password": password}, id="reference"
    )
    assert answer == {
        "jsonrpc": "2.0",
        "id": "reference",
        "result": {"data": {"@type": "boolean", "value": expected}},
    }


def test_auth_user_source_refuses_a_disabled_user(
    server: LiveServer, installation: Installation
) -> None:
    with installation.db.transaction() as session:
        users.set_enabled(session, "john", False)
    assert (
        ok(rpc(server, "authUserSource", {"username": "john", "password": "AzFi7I"}))["value"]
        is False
    )


@pytest.mark.parametrize(
    "params",
    [
        {"username": "john"},
        {"username": 5, "password": "x"},
        {"username": "", "password": "x"},
        ["john"],
    ],
)
def test_auth_user_source_bad_params(server: LiveServer, params: object) -> None:
    code, reason = error_of(rpc(server, "authUserSource", params))
    assert code == -32602 and reason != "unknown"


# -- users --


def test_add_internal_user_creates_then_updates(
    server: LiveServer, installation: Installation
) -> None:
    user = {
        "userName": "Janet",
        "password": "pw-12345",
        "fullName": "Janet J",
        "email": "janet@example.edu",
        "emailOther": ["j@home.example"],
        "card": "0xA1B2",
        "id": "1001",
        "pin": "1234",
        "uuid": "97008e2c-d8b2-11e9-aa13-406186940c49",
        "disabled": False,
    }
    assert ok(rpc(server, "addInternalUser", {"user": user})) == {
        "@type": "BASIC",
        "code": 0,
        "message": "user created",
    }
    assert (
        ok(
            rpc(
                server,
                "addInternalUser",
                {"user": {"userName": "janet", "fullName": "Janet Jones"}},
            )
        )["message"]
        == "user updated"
    )
    with installation.db.read() as session:
        janet = users.get_user(session, "janet")
        assert janet.full_name == "Janet Jones" and janet.card_number == "0xA1B2"
        assert janet.email_other == "j@home.example"
        users.authenticate_uuid(
            session, "janet", "97008e2c-d8b2-11e9-aa13-406186940c49", hasher=installation.hasher
        )
    assert ok(rpc(server, "authUserSource", {"username": "janet", "password": "pw-12345"}))["value"]


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        ({"fullName": "x"}, "user.userName"),
        ({"userName": "a b"}, "unknown"),
        ({"userName": "x", "bogus": 1}, "user.bogus"),
        ({"userName": "x", "pin": "12"}, "unknown"),
        ({"userName": "x", "uuid": "not-a-uuid"}, "user.uuid"),
        ({"userName": "x", "disabled": "no"}, "user.disabled"),
        ({"userName": "x", "emailOther": "a@b"}, "user.emailOther"),
        ({"userName": "x", "accounting": {"balance": "1e3"}}, "user.accounting.balance"),
        ({"userName": "x", "accounting": {"creditLimit": "SOME"}}, "user.accounting.creditLimit"),
        (
            {"userName": "x", "accounting": {"creditLimit": "INDIVIDUAL"}},
            "user.accounting.creditLimitAmount",
        ),
        ({"userName": "x", "accounting": {"bogus": 1}}, "user.accounting.bogus"),
    ],
)
def test_add_internal_user_validates_every_field(
    server: LiveServer, installation: Installation, user: dict, reason: str
) -> None:
    code, got = error_of(rpc(server, "addInternalUser", {"user": user}))
    assert code == -32602
    if reason != "unknown":
        assert got == reason
    with installation.db.read() as session:
        assert [u.user_name for u in users.list_users(session)] == ["john"], "nothing changed"


def test_card_number_of_another_user_is_a_conflict(server: LiveServer) -> None:
    rpc(server, "addInternalUser", {"user": {"userName": "a", "card": "C1"}})
    code, _ = error_of(rpc(server, "addInternalUser", {"user": {"userName": "b", "card": "C1"}}))
    assert code == -32002


def test_set_user_properties_updates_and_removes(
    server: LiveServer, installation: Installation
) -> None:
    ok(
        rpc(
            server,
            "setUserProperties",
            {"user": {"userName": "s1001", "email": "new@x.edu", "removePassword": True}},
        )
    )
    with installation.db.read() as session:
        john = users.get_user(session, "john")
        assert john.email == "new@x.edu" and john.password_hash is None
    code, _ = error_of(rpc(server, "setUserProperties", {"user": {"userName": "ghost"}}))
    assert code == -32001


def test_delete_user_is_logical(server: LiveServer, installation: Installation) -> None:
    ok(rpc(server, "deleteUser", {"uniqueName": "john"}))
    assert (
        ok(rpc(server, "authUserSource", {"username": "john", "password": "AzFi7I"}))["value"]
        is False
    )
    assert ok(rpc(server, "listUsers"))["items"] == []
    with installation.db.read() as session:
        assert users.find_user(session, "john", include_deleted=True) is not None
    code, _ = error_of(rpc(server, "deleteUser", {"uniqueName": "john"}))
    assert code == -32001


def test_erase_user_removes_personal_data(server: LiveServer, installation: Installation) -> None:
    ok(rpc(server, "eraseUser", {"uniqueName": "s1001"}))
    with installation.db.read() as session:
        assert users.find_user(session, "john", include_deleted=True) is None
        assert users.find_user(session, "s1001", include_deleted=True) is None
        [erased] = [u for u in session.scalars(__import__("sqlalchemy").select(users.User))]
        assert erased.user_name.startswith("erased-")
        assert (erased.full_name, erased.email, erased.password_hash) == ("", "", None)


def test_list_users_pages(server: LiveServer) -> None:
    for name in ("anna", "bert", "carl", "dora"):
        rpc(server, "addInternalUser", {"user": {"userName": name}})
    data = ok(rpc(server, "listUsers", {"startIndex": 3, "itemsPerPage": 2}))
    assert data["@type"] == "USER_LIST"
    assert [i["userName"] for i in data["items"]] == ["dora", "john"]
    assert data["items"][1] == {
        "userName": "john",
        "fullName": "John Doe",
        "email": "john@example.edu",
        "admin": False,
        "person": True,
        "disabled": False,
        "id": "",
    }
    assert {
        k: data[k]
        for k in (
            "currentItemCount",
            "itemsPerPage",
            "startIndex",
            "totalItems",
            "pageIndex",
            "totalPages",
        )
    } == {
        "currentItemCount": 2,
        "itemsPerPage": 2,
        "startIndex": 3,
        "totalItems": 5,
        "pageIndex": 1,
        "totalPages": 3,
    }


@pytest.mark.parametrize(
    "params",
    [
        {"startIndex": -1},
        {"itemsPerPage": 0},
        {"itemsPerPage": 10_000},
        {"startIndex": "0"},
        {"startIndex": True},
    ],
)
def test_paging_params_are_validated(server: LiveServer, params: dict) -> None:
    code, reason = error_of(rpc(server, "listUsers", params))
    assert code == -32602 and reason in ("startIndex", "itemsPerPage")


# -- groups --


def test_groups_members_and_memberships(server: LiveServer, installation: Installation) -> None:
    ok(rpc(server, "addUserGroup", {"uniqueName": "Staff"}))
    ok(rpc(server, "addUserGroup", {"uniqueName": "alumni"}))
    with installation.db.transaction() as session:
        users.add_member(session, "staff", "john")
    groups = ok(rpc(server, "listUserGroups"))
    assert groups["@type"] == "USER_GROUP_LIST" and groups["items"] == ["alumni", "staff"]
    assert ok(rpc(server, "listUserGroupMembers", {"filter": "staff"}))["items"] == ["john"]
    assert ok(rpc(server, "listUserGroupMemberships", {"filter": "s1001"}))["items"] == ["staff"]
    code, _ = error_of(rpc(server, "addUserGroup", {"uniqueName": "staff"}))
    assert code == -32002
    ok(rpc(server, "deleteUserGroup", {"uniqueName": "staff"}))
    assert ok(rpc(server, "listUserGroups"))["items"] == ["alumni"]
    code, _ = error_of(rpc(server, "listUserGroupMembers", {"filter": "staff"}))
    assert code == -32001


# -- config --


def test_get_and_set_config_property(server: LiveServer, installation: Installation) -> None:
    ok(
        rpc(
            server,
            "setConfigProperty",
            {"name": "web-login.ttp.token.expiry-msecs", "value": "20000"},
        )
    )
    assert (
        ok(rpc(server, "getConfigProperty", {"uniqueName": "web-login.ttp.token.expiry-msecs"}))[
            "value"
        ]
        == "20000"
    )
    code, _reason = error_of(
        rpc(
            server,
            "setConfigProperty",
            {"name": "web-login.ttp.token.expiry-msecs", "value": "soon"},
        )
    )
    assert code == -32602
    code, _ = error_of(rpc(server, "getConfigProperty", {"uniqueName": "no.such"}))
    assert code == -32602


@pytest.mark.parametrize(
    "name",
    [
        "api.jsonrpc.secret-key",
        "api.jsonrpc.ext.ip-addresses-allowed",
        "api.restful.ip-addresses-allowed",
        "web-login.ttp.apikey",
        "server.trusted-proxies",
        "api.restful.auth.password",
    ],
)
def test_guarded_properties_cannot_be_set_remotely(server: LiveServer, name: str) -> None:
    code, reason = error_of(rpc(server, "setConfigProperty", {"name": name, "value": ""}))
    assert code == -32003 and reason == name


def test_secret_property_is_never_returned(server: LiveServer) -> None:
    code, _reason = error_of(
        rpc(server, "getConfigProperty", {"uniqueName": "api.jsonrpc.secret-key"})
    )
    assert code == -32003


def test_accounting_sets_the_balance_through_the_ledger_and_the_credit_limit(
    server: LiveServer, installation: Installation
) -> None:
    from decimal import Decimal

    from financial import accounts, checks

    ok(
        rpc(
            server,
            "addInternalUser",
            {
                "user": {
                    "userName": "kim",
                    "accounting": {
                        "balance": "12.50",
                        "creditLimit": "INDIVIDUAL",
                        "creditLimitAmount": "5.00",
                        "comment": "opening balance",
                    },
                }
            },
        )
    )
    ok(
        rpc(
            server,
            "setUserProperties",
            {"user": {"userName": "kim", "accounting": {"balance": "10.00", "keepBalance": False}}},
        )
    )
    ok(
        rpc(
            server,
            "setUserProperties",
            {"user": {"userName": "kim", "accounting": {"balance": "99.00", "keepBalance": True}}},
        )
    )
    with installation.db.read() as session:
        account = accounts.get_account(session, "USER", "kim")
        assert account.balance == Decimal("10.00")
        assert account.credit_limit == Decimal("5.00")
        rows = accounts.latest_transactions(session, account, 10)
        assert sorted(r.amount for r in rows) == [Decimal("-2.50"), Decimal("12.50")]
        assert {r.trx_type for r in rows} == {"ADJUST"}
        assert checks.verify(session) == []
