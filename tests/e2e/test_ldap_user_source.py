"""The LDAP user source against a real OpenLDAP slapd: authentication, groups, sync."""

from __future__ import annotations

from collections.abc import Iterator

import ldap3
import pytest
from click.testing import CliRunner
from slapd import ADMIN_DN, ADMIN_PASSWORD, BASE_DN, PrivateLdap
from support import (
    LiveServer,
    open_jsonrpc,
    require_programs,
    rpc,
    set_config,
    wait_until,
)

from printsrv.cli import main
from printsrv.operations.installation import Installation
from printsrv.people import users


@pytest.fixture(autouse=True)
def _slapd_installed() -> None:
    require_programs("slapd", "/usr/lib/ldap/back_mdb.so")


@pytest.fixture(scope="module")
def directory() -> Iterator[PrivateLdap]:
    ldap = PrivateLdap().start()
    yield ldap
    ldap.close()


@pytest.fixture
def server(installation: Installation, directory: PrivateLdap) -> Iterator[LiveServer]:
    open_jsonrpc(installation, admin=True)
    set_config(installation, directory.config())
    live = LiveServer(installation).start()
    yield live
    live.stop()


def value(answer: dict) -> object:
    assert "error" not in answer, answer
    return answer["result"]["data"].get("value", answer["result"]["data"].get("items"))


@pytest.mark.parametrize(
    ("username", "password", "expected"),
    [
        ("john", "AzFi7I", True),
        ("JOHN", "AzFi7I", True),
        ("john", "wrong", False),
        ("john", "", False),
        ("nobody", "AzFi7I", False),
        ("j*", "AzFi7I", False),
        ("john)(uid=*", "AzFi7I", False),
    ],
)
def test_auth_user_source_binds_as_the_user(
    server: LiveServer, username: str, password: str, expected: bool
) -> None:
    answer = rpc(server, "authUserSource", {"username": username, "password": password})
    assert value(answer) is expected


def test_printsrv_alias_maps_before_the_directory_is_asked(
    server: LiveServer, installation: Installation
) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "john")
        users.add_alias(session, "s1001", "john")
    assert value(rpc(server, "authUserSource", {"username": "S1001", "password": "AzFi7I"}))


def test_deleted_or_disabled_printsrv_user_stays_out(
    server: LiveServer, installation: Installation
) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "john")
        users.add_user(session, "janet")
        users.set_enabled(session, "john", False)
        users.delete_user(session, "janet")
    assert value(rpc(server, "authUserSource", {"username": "john", "password": "AzFi7I"})) is False
    assert (
        value(rpc(server, "authUserSource", {"username": "janet", "password": "s3cret"})) is False
    )


def test_unreachable_directory_gives_the_contracts_error(installation: Installation) -> None:
    gone = PrivateLdap().start()
    open_jsonrpc(installation, admin=True)
    set_config(installation, gone.config())
    gone.close()
    live = LiveServer(installation).start()
    try:
        answer = rpc(
            live, "authUserSource", {"username": "john", "password": "AzFi7I"}, id="reference"
        )
    finally:
        live.stop()
    address = f"127.0.0.1:{gone.port}"
    assert answer["id"] == "reference" and answer["result"] is False
    assert answer["error"]["code"] == -32603
    assert answer["error"]["message"].startswith(f"{address} [")
    assert answer["error"]["data"] == {"@type": "BASIC", "reason": address}


def test_wrong_bind_password_is_reported_not_mistaken_for_a_wrong_user_password(
    installation: Installation, directory: PrivateLdap
) -> None:
    open_jsonrpc(installation, admin=True)
    set_config(installation, {**directory.config(), "ldap.admin.password": "not-it"})
    live = LiveServer(installation).start()
    try:
        answer = rpc(live, "authUserSource", {"username": "john", "password": "AzFi7I"})
    finally:
        live.stop()
    assert answer["error"]["code"] == -32603
    assert "ldap.admin.dn" in answer["error"]["message"]
    assert "not-it" not in str(answer)


def test_source_groups_members_and_nesting(server: LiveServer) -> None:
    assert value(rpc(server, "listUserSourceGroups")) == ["everyone", "staff", "students"]
    assert value(rpc(server, "listUserSourceGroupMembers", {"groupName": "staff"})) == [
        "janet",
        "john",
    ]
    assert value(rpc(server, "listUserSourceGroupMembers", {"groupName": "everyone"})) == ["olga"]
    assert value(
        rpc(server, "listUserSourceGroupMembers", {"groupName": "Everyone", "nested": True})
    ) == ["janet", "john", "olga", "rijk"]
    assert value(rpc(server, "listUserSourceGroupNesting", {"uniqueName": "everyone"})) == [
        "everyone",
        "  staff",
        "  students",
    ]
    missing = rpc(server, "listUserSourceGroupMembers", {"groupName": "nope"})
    assert missing["error"]["code"] == -32001


def test_add_user_group_brings_its_members_from_the_directory(
    server: LiveServer, installation: Installation
) -> None:
    assert "error" not in rpc(server, "addUserGroup", {"uniqueName": "everyone"})
    with installation.db.read() as session:
        assert users.list_members(session, "everyone") == ["janet", "john", "olga", "rijk"]
        john = users.get_user(session, "john")
        assert (john.full_name, john.email, john.source) == ("John Doe", "john@example.edu", "ldap")


def test_full_sync_adds_updates_and_deletes_only_ldap_users(
    server: LiveServer, installation: Installation, directory: PrivateLdap
) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "local-only")  # made in printsrv: never touched by a sync
        users.add_group(session, "staff")
    assert "error" not in rpc(server, "syncUsersAndGroups", {"deleteUsers": False})

    def synced() -> bool:
        with installation.db.read() as session:
            return users.count_users(session) == 5 and not installation.monitor.running_job_kinds()

    wait_until(synced, timeout=10)
    with installation.db.read() as session:
        assert users.list_members(session, "staff") == ["janet", "john"]

    admin = ldap3.Connection(
        ldap3.Server("127.0.0.1", port=directory.port), ADMIN_DN, ADMIN_PASSWORD, auto_bind=True
    )
    assert admin.delete(f"uid=olga,ou=people,{BASE_DN}")
    try:
        result = CliRunner().invoke(
            main,
            ["user", "sync", "--delete-users"],
            env={
                "PRINTSRV_HOME": str(installation.env.home),
                "PRINTSRV_DATABASE_URL": installation.env.database_url,
                "PRINTSRV_SECRET_KEY": "test-installation-secret-0123456789abcdef",
            },
        )
        assert result.exit_code == 0, result.output
        assert "1 deleted" in result.output
    finally:
        admin.add(
            f"uid=olga,ou=people,{BASE_DN}",
            ["inetOrgPerson"],
            {
                "uid": "olga",
                "cn": "Olga Ivanova",
                "sn": "Ivanova",
                "mail": "olga@example.edu",
                "userPassword": "pw-olga",
            },
        )
        admin.unbind()
    with installation.db.read() as session:
        assert users.find_user(session, "olga") is None
        assert users.find_user(session, "local-only") is not None


def test_sync_needs_the_ldap_source(installation: Installation) -> None:
    open_jsonrpc(installation, admin=True)
    live = LiveServer(installation).start()
    try:
        answer = rpc(live, "syncUsersAndGroups", {"deleteUsers": False})
    finally:
        live.stop()
    assert answer["error"]["code"] == -32602 and answer["error"]["data"]["reason"] == "auth.method"
