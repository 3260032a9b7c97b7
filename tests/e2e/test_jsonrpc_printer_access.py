"""printerAccessControl against the real server: ADD, REMOVE, REMOVE_ALL, LIST and refusals."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from support import LiveServer, jsonrpc_call, open_jsonrpc, rpc, set_config, wait_until

from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.printing.models import Printer, PrinterGroupAccess

METHOD = "printerAccessControl"


@pytest.fixture
def server(installation: Installation) -> Iterator[LiveServer]:
    """Admin methods on; printers lab and hall (as `printer sync` would store them); groups
    staff and students."""
    open_jsonrpc(installation, admin=True)
    with installation.db.transaction() as session:
        session.add_all([Printer(name="lab"), Printer(name="hall")])
        users.add_group(session, "staff")
        users.add_group(session, "students")
    live = LiveServer(installation).start()
    yield live
    live.stop()


def call(server: LiveServer, **params: object) -> dict:
    return rpc(server, METHOD, params)


def ok(answer: dict) -> dict:
    assert "error" not in answer, answer
    return answer["result"]["data"]


def error_of(answer: dict) -> tuple[int, str, str]:
    assert answer["result"] is False, answer
    error = answer["error"]
    return error["code"], error["message"], error["data"]["reason"]


def listed(server: LiveServer, printer: str = "lab") -> list[dict]:
    data = ok(call(server, action="LIST", printerName=printer))
    assert data["@type"] == "USER_GROUP_ACCESS"
    return data["userGroupAccess"]


def entries(installation: Installation) -> int:
    with installation.db.read() as session:
        return session.scalar(select(func.count()).select_from(PrinterGroupAccess)) or 0


def test_add_list_move_remove_and_remove_all(server: LiveServer) -> None:
    assert listed(server) == []
    added = call(server, action="ADD", printerName="lab", groupName="Staff", scope="ALLOW")
    assert added == {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {
            "data": {
                "@type": "BASIC",
                "code": 0,
                "message": "group 'Staff' added to the ALLOW list",
            }
        },
    }
    ok(call(server, action="ADD", printerName="lab", groupName="students", scope="DENY"))
    assert listed(server) == [
        {"groupName": "staff", "scope": "ALLOW"},
        {"groupName": "students", "scope": "DENY"},
    ]
    moved = ok(call(server, action="ADD", printerName="lab", groupName="staff", scope="DENY"))
    assert moved["message"] == "group 'staff' moved from the ALLOW to the DENY list"
    assert listed(server) == [
        {"groupName": "staff", "scope": "DENY"},
        {"groupName": "students", "scope": "DENY"},
    ]
    narrowed = ok(call(server, action="LIST", printerName="lab", scope="ALLOW"))
    assert narrowed["userGroupAccess"] == []
    assert listed(server, "hall") == [], "the lists are per printer"

    assert ok(call(server, action="REMOVE", printerName="lab", groupName="staff"))["code"] == 0
    assert listed(server) == [{"groupName": "students", "scope": "DENY"}]
    ok(call(server, action="ADD", printerName="hall", groupName="staff", scope="ALLOW"))
    cleared = ok(call(server, action="REMOVE_ALL", printerName="lab"))
    assert cleared == {"@type": "BASIC", "code": 0, "message": "1 removed"}
    assert listed(server) == []
    assert listed(server, "hall") == [{"groupName": "staff", "scope": "ALLOW"}]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (
            {"action": "GRANT", "printerName": "lab", "groupName": "staff", "scope": "ALLOW"},
            "action",
        ),
        ({"action": None, "printerName": "lab"}, "action"),
        ({"action": "ADD", "printerName": "lab", "groupName": "staff", "scope": "MAYBE"}, "scope"),
        ({"action": "ADD", "printerName": "lab", "groupName": "staff"}, "scope"),
        ({"action": "ADD", "printerName": "lab", "scope": "ALLOW"}, "groupName"),
        ({"action": "REMOVE", "printerName": "lab"}, "groupName"),
        ({"action": "ADD", "printerName": "lab", "groupName": "", "scope": "DENY"}, "groupName"),
        ({"action": "LIST", "printerName": 7}, "printerName"),
        ({"action": "LIST", "printerName": "lab", "groupName": "staff"}, "groupName"),
        ({"action": "REMOVE_ALL", "printerName": "lab", "scope": "allow"}, "scope"),
    ],
)
def test_bad_params_are_refused_naming_the_parameter(
    server: LiveServer, installation: Installation, params: dict, reason: str
) -> None:
    code, message, got = error_of(rpc(server, METHOD, params))
    assert (code, got) == (-32602, reason), message
    assert f"'{reason}'" in message
    assert entries(installation) == 0


def test_missing_required_params_are_refused(server: LiveServer) -> None:
    code, _, _ = error_of(rpc(server, METHOD, {"action": "LIST"}))
    assert code == -32602


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"action": "ADD", "printerName": "nope", "groupName": "staff", "scope": "ALLOW"}, "nope"),
        ({"action": "ADD", "printerName": "lab", "groupName": "ghosts", "scope": "DENY"}, "ghosts"),
        ({"action": "LIST", "printerName": "nope"}, "nope"),
        ({"action": "REMOVE_ALL", "printerName": "nope"}, "nope"),
        ({"action": "REMOVE", "printerName": "lab", "groupName": "staff"}, "staff"),
        ({"action": "REMOVE", "printerName": "lab", "groupName": "ghosts"}, "ghosts"),
    ],
)
def test_unknown_printer_group_or_entry_is_not_found_by_name(
    server: LiveServer, installation: Installation, params: dict, named: str
) -> None:
    code, message, _ = error_of(rpc(server, METHOD, params))
    assert code == -32001
    assert f"'{named}'" in message
    assert entries(installation) == 0


def test_a_deleted_group_disappears_from_the_lists(
    server: LiveServer, installation: Installation
) -> None:
    ok(call(server, action="ADD", printerName="lab", groupName="staff", scope="ALLOW"))
    ok(rpc(server, "deleteUserGroup", {"uniqueName": "staff"}))
    assert listed(server) == []
    assert entries(installation) == 0


def test_it_is_a_provisioning_method(server: LiveServer, installation: Installation) -> None:
    set_config(installation, {"api.jsonrpc.admin.enable": "N"})
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": METHOD,
        "params": {"action": "LIST", "printerName": "lab"},
    }

    def refusal() -> dict | None:
        error = jsonrpc_call(server, body).json().get("error")
        return error if error and error["code"] == -32600 else None

    error = wait_until(refusal, timeout=5)
    assert "api.jsonrpc.admin.enable" in error["data"]["reason"]


def test_identical_adds_at_once_answer_added_once_and_already_listed_otherwise(
    server: LiveServer, installation: Installation
) -> None:
    # Issue 21: two identical ADDs racing each other used to collide on the entry's primary
    # key and one got a generic -32603. Several rounds, each a burst of identical ADDs.
    callers = 6
    with installation.db.transaction() as session:
        for n in range(5):
            users.add_group(session, f"round-{n}")
    for n in range(5):
        group = f"round-{n}"
        start = threading.Barrier(callers)

        def add(_: int, group: str = group, start: threading.Barrier = start) -> dict:
            start.wait()
            return call(server, action="ADD", printerName="lab", groupName=group, scope="DENY")

        with ThreadPoolExecutor(callers) as pool:
            answers = list(pool.map(add, range(callers)))
        messages = sorted(ok(answer)["message"] for answer in answers)
        assert messages == [f"group '{group}' added to the DENY list"] + [
            f"group '{group}' is already on the DENY list"
        ] * (callers - 1), answers
    assert entries(installation) == 5
