"""Scheduled quotas: an allowance a group gives each member once per day, week or month.

    printsrv group quota / quota run / JSON-RPC setUserGroupQuota  ->  accounts.quotas
        ->  financial.post_set (the ledger's set-based write)

A group's quota is an amount, a period (`daily`, `weekly`, `monthly`) and optionally a
max-accumulation. Periods start at 00:00 in `system.time-zone`: every day, every Monday,
the 1st of every month. The first credit is for the first period that starts after the
quota was set, so setting a quota at 10:00 never credits the day already under way.

**Allocation.** `allocate_due` credits every period that has started and is not yet
credited, oldest first, each in a transaction of its own: a server that was down over
several boundaries credits each missed period once when it comes back, and `--as-of`
back-fills up to a given moment. For one group and period the credit is set-based: the
members' USER accounts are locked in id order, one `quota_credit` row per member is
inserted by `INSERT ... SELECT ... ON CONFLICT DO NOTHING` (the amount capped by the
locked balance), and the QUOTA
ledger rows and balances follow from those rows in one `financial.post_set`. No Python
runs per member, so 100,000 members cost a few statements (bench/quota.py).

**Max-accumulation.** A credit never lifts a balance above it: it is reduced to the gap,
or skipped (recorded with amount 0) when the balance is at or above it already.

**Exactly once.** `quota_credit`'s primary key (group, period start, member) is written in
the transaction that writes the ledger row, so no member is credited twice for one
period, whatever runs at once; every allocating transaction also serialises on one
advisory lock (`serialise_on`), so machines waking at the same boundary take turns and
the later ones find nothing due. `group_quota.credited_through` remembers the latest
period allocated, so a member who joins later is credited from the next period on, not
for periods the group has had already.

**When.** Every server process runs `run_allocator` (the app's lifespan): it allocates
what is due, then sleeps until the next boundary plus `BOUNDARY_MARGIN` (at most
`MAX_SLEEP`, so a quota set meanwhile is seen). `printsrv quota run` does the same once.

**Pruning.** A `quota_credit` row only has to outlive the chance of a second credit for
its period, and the allocator never goes back: it credits the periods after
`credited_through` (or after the quota was set), never one before. So each round, once
nothing is due, deletes up to `PRUNE_BATCH` rows of periods that started more than
`CREDIT_KEEP` before that point (before now for a group without a quota: a quota set
again starts after now). The ledger rows stay: they are the record of the credits.

Changing a quota starts it afresh (the next credit is for the first period after the
change); removing it stops the credits and keeps the record of those made. Either first
credits, under the old terms, the periods that have started and are not credited yet (a
server down over the boundary, or the minutes before the allocator wakes): a period
belongs to the terms in force when it began.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, delete, exists, func, literal, or_, select, true, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

import financial
from financial import Account, AccountType, Actor, TrxType
from financial.schema import MoneyType
from printsrv import errors
from printsrv.accounts import service as accounting
from printsrv.accounts.models import QUOTA_LOCK, QUOTA_PERIODS, GroupQuota, QuotaCredit
from printsrv.people import group_defaults
from printsrv.people import users as user_service
from printsrv.people.models import User, UserGroup, UserGroupMember
from printsrv.platform.database import serialise_on
from printsrv.platform.models import utcnow
from printsrv.platform.threads import in_thread

if TYPE_CHECKING:
    from printsrv.operations.installation import Installation

__all__ = [
    "BOUNDARY_MARGIN",
    "CREDIT_KEEP",
    "PRUNE_BATCH",
    "QUOTA_ACTOR",
    "Allocation",
    "QuotaTerms",
    "QuotaView",
    "allocate_due",
    "get_group_quota",
    "local_time",
    "now",
    "parse_as_of",
    "parse_terms",
    "period_after",
    "period_label",
    "prune_credits",
    "remove_group_quota",
    "run_allocator",
    "set_clock",
    "set_group_quota",
]

log = logging.getLogger(__name__)

QUOTA_ACTOR: Final = Actor("system", "quota")
"""The actor of every QUOTA ledger row."""

BOUNDARY_MARGIN: Final = 5.0
"""Seconds after a boundary before the allocator wakes (clocks of machines differ a little)."""

MAX_SLEEP: Final = 60.0
"""The longest the allocator sleeps: a quota set meanwhile may have an earlier boundary."""

RETRY_AFTER: Final = 10.0
"""Seconds before the allocator tries again after a failed round (the database away)."""

CREDIT_KEEP: Final = timedelta(days=62)
"""How long a `quota_credit` row is kept before the oldest period its group could still be
credited for: two months, so a monthly period and the clocks of several machines are
well inside it."""

PRUNE_BATCH: Final = 10_000
"""The most `quota_credit` rows one allocator round deletes (rounds are a minute apart)."""

_LOCK_NAME: Final = QUOTA_LOCK
_ZERO = literal(financial.ZERO, MoneyType())


# --- the clock -----------------------------------------------------------------------------------

_clock: Callable[[], datetime] = utcnow


def now() -> datetime:
    """The service's idea of now (aware UTC): the system clock, unless a test set another."""
    return _clock()


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """For tests only: take "now" from `clock` (None: the system clock again).

    Lets a test put a period boundary a few seconds ahead of a running server instead of
    waiting for midnight.
    """
    global _clock
    _clock = clock or utcnow


# --- terms and periods ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaTerms:
    """What an administrator sets: `amount` per `period`, up to `max_accumulation`.

    Attributes:
        amount: the credit per member and period (positive).
        period: `daily`, `weekly` or `monthly`.
        max_accumulation: the balance a credit never lifts an account above, or None.
    """

    amount: Decimal
    period: str
    max_accumulation: Decimal | None = None


def parse_terms(
    amount: str | None,
    period: str | None,
    max_accumulation: str | None,
    *,
    names: tuple[str, str, str] = ("amount", "period", "max-accumulation"),
) -> QuotaTerms:
    """Quota terms from text; InvalidInput naming the field (as `names` spell them) else.

    The amount is positive in wire form ("5.00"), the period one of daily, weekly,
    monthly, and the max-accumulation (optional) an amount not below the amount.
    """
    amount_name, period_name, max_name = names
    value = _positive(amount, amount_name)
    if period is None:
        raise errors.InvalidInput(
            f"Parameter {period_name!r} is missing: say daily, weekly or monthly",
            reason=period_name,
        )
    if period not in QUOTA_PERIODS:
        raise errors.InvalidInput(
            f"Parameter {period_name!r} has value {period!r}: not one of daily, weekly, monthly",
            reason=period_name,
        )
    cap = None
    if max_accumulation is not None:
        cap = _positive(max_accumulation, max_name)
        if cap < value:
            raise errors.InvalidInput(
                f"Parameter {max_name!r} ({financial.to_wire(cap)}) is below the amount "
                f"({financial.to_wire(value)}): no credit could ever be made in full",
                reason=max_name,
            )
    return QuotaTerms(value, period, cap)


def _positive(text: str | None, name: str) -> Decimal:
    if text is None:
        raise errors.InvalidInput(f"Parameter {name!r} is missing", reason=name)
    value = accounting.parse_amount(text, param=name)
    if value <= 0:
        raise errors.InvalidInput(
            f"Parameter {name!r} has value {text!r}: must be more than zero", reason=name
        )
    return value


def parse_as_of(text: str, *, time_zone: str, name: str = "as-of") -> datetime:
    """An ISO 8601 timestamp, not in the future; one without an offset is read in
    `time_zone`. InvalidInput naming `name` otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise errors.InvalidInput(
            f"Parameter {name!r} has value {text!r}: not an ISO 8601 timestamp such as "
            "2026-12-07T00:05:00+01:00",
            reason=name,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(time_zone))
    if moment > now():
        raise errors.InvalidInput(
            f"Parameter {name!r} has value {text!r}: in the future (only periods that have "
            "started are credited)",
            reason=name,
        )
    return moment.astimezone(UTC)


def period_after(period: str, moment: datetime, zone: ZoneInfo) -> datetime:
    """The start (aware UTC) of the first `period` that starts strictly after `moment`.

    Days start at 00:00 in `zone`, weeks on Monday, months on the 1st.
    """
    day = moment.astimezone(zone).date()
    if period == "daily":
        first = day + timedelta(days=1)
    elif period == "weekly":
        first = day + timedelta(days=7 - day.weekday())
    elif period == "monthly":
        first = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"period {period!r} is not one of {', '.join(QUOTA_PERIODS)}")
    return datetime.combine(first, time(), zone).astimezone(UTC)


def local_time(moment: datetime, time_zone: str) -> str:
    """`moment` as people read it in `time_zone`: "2026-12-05 00:00"."""
    return f"{moment.astimezone(ZoneInfo(time_zone)):%Y-%m-%d %H:%M}"


def period_label(period: str, start: datetime, zone: ZoneInfo) -> str:
    """How a ledger comment names a period: "day 2026-12-04", "week of 2026-11-30",
    "month 2026-12" (dates in `zone`)."""
    day: date = start.astimezone(zone).date()
    if period == "daily":
        return f"day {day.isoformat()}"
    if period == "weekly":
        return f"week of {day.isoformat()}"
    return f"month {day:%Y-%m}"


# --- setting and showing -------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaView:
    """A group's quota as `group quota GROUP` and getUserGroupQuota show it.

    Attributes:
        group: the group's name.
        terms: amount, period and max-accumulation.
        set_at: when the quota was set (aware UTC).
        set_by: who set it.
        credited_through: the start of the latest period credited, or None.
        next_period: the start of the next period to be credited (aware UTC).
    """

    group: str
    terms: QuotaTerms
    set_at: datetime
    set_by: str
    credited_through: datetime | None
    next_period: datetime


def _view(group: UserGroup, quota: GroupQuota, zone: ZoneInfo) -> QuotaView:
    return QuotaView(
        group=group.name,
        terms=QuotaTerms(quota.amount, quota.period, quota.max_accumulation),
        set_at=quota.set_at,
        set_by=quota.set_by,
        credited_through=quota.credited_through,
        next_period=_next_start(quota, zone),
    )


def _next_start(quota: GroupQuota, zone: ZoneInfo) -> datetime:
    return period_after(quota.period, quota.credited_through or quota.set_at, zone)


def set_group_quota(
    session: Session, group_name: str, terms: QuotaTerms, *, actor: str, time_zone: str
) -> QuotaView:
    """Give group `group_name` the quota `terms` (replacing any it has); return it.

    The first credit is for the first period that starts after now. NotFound for an
    unknown group. Periods of the old terms that have started but are not credited yet
    (the server was down, or its allocator had not woken since the boundary) are credited
    first, under the old terms (`_credit_started`); crediting is otherwise
    `allocate_due`'s work, which this waits for if it is under way (it must not finish the
    old terms' period under the new).
    """
    group = user_service.get_group(session, group_name)
    serialise_on(session, _LOCK_NAME)
    zone = ZoneInfo(time_zone)
    quota = session.get(GroupQuota, group.id, populate_existing=True)
    if quota is None:
        quota = GroupQuota(group_id=group.id)
        session.add(quota)
    else:
        _credit_started(session, quota, group.name, zone)
    quota.amount = terms.amount
    quota.period = terms.period
    quota.max_accumulation = terms.max_accumulation
    quota.set_at = now()
    quota.set_by = actor[:255]
    quota.credited_through = None
    session.flush()
    return _view(group, quota, zone)


def remove_group_quota(session: Session, group_name: str, *, time_zone: str) -> bool:
    """Stop group `group_name`'s quota; whether it had one. Credits made stay on the ledger.

    Periods that have started and are not credited yet are credited first, as
    `set_group_quota` does: the quota was on when they began. NotFound for an unknown group.
    """
    group = user_service.get_group(session, group_name)
    serialise_on(session, _LOCK_NAME)
    quota = session.get(GroupQuota, group.id, populate_existing=True)
    if quota is None:
        return False
    _credit_started(session, quota, group.name, ZoneInfo(time_zone))
    session.execute(delete(GroupQuota).where(GroupQuota.group_id == group.id))
    return True


def _credit_started(session: Session, quota: GroupQuota, group_name: str, zone: ZoneInfo) -> int:
    """Credit `quota`'s periods that started by now and are not credited yet, oldest first,
    in the caller's transaction (which holds the allocation lock); how many periods.

    Called before a quota is changed or stopped: a period belongs to the terms in force
    when it began, and without this a change made after a boundary but before the
    allocator woke (or while every server was down) would drop that period for good.
    """
    moment = now()
    periods = 0
    start = _next_start(quota, zone)
    while start <= moment:
        _allocate_period(session, quota, group_name, start, zone)
        # _allocate_period moves credited_through by a Core UPDATE; keep the object in step.
        set_committed_value(quota, "credited_through", start)
        periods += 1
        start = _next_start(quota, zone)
    if periods:
        log.info(
            "quota: %d started period(s) of group %s credited before its quota changed",
            periods,
            group_name,
        )
    return periods


def get_group_quota(session: Session, group_name: str, *, time_zone: str) -> QuotaView | None:
    """Group `group_name`'s quota, or None when it has none; NotFound for an unknown group."""
    group = user_service.get_group(session, group_name)
    quota = session.get(GroupQuota, group.id)
    return _view(group, quota, ZoneInfo(time_zone)) if quota is not None else None


# --- allocating ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    """What one `allocate_due` did.

    Attributes:
        periods: group periods allocated.
        credited: QUOTA ledger rows written.
        skipped: members not credited because their balance was at the max-accumulation.
        total: the sum of the credits.
        next_boundary: the start of the next period of any quota (aware UTC), or None.
        pruned: `quota_credit` rows deleted (`prune_credits`).
    """

    periods: int = 0
    credited: int = 0
    skipped: int = 0
    total: Decimal = financial.ZERO
    next_boundary: datetime | None = None
    pruned: int = 0


def allocate_due(installation: Installation, *, as_of: datetime | None = None) -> Allocation:
    """Credit every group period that starts at or before `as_of` (default: now) and is not
    credited yet, oldest first, one transaction per group and period; what was done.

    Safe to run anywhere at any time: twice, on several machines at once, after a long
    outage. Each transaction serialises on one advisory lock and re-reads what is due, and
    the `quota_credit` key refuses a second credit for a member and period. Blocking:
    call it from a thread (`run_allocator` does).
    """
    zone = ZoneInfo(installation.config.snapshot()["system.time-zone"])
    moment = as_of or now()
    periods = credited = skipped = 0
    total = financial.ZERO
    while True:
        with installation.db.transaction() as session:
            serialise_on(session, _LOCK_NAME)
            quotas = _quotas(session)
            due = min(
                ((_next_start(quota, zone), name, quota) for quota, name in quotas),
                default=None,
                key=lambda entry: (entry[0], entry[1]),
            )
            if due is None or due[0] > moment:
                next_boundary = due[0] if due is not None else None
                # Under the lock, with nothing due: no credit can be under way meanwhile.
                pruned = prune_credits(session, quotas, zone, moment=moment)
                break
            start, name, quota = due
            written, passed, amount = _allocate_period(session, quota, name, start, zone)
        periods += 1
        credited += written
        skipped += passed
        total += amount
    if periods:
        log.info(
            "quota: %d period(s) allocated, %d credit(s) of %s in all, %d skipped at the cap",
            periods,
            credited,
            financial.to_wire(total),
            skipped,
        )
    if pruned:
        log.info("quota: %d credit record(s) of long-past periods pruned", pruned)
    return Allocation(periods, credited, skipped, total, next_boundary, pruned)


def prune_credits(
    session: Session,
    quotas: list[tuple[GroupQuota, str]],
    zone: ZoneInfo,
    *,
    moment: datetime,
    limit: int = PRUNE_BATCH,
) -> int:
    """Delete up to `limit` (default PRUNE_BATCH) `quota_credit` rows no credit can need.

    A row only guards its (group, period, member) against a second credit, and the
    allocator only credits the periods after `_next_start` of a group's quota: a row whose
    period started more than CREDIT_KEEP before that (before `moment`, the allocation's
    "now", for a group without a quota) can never be asked for again. The oldest rows go
    first. Call it holding the allocation lock; returns how many rows were deleted.
    """
    keep_from = [
        and_(
            QuotaCredit.group_id == quota.group_id,
            QuotaCredit.period_start >= min(moment, _next_start(quota, zone)) - CREDIT_KEEP,
        )
        for quota, _ in quotas
    ]
    prunable = (
        select(QuotaCredit.group_id, QuotaCredit.period_start, QuotaCredit.user_id)
        .where(QuotaCredit.period_start < moment - CREDIT_KEEP)
        .order_by(QuotaCredit.period_start)
        .limit(limit)
    )
    if keep_from:
        prunable = prunable.where(~or_(*keep_from))
    key = tuple_(QuotaCredit.group_id, QuotaCredit.period_start, QuotaCredit.user_id)
    # A Core DELETE of a bounded set of keys; the subquery is materialised by both back-ends.
    result = session.execute(
        delete(QuotaCredit)
        .where(key.in_(select(*prunable.subquery().c)))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def _quotas(session: Session) -> list[tuple[GroupQuota, str]]:
    rows = session.execute(
        select(GroupQuota, UserGroup.name)
        .join(UserGroup, UserGroup.id == GroupQuota.group_id)
        .order_by(UserGroup.name)
        .execution_options(populate_existing=True)
    )
    return [(quota, name) for quota, name in rows]


def _members(group_id: int) -> tuple[object, ...]:
    """The conditions that make a user a live member of the group."""
    return (
        UserGroupMember.group_id == group_id,
        UserGroupMember.user_id == User.id,
        User.deleted_at.is_(None),
    )


def _open_missing_accounts(session: Session, group_id: int) -> None:
    """Give members who predate accounting their USER account (with their groups'
    defaults, as any first movement of money would); normally there are none."""
    has_account = exists().where(
        Account.account_type == AccountType.USER.value, Account.name == User.user_name
    )
    names = session.scalars(
        select(User.user_name).where(*_members(group_id), ~has_account).order_by(User.id)
    ).all()
    for name in names:
        group_defaults.open_user_account(session, name)


def _allocate_period(
    session: Session, quota: GroupQuota, group_name: str, start: datetime, zone: ZoneInfo
) -> tuple[int, int, Decimal]:
    """Credit one group's quota for the period starting at `start`: (credited, skipped, sum)."""
    _open_missing_accounts(session, quota.group_id)
    members = (
        select(User.id.label("user_id"), Account.id.label("account_id"), Account.balance)
        .select_from(UserGroupMember)
        .join(User, and_(*_members(quota.group_id)))
        .join(
            Account,
            and_(Account.account_type == AccountType.USER.value, Account.name == User.user_name),
        )
    )
    financial.lock_account_set(session, select(members.subquery().c.account_id))
    # Read again now that the accounts are locked: the balances the caps apply to.
    due = members.subquery("due")
    stamp = now()
    # A member credited for this period already (by nobody, normally: the lock and
    # credited_through see to that) keeps the row they have; the key decides, not a query.
    session.execute(
        _insert_new(session, QuotaCredit)
        .from_select(
            ["group_id", "period_start", "user_id", "account_id", "amount", "created_at"],
            select(
                literal(quota.group_id),
                literal(start, QuotaCredit.period_start.type),
                due.c.user_id,
                due.c.account_id,
                _capped(due.c.balance, quota.amount, quota.max_accumulation),
                literal(stamp, QuotaCredit.created_at.type),
            ).where(true()),  # SQLite needs a WHERE before ON CONFLICT (lang_upsert.html 2.2)
        )
        .on_conflict_do_nothing()
    )
    this_period = and_(
        QuotaCredit.group_id == quota.group_id,
        QuotaCredit.period_start == start,
        QuotaCredit.created_at == stamp,  # this run's rows only
    )
    recorded, total = session.execute(
        select(func.count(), func.coalesce(func.sum(QuotaCredit.amount), _ZERO)).where(this_period)
    ).one()
    label = period_label(quota.period, start, zone)
    written = financial.post_set(
        session,
        amounts=select(QuotaCredit.account_id, QuotaCredit.amount).where(
            this_period, QuotaCredit.amount > 0
        ),
        trx_type=TrxType.QUOTA,
        comment=f"Quota of group {group_name} for {label}",
        actor=QUOTA_ACTOR,
        reference=f"quota:{group_name}:{start.astimezone(zone).date().isoformat()}",
    )
    # A Core UPDATE: a group deleted meanwhile leaves no row to update, which is no error.
    session.execute(
        update(GroupQuota)
        .where(GroupQuota.group_id == quota.group_id)
        .values(credited_through=start)
        .execution_options(synchronize_session=False)
    )
    return written, recorded - written, total


def _insert_new(session: Session, table: type[QuotaCredit]) -> Any:
    """An INSERT for the session's back-end (both know ON CONFLICT DO NOTHING)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _capped(balance: object, amount: Decimal, cap: Decimal | None) -> object:
    """The credit for an account with `balance`: `amount`, reduced so the balance stays at
    or below `cap`, and 0 when it is there already."""
    full = literal(amount, MoneyType())
    if cap is None:
        return full
    ceiling = literal(cap, MoneyType())
    return case(
        (balance >= ceiling, _ZERO),  # type: ignore[operator]
        (balance + full > ceiling, ceiling - balance),  # type: ignore[operator]
        else_=full,
    )


# --- the server's allocator ----------------------------------------------------------------------


def _sleep_after(allocation: Allocation) -> float:
    """Seconds until the next boundary plus the margin, at most MAX_SLEEP."""
    if allocation.next_boundary is None:
        return MAX_SLEEP
    until = (allocation.next_boundary - now()).total_seconds() + BOUNDARY_MARGIN
    return min(MAX_SLEEP, max(until, 0.0))


async def run_allocator(installation: Installation) -> None:
    """Allocate what is due, then sleep until the next boundary; until cancelled.

    The app's lifespan starts one per server process; machines that wake together take
    turns on the allocation lock and the later ones find nothing due. A failed round (the
    database away) is tried again after RETRY_AFTER seconds.
    """
    failing = False
    while True:
        try:
            allocation = await in_thread(allocate_due, installation)
            wait = _sleep_after(allocation)
            failing = False
        except errors.DatabaseUnavailable:
            wait, failing = RETRY_AFTER, True  # the config refresher already says so
        except Exception:
            if not failing:
                log.exception("allocating quotas failed; retrying")
            wait, failing = RETRY_AFTER, True
        await asyncio.sleep(wait)
