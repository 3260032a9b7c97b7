"""Scheduled group quotas (printsrv/accounts/quotas.py), with time moved by `as_of`.

Every test sets its quotas with the service's clock put back to a moment in 2025 and then
allocates "as of" later moments, the way `printsrv quota run --as-of` back-fills.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from support import set_config

import financial
from financial import AccountTrx
from printsrv import errors
from printsrv.accounts import quotas, reports
from printsrv.accounts import service as accounting
from printsrv.accounts.models import GroupQuota, QuotaCredit
from printsrv.operations.installation import Installation
from printsrv.people import users

BERLIN = ZoneInfo("Europe/Berlin")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(autouse=True)
def _system_clock_afterwards() -> Iterator[None]:
    yield
    quotas.set_clock(None)


@pytest.fixture
def staff(installation: Installation) -> Installation:
    """Group staff with members ann and bob; group guests with bob and cleo."""
    with installation.db.transaction() as session:
        for group, members in (("staff", ("ann", "bob")), ("guests", ("bob", "cleo"))):
            users.add_group(session, group)
            for name in members:
                if users.find_user(session, name) is None:
                    users.add_user(session, name)
                users.add_member(session, group, name)
    return installation


def set_quota(
    installation: Installation,
    group: str,
    amount: str,
    period: str,
    cap: str | None = None,
    *,
    at: str,
) -> None:
    quotas.set_clock(lambda: utc(at))
    zone = installation.config.snapshot()["system.time-zone"]
    with installation.db.transaction() as session:
        quotas.set_group_quota(
            session,
            group,
            quotas.parse_terms(amount, period, cap),
            actor="admin:test",
            time_zone=zone,
        )


def run(installation: Installation, as_of: str) -> quotas.Allocation:
    return quotas.allocate_due(installation, as_of=utc(as_of))


def balance(installation: Installation, user: str) -> Decimal:
    with installation.db.read() as session:
        return accounting.user_balance(session, user)


def quota_rows(installation: Installation, user: str | None = None) -> list[tuple[str, str]]:
    """(amount, comment) of the QUOTA rows, oldest first (of one user's account if given)."""
    with installation.db.read() as session:
        query = select(AccountTrx.amount, AccountTrx.comment).where(AccountTrx.trx_type == "QUOTA")
        if user is not None:
            account = financial.get_account(session, "USER", user)
            query = query.where(AccountTrx.account_id == account.id)
        rows = session.execute(query.order_by(AccountTrx.id)).all()
    return [(financial.to_wire(amount), comment) for amount, comment in rows]


def assert_ledger_clean(installation: Installation) -> None:
    with installation.db.read() as session:
        assert accounting.verify_ledger(session) == []


# --- periods -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "moment", "start"),
    [
        ("daily", "2025-03-05T10:00:00+00:00", "2025-03-06T00:00:00+00:00"),
        ("daily", "2025-03-05T00:00:00+00:00", "2025-03-06T00:00:00+00:00"),
        ("weekly", "2025-03-05T10:00:00+00:00", "2025-03-10T00:00:00+00:00"),
        ("weekly", "2025-03-10T00:00:00+00:00", "2025-03-17T00:00:00+00:00"),
        ("monthly", "2025-01-31T23:59:59+00:00", "2025-02-01T00:00:00+00:00"),
        ("monthly", "2025-12-15T00:00:00+00:00", "2026-01-01T00:00:00+00:00"),
    ],
)
def test_a_period_starts_at_midnight_monday_or_the_first_strictly_after_a_moment(
    period: str, moment: str, start: str
) -> None:
    zone = ZoneInfo("UTC")
    assert quotas.period_after(period, datetime.fromisoformat(moment), zone) == (
        datetime.fromisoformat(start)
    )


def test_periods_start_at_local_midnight_across_a_daylight_saving_change() -> None:
    # Berlin moves to summer time on Sunday 2025-03-30: midnight is 23:00 UTC before it and
    # 22:00 UTC after it.
    saturday = quotas.period_after("daily", utc("2025-03-28T12:00:00"), BERLIN)
    assert saturday == utc("2025-03-28T23:00:00")
    monday = quotas.period_after("weekly", utc("2025-03-28T12:00:00"), BERLIN)
    assert monday == utc("2025-03-30T22:00:00")
    assert quotas.period_label("weekly", monday, BERLIN) == "week of 2025-03-31"


# --- allocating ----------------------------------------------------------------------------------


def test_a_daily_quota_over_a_month_credits_each_day_once(staff: Installation) -> None:
    set_quota(staff, "staff", "0.50", "daily", at="2025-03-01T10:00:00")
    # Nothing for the day the quota was set in, nor before the next midnight.
    assert run(staff, "2025-03-01T23:59:59").credited == 0
    done = run(staff, "2025-04-01T00:00:00")
    # 2 March .. 1 April: 31 days, two members.
    assert (done.periods, done.credited, done.skipped) == (31, 62, 0)
    assert done.total == Decimal("31.000000")
    assert balance(staff, "ann") == balance(staff, "bob") == Decimal("15.5")
    rows = quota_rows(staff, "ann")
    assert rows[0] == ("0.500000", "Quota of group staff for day 2025-03-02")
    assert rows[-1] == ("0.500000", "Quota of group staff for day 2025-04-01")
    assert done.next_boundary == utc("2025-04-02T00:00:00")
    assert_ledger_clean(staff)


def test_running_again_changes_nothing(staff: Installation) -> None:
    set_quota(staff, "staff", "1.00", "daily", at="2025-03-01T10:00:00")
    run(staff, "2025-03-10T12:00:00")
    again = run(staff, "2025-03-10T12:00:00")
    assert (again.periods, again.credited) == (0, 0)
    assert len(quota_rows(staff)) == 18


def test_the_credit_record_decides_a_member_already_credited_gets_nothing_more(
    staff: Installation,
) -> None:
    # As if another machine had credited ann for 2 March and its record were all that is
    # left to see: the key, not the watermark, keeps her from a second credit.
    set_quota(staff, "staff", "1.00", "daily", at="2025-03-01T10:00:00")
    with staff.db.transaction() as session:
        ann = users.get_user(session, "ann")
        group = users.get_group(session, "staff")
        session.add(
            QuotaCredit(
                group_id=group.id,
                period_start=utc("2025-03-02T00:00:00"),
                user_id=ann.id,
                account_id=financial.get_account(session, "USER", "ann").id,
                amount=Decimal(1),
            )
        )
    done = run(staff, "2025-03-02T00:00:00")
    assert (done.credited, done.skipped) == (1, 0)
    assert quota_rows(staff, "ann") == []
    assert len(quota_rows(staff, "bob")) == 1


def test_weekly_periods_start_on_monday_at_midnight_in_the_system_time_zone(
    staff: Installation,
) -> None:
    set_config(staff, {"system.time-zone": "Europe/Berlin"})
    set_quota(staff, "staff", "3.00", "weekly", at="2025-03-05T10:00:00")  # a Wednesday
    # Sunday 23:30 in Berlin: the week has not begun.
    assert run(staff, "2025-03-09T22:30:00").credited == 0
    # Monday 00:00 in Berlin is Sunday 23:00 UTC.
    done = run(staff, "2025-03-09T23:00:00")
    assert done.credited == 2
    assert quota_rows(staff, "ann") == [("3.000000", "Quota of group staff for week of 2025-03-10")]
    assert done.next_boundary == utc("2025-03-16T23:00:00")
    with staff.db.read() as session:
        starts = set(session.scalars(select(QuotaCredit.period_start)))
    assert starts == {utc("2025-03-09T23:00:00")}


def test_monthly_periods_start_on_the_first(staff: Installation) -> None:
    set_quota(staff, "staff", "20.00", "monthly", at="2025-01-15T08:00:00")
    assert run(staff, "2025-01-31T23:59:59").credited == 0
    done = run(staff, "2025-04-01T00:00:00")
    assert done.periods == 3
    assert [comment for _, comment in quota_rows(staff, "bob")] == [
        "Quota of group staff for month 2025-02",
        "Quota of group staff for month 2025-03",
        "Quota of group staff for month 2025-04",
    ]


def test_a_credit_never_lifts_a_balance_above_the_max_accumulation(staff: Installation) -> None:
    set_quota(staff, "staff", "5.00", "daily", "12.00", at="2025-03-01T10:00:00")
    done = run(staff, "2025-03-05T00:00:00")  # four days
    # 5 + 5 + 2 (reduced to the gap) + skipped at the cap.
    assert [amount for amount, _ in quota_rows(staff, "ann")] == ["5.000000"] * 2 + ["2.000000"]
    assert (done.credited, done.skipped) == (6, 2)
    assert balance(staff, "ann") == Decimal(12)
    with staff.db.transaction() as session:
        accounting.change_balance(
            session,
            account_type="USER",
            name="ann",
            amount=Decimal("-4"),
            adjust=True,
            comment="printed",
            actor=accounting.admin_actor("test"),
        )
    run(staff, "2025-03-06T00:00:00")
    assert balance(staff, "ann") == Decimal(12)
    assert quota_rows(staff, "ann")[-1][0] == "4.000000"
    with staff.db.read() as session:
        skipped = session.scalar(
            select(func.count()).select_from(QuotaCredit).where(QuotaCredit.amount == 0)
        )
    assert skipped == 3  # ann and bob on 4 March, bob on 5 March
    assert_ledger_clean(staff)


def test_a_member_of_several_groups_gets_each_groups_quota(staff: Installation) -> None:
    set_quota(staff, "staff", "2.00", "daily", at="2025-03-01T10:00:00")
    set_quota(staff, "guests", "0.25", "weekly", at="2025-03-01T10:00:00")
    run(staff, "2025-03-03T00:00:00")  # two days; Monday 3 March starts a week
    assert balance(staff, "ann") == Decimal("4")
    assert balance(staff, "bob") == Decimal("4.25")
    assert balance(staff, "cleo") == Decimal("0.25")


def test_a_member_added_later_is_credited_from_the_next_period_on(staff: Installation) -> None:
    set_quota(staff, "staff", "1.00", "daily", at="2025-03-01T10:00:00")
    run(staff, "2025-03-05T01:00:00")
    with staff.db.transaction() as session:
        users.add_member(session, "staff", "cleo")
    run(staff, "2025-03-07T01:00:00")
    assert [c for _, c in quota_rows(staff, "cleo")] == [
        "Quota of group staff for day 2025-03-06",
        "Quota of group staff for day 2025-03-07",
    ]
    assert balance(staff, "ann") == Decimal(6)


def test_a_deleted_user_is_not_credited(staff: Installation) -> None:
    set_quota(staff, "staff", "1.00", "daily", at="2025-03-01T10:00:00")
    with staff.db.transaction() as session:
        users.delete_user(session, "bob")
    run(staff, "2025-03-03T00:00:00")
    assert len(quota_rows(staff, "ann")) == 2
    assert quota_rows(staff, "bob") == []


def test_changing_a_quota_starts_it_afresh_and_off_stops_it(staff: Installation) -> None:
    set_quota(staff, "staff", "1.00", "daily", at="2025-03-01T10:00:00")
    run(staff, "2025-03-03T00:00:00")
    set_quota(staff, "staff", "2.00", "weekly", at="2025-03-03T12:00:00")
    run(staff, "2025-03-10T00:00:00")
    assert [a for a, _ in quota_rows(staff, "ann")] == ["1.000000", "1.000000", "2.000000"]
    with staff.db.transaction() as session:
        assert quotas.remove_group_quota(session, "staff", time_zone="UTC") is True
        assert quotas.remove_group_quota(session, "staff", time_zone="UTC") is False
        assert quotas.get_group_quota(session, "staff", time_zone="UTC") is None
    assert run(staff, "2025-04-01T00:00:00").credited == 0
    assert_ledger_clean(staff)


def test_changing_a_quota_first_credits_the_started_periods_under_the_old_terms(
    staff: Installation,
) -> None:
    # Set on Saturday 1 March; nothing allocated since (every server down). On Tuesday
    # 4 March at 08:00 the quota is changed: 2, 3 and 4 March began under the old terms.
    set_quota(staff, "staff", "1.00", "daily", at="2025-03-01T10:00:00")
    set_quota(staff, "staff", "2.00", "weekly", at="2025-03-04T08:00:00")
    assert [(a, c) for a, c in quota_rows(staff, "ann")] == [
        ("1.000000", "Quota of group staff for day 2025-03-02"),
        ("1.000000", "Quota of group staff for day 2025-03-03"),
        ("1.000000", "Quota of group staff for day 2025-03-04"),
    ]
    with staff.db.read() as session:
        view = quotas.get_group_quota(session, "staff", time_zone="UTC")
    assert view is not None
    assert (view.credited_through, view.next_period) == (None, utc("2025-03-10T00:00:00"))
    # A run now finds nothing more of the old terms; the new ones start next Monday.
    assert run(staff, "2025-03-09T23:59:59").credited == 0
    assert run(staff, "2025-03-10T00:00:00").credited == 2
    assert balance(staff, "ann") == balance(staff, "bob") == Decimal(5)
    assert_ledger_clean(staff)


def test_stopping_a_quota_first_credits_the_started_periods(staff: Installation) -> None:
    set_quota(staff, "staff", "1.00", "daily", "2.50", at="2025-03-01T10:00:00")
    run(staff, "2025-03-02T00:00:00")  # 2 March credited; 3 .. 5 March not yet
    quotas.set_clock(lambda: utc("2025-03-05T09:00:00"))
    with staff.db.transaction() as session:
        assert quotas.remove_group_quota(session, "staff", time_zone="UTC") is True
    # 1 + 1 + 0.50 (the cap) + skipped: the old terms, max-accumulation included.
    assert [a for a, _ in quota_rows(staff, "bob")] == ["1.000000", "1.000000", "0.500000"]
    assert balance(staff, "bob") == Decimal("2.5")
    with staff.db.read() as session:
        assert session.scalar(select(func.count()).select_from(GroupQuota)) == 0
        recorded = session.scalar(
            select(func.count())
            .select_from(QuotaCredit)
            .where(QuotaCredit.period_start == utc("2025-03-05T00:00:00"))
        )
    assert recorded == 2  # 5 March decided (with 0) for both members
    assert run(staff, "2025-03-09T00:00:00").credited == 0
    assert_ledger_clean(staff)


def test_a_member_without_an_account_gets_one_with_the_group_defaults(
    staff: Installation,
) -> None:
    with staff.db.transaction() as session:
        users.add_user(session, "dirk")
        # dirk predates accounting: his account is gone before he joins.
        session.execute(
            financial.Account.__table__.delete().where(financial.Account.name == "dirk")
        )
        users.add_member(session, "staff", "dirk")
    set_quota(staff, "staff", "1.00", "daily", at="2025-03-01T10:00:00")
    run(staff, "2025-03-02T00:00:00")
    assert quota_rows(staff, "dirk") == [("1.000000", "Quota of group staff for day 2025-03-02")]


def test_the_view_shows_the_terms_and_the_next_period(staff: Installation) -> None:
    set_quota(staff, "staff", "5", "weekly", "20", at="2025-03-05T10:00:00")
    with staff.db.read() as session:
        view = quotas.get_group_quota(session, "STAFF", time_zone="UTC")
    assert view is not None
    assert view.terms == quotas.QuotaTerms(Decimal(5), "weekly", Decimal(20))
    assert (view.set_at, view.set_by) == (utc("2025-03-05T10:00:00"), "admin:test")
    assert view.next_period == utc("2025-03-10T00:00:00")
    assert view.credited_through is None


def test_quota_rows_are_in_the_reports_like_every_other_row(staff: Installation) -> None:
    set_quota(staff, "staff", "0.50", "daily", at="2025-03-01T10:00:00")
    run(staff, "2025-03-03T00:00:00")
    with staff.db.read() as session:
        selection = reports.transaction_filter(
            session, account_type="USER", account_name="ann", trx_type="QUOTA"
        )
        csv = b"".join(reports.csv_report(session, selection, tz=UTC)).decode()
        out = io.BytesIO()
        reports.pdf_report(
            session,
            selection,
            out,
            tz=UTC,
            currency="EUR",
            generated_at=utc("2025-03-03T08:00:00"),
        )
    lines = csv.splitlines()
    assert len(lines) == 3  # the header and two days
    assert all(",USER,ann,QUOTA,0.500000," in line for line in lines[1:])
    assert "Quota of group staff for day 2025-03-03" in lines[2]
    assert out.getvalue().startswith(b"%PDF")


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "period", "cap", "field"),
    [
        ("-5.00", "daily", None, "amount"),
        ("0", "daily", None, "amount"),
        ("five", "daily", None, "amount"),
        ("5.0000001", "daily", None, "amount"),
        (None, "daily", None, "amount"),
        ("5.00", "hourly", None, "period"),
        ("5.00", None, None, "period"),
        ("5.00", "daily", "4.99", "max-accumulation"),
        ("5.00", "daily", "lots", "max-accumulation"),
    ],
)
def test_bad_terms_are_refused_naming_the_field(
    amount: str | None, period: str | None, cap: str | None, field: str
) -> None:
    with pytest.raises(errors.InvalidInput) as refused:
        quotas.parse_terms(amount, period, cap)
    assert refused.value.reason == field
    assert repr(field) in refused.value.message


def test_an_unknown_group_is_refused_and_nothing_is_written(installation: Installation) -> None:
    refused = pytest.raises(errors.NotFound, match="Group 'nobody' does not exist")
    with refused, installation.db.transaction() as session:
        quotas.set_group_quota(
            session,
            "nobody",
            quotas.QuotaTerms(Decimal(1), "daily"),
            actor="admin:test",
            time_zone="UTC",
        )
    with installation.db.read() as session:
        assert session.scalar(select(func.count()).select_from(GroupQuota)) == 0


@pytest.mark.parametrize("text", ["yesterday", "2025-13-01T00:00", ""])
def test_a_bad_as_of_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(errors.InvalidInput) as refused:
        quotas.parse_as_of(text, time_zone="UTC", name="--as-of")
    assert refused.value.reason == "--as-of"


def test_as_of_without_an_offset_is_read_in_the_system_time_zone_and_never_in_the_future() -> None:
    moment = quotas.parse_as_of("2025-03-10T00:30", time_zone="Europe/Berlin")
    assert moment == utc("2025-03-09T23:30:00")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    with pytest.raises(errors.InvalidInput, match="in the future"):
        quotas.parse_as_of(tomorrow, time_zone="UTC")


# --- pruning the credit record -------------------------------------------------------------------


def credit_periods(installation: Installation, group: str) -> list[datetime]:
    """The period starts that still have a `quota_credit` row for `group`, oldest first."""
    with installation.db.read() as session:
        group_id = users.get_group(session, group).id
        return list(
            session.scalars(
                select(QuotaCredit.period_start)
                .where(QuotaCredit.group_id == group_id)
                .distinct()
                .order_by(QuotaCredit.period_start)
            )
        )


def test_credit_records_of_periods_long_before_the_next_one_due_are_pruned(
    staff: Installation,
) -> None:
    set_quota(staff, "staff", "1.00", "daily", at="2025-01-01T10:00:00")
    # 2 January .. 1 May (120 days) in one back-fill; the round ends by pruning the rows of
    # periods that started more than CREDIT_KEEP (62 days) before its moment.
    done = run(staff, "2025-05-01T12:00:00")
    assert (done.periods, done.credited) == (120, 240)
    assert done.pruned == 2 * 58  # 2 January .. 28 February (before 28 Feb 12:00), two members
    kept = credit_periods(staff, "staff")
    assert (kept[0], kept[-1]) == (utc("2025-03-01T00:00:00"), utc("2025-05-01T00:00:00"))
    # The ledger keeps every credit: the record was only there to stop a second one.
    assert len(quota_rows(staff, "ann")) == 120
    assert_ledger_clean(staff)


def test_no_period_is_credited_twice_once_its_record_is_pruned(staff: Installation) -> None:
    set_quota(staff, "staff", "1.00", "daily", at="2025-01-01T10:00:00")
    run(staff, "2025-05-01T12:00:00")
    again = run(staff, "2025-05-01T12:00:00")
    assert (again.periods, again.credited, again.pruned) == (0, 0, 0)
    later = run(staff, "2025-05-03T12:00:00")
    assert (later.periods, later.credited, later.pruned) == (2, 4, 4)
    assert balance(staff, "ann") == Decimal("122")
    # Even a quota set again (which starts afresh) begins after now, after every pruned row.
    set_quota(staff, "staff", "1.00", "daily", at="2025-05-03T13:00:00")
    assert run(staff, "2025-05-03T23:00:00").credited == 0
    assert balance(staff, "ann") == Decimal("122")


def test_a_round_prunes_at_most_a_batch_and_keeps_what_a_late_group_may_still_need(
    staff: Installation,
) -> None:
    set_quota(staff, "staff", "1.00", "daily", at="2025-01-01T10:00:00")
    set_quota(staff, "guests", "1.00", "daily", at="2025-01-01T10:00:00")
    run(staff, "2025-01-31T12:00:00")  # 2 .. 31 January recorded for both groups
    zone = ZoneInfo("UTC")
    with staff.db.transaction() as session:
        # staff's allocation went on to 14 April (as if its members had left meanwhile);
        # guests' is far behind: nothing after 62 days before its next period may go.
        for group, through in (("staff", "2025-04-14"), ("guests", "2025-01-05")):
            quota = session.get(GroupQuota, users.get_group(session, group).id)
            assert quota is not None
            quota.credited_through = utc(f"{through}T00:00:00")
        session.flush()
        groups = [
            (quota, name)
            for quota, name in session.execute(
                select(GroupQuota, quotas.UserGroup.name).join(quotas.UserGroup)
            )
        ]
        moment = utc("2025-04-15T00:00:00")
        assert quotas.prune_credits(session, groups, zone, moment=moment, limit=10) == 10
        assert quotas.prune_credits(session, groups, zone, moment=moment) == 2 * 30 - 10
    # staff: every period before 12 February (moment - 62 days) is gone.
    assert credit_periods(staff, "staff") == []
    # guests: what started on or after its next period (6 January) - 62 days stays: all.
    assert len(credit_periods(staff, "guests")) == 30
