"""Scheduled quotas through the real server: setUserGroupQuota / getUserGroupQuota over a
socket, and the lifespan's allocator crediting a period boundary by itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from support import LiveServer, open_jsonrpc, rpc, set_config, wait_until

from financial import AccountTrx
from printsrv.accounts import quotas
from printsrv.accounts import service as accounting
from printsrv.accounts.models import GroupQuota
from printsrv.operations.installation import Installation
from printsrv.people import users


@pytest.fixture(autouse=True)
def _system_clock_afterwards() -> Iterator[None]:
    yield
    quotas.set_clock(None)


@pytest.fixture
def staff(installation: Installation) -> Installation:
    open_jsonrpc(installation, admin=True)
    with installation.db.transaction() as session:
        users.add_group(session, "staff")
        for name in ("ann", "bob"):
            users.add_user(session, name)
            users.add_member(session, "staff", name)
    return installation


@pytest.fixture
def server(staff: Installation) -> Iterator[LiveServer]:
    live = LiveServer(staff).start()
    yield live
    live.stop()


def ok(answer: dict) -> dict:
    assert "error" not in answer, answer
    return answer["result"]["data"]


def refused(answer: dict) -> tuple[int, str, str]:
    error = answer["error"]
    return error["code"], error["data"]["reason"], error["message"]


def quota_rows(installation: Installation) -> int:
    with installation.db.read() as session:
        query = select(func.count()).select_from(AccountTrx).where(AccountTrx.trx_type == "QUOTA")
        return int(session.scalar(query) or 0)


def test_set_get_and_stop_a_quota(server: LiveServer) -> None:
    quotas.set_clock(lambda: datetime(2025, 3, 5, 10, tzinfo=UTC))
    params = {"groupName": "Staff", "amount": "5.00", "period": "weekly", "maxAccumulation": "20"}
    done = ok(rpc(server, "setUserGroupQuota", params))
    assert done == {
        "@type": "BASIC",
        "code": 0,
        "message": "quota set; the first credit is for the period from 2025-03-10T00:00:00+00:00",
    }
    assert ok(rpc(server, "getUserGroupQuota", {"groupName": "staff"})) == {
        "@type": "QUOTA",
        "groupName": "staff",
        "enabled": True,
        "amount": "5.000000",
        "period": "weekly",
        "maxAccumulation": "20.000000",
        "timeZone": "UTC",
        "setAt": "2025-03-05T10:00:00+00:00",
        "setBy": "jsonrpc 127.0.0.1",
        "creditedThrough": None,
        "nextPeriod": "2025-03-10T00:00:00+00:00",
    }
    stopped = ok(rpc(server, "setUserGroupQuota", {"groupName": "staff", "off": True}))
    assert stopped["message"] == "quota stopped"
    answer = ok(rpc(server, "getUserGroupQuota", {"groupName": "staff"}))
    assert answer == {"@type": "QUOTA", "groupName": "staff", "enabled": False}


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"groupName": "staff", "amount": "-5.00", "period": "daily"}, "amount"),
        ({"groupName": "staff", "amount": 5, "period": "daily"}, "amount"),
        ({"groupName": "staff", "amount": "5x", "period": "daily"}, "amount"),
        ({"groupName": "staff", "amount": "5", "period": "hourly"}, "period"),
        ({"groupName": "staff", "amount": "5"}, "period"),
        (
            {"groupName": "staff", "amount": "5", "period": "daily", "maxAccumulation": "1"},
            "maxAccumulation",
        ),
        ({"groupName": "staff", "off": True, "amount": "5"}, "amount"),
        ({"groupName": "staff", "off": "yes"}, "off"),
        ({"groupName": "", "amount": "5", "period": "daily"}, "groupName"),
    ],
)
def test_bad_input_is_an_error_naming_the_parameter_and_nothing_is_written(
    server: LiveServer, staff: Installation, params: dict, reason: str
) -> None:
    code, named, message = refused(rpc(server, "setUserGroupQuota", params))
    assert (code, named) == (-32602, reason)
    assert reason in message
    with staff.db.read() as session:
        assert session.scalar(select(func.count()).select_from(GroupQuota)) == 0


def test_an_unknown_group_is_not_found(server: LiveServer) -> None:
    params = {"groupName": "nobody", "amount": "5", "period": "daily"}
    code, _, message = refused(rpc(server, "setUserGroupQuota", params))
    assert message == "Group 'nobody' does not exist"
    assert code == refused(rpc(server, "getUserGroupQuota", {"groupName": "nobody"}))[0]


def test_the_methods_are_provisioning_methods(server: LiveServer, staff: Installation) -> None:
    set_config(staff, {"api.jsonrpc.admin.enable": "N"})

    def denied() -> bool:
        answer = rpc(server, "getUserGroupQuota", {"groupName": "staff"})
        return "error" in answer and "api.jsonrpc.admin.enable" in answer["error"]["data"]["reason"]

    wait_until(denied, timeout=3)


def test_the_server_credits_a_period_by_itself_just_after_its_boundary(
    staff: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The service's clock runs at real speed from 3 s before midnight, so the next daily
    # boundary is 3 s away; the allocator wakes half a second after it.
    monkeypatch.setattr(quotas, "BOUNDARY_MARGIN", 0.5)
    midnight = datetime(2025, 6, 2, tzinfo=UTC)
    started = time.monotonic()
    quotas.set_clock(lambda: midnight - timedelta(seconds=3 - (time.monotonic() - started)))
    with staff.db.transaction() as session:
        quotas.set_group_quota(
            session, "staff", quotas.parse_terms("2.00", "daily", None), actor="t", time_zone="UTC"
        )
    live = LiveServer(staff).start()
    try:
        assert quota_rows(staff) == 0, "nothing before the boundary"
        wait_until(lambda: quota_rows(staff) == 2, timeout=15, interval=0.1)
        assert time.monotonic() - started >= 3
    finally:
        live.stop()
    with staff.db.read() as session:
        assert accounting.user_balance(session, "ann") == 2
        assert accounting.verify_ledger(session) == []
        view = quotas.get_group_quota(session, "staff", time_zone="UTC")
    assert view is not None and view.credited_through == midnight


def test_a_server_that_was_down_over_boundaries_credits_each_missed_period_once_on_start(
    staff: Installation,
) -> None:
    # The quota is set on 1 June at 10:00; no server runs until 4 June at 12:00, when one
    # starts: its allocator credits 2, 3 and 4 June by itself, each once, oldest first (so
    # once 4 June is there, a second credit of an earlier day would be too).
    quotas.set_clock(lambda: datetime(2025, 6, 1, 10, tzinfo=UTC))
    with staff.db.transaction() as session:
        quotas.set_group_quota(
            session, "staff", quotas.parse_terms("1.00", "daily", None), actor="t", time_zone="UTC"
        )
    quotas.set_clock(lambda: datetime(2025, 6, 4, 12, tzinfo=UTC))
    assert quota_comments(staff) == []
    live = LiveServer(staff).start()
    try:
        wait_until(lambda: "day 2025-06-04" in " ".join(quota_comments(staff)), timeout=15)
    finally:
        live.stop()
    assert sorted(quota_comments(staff)) == sorted(
        f"Quota of group staff for day 2025-06-0{day}" for day in (2, 3, 4) for _ in "ab"
    )
    assert quotas.allocate_due(staff).periods == 0  # nothing left due
    with staff.db.read() as session:
        assert accounting.user_balance(session, "ann") == 3
        assert accounting.verify_ledger(session) == []


def quota_comments(installation: Installation) -> list[str]:
    with installation.db.read() as session:
        query = select(AccountTrx.comment).where(AccountTrx.trx_type == "QUOTA")
        return list(session.scalars(query))
