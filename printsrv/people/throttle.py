"""Rate limits: failed web logins counted per user name and per client address, and wrong
`createToken` API keys counted per client address.

The counters live in the database (`login_throttle`), so a guesser gains nothing by
spreading attempts over workers or machines. Each key has a fixed window of
`web-login.throttle.window-secs`: once `web-login.throttle.user.max-failures` failures for
one user name (aliases count as that user), or `web-login.throttle.address.max-failures`
from one address, fall within it, further logins are refused until it ends, correct
password or not. IPv6 clients are counted per /64, the block one subscriber usually gets.
Wrong API keys given to `onetime-auth.createToken` are counted the same way, per address
("apikey:addr:..."), up to `web-login.ttp.apikey.max-failures` in the same window: the key
lets its holder log in as anyone, so guessing it must be as slow as guessing a password.

Checking and counting are separate statements, so a burst of concurrent attempts may
overshoot the limit by the number of attempts in flight; that does not help a guesser.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from printsrv.errors import InvalidInput, NotAllowed
from printsrv.people.models import LoginThrottle, User
from printsrv.people.users import UserRef, normalise_name, resolve_user_name, resolved_user_id
from printsrv.platform.models import UTCDateTime, utcnow
from printsrv.platform.properties import Snapshot

__all__ = [
    "LOGIN_PROBE",
    "LoginThrottled",
    "LoginUser",
    "ThrottlePolicy",
    "check",
    "check_and_find_user",
    "check_api_key_caller",
    "check_api_key_caller_and_find_user",
    "forget_user",
    "judge_login_probe",
    "login_probe_params",
    "purge_stale",
    "record_api_key_failure",
    "record_failure",
]


class LoginThrottled(NotAllowed):
    """Too many failed logins for this user name or from this address, or too many wrong
    API keys from this address; `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures one user name and one address may have within one window."""

    user_failures: int
    address_failures: int
    window: timedelta
    api_key_failures: int = 10  # wrong createToken API keys per address

    @classmethod
    def from_config(cls, snapshot: Snapshot) -> ThrottlePolicy:
        """The policy the `web-login.throttle.*` properties set."""
        return cls(
            user_failures=snapshot["web-login.throttle.user.max-failures"],
            address_failures=snapshot["web-login.throttle.address.max-failures"],
            window=timedelta(seconds=snapshot["web-login.throttle.window-secs"]),
            api_key_failures=snapshot["web-login.ttp.apikey.max-failures"],
        )


def _user_key(session: Session, user_name: str) -> str:
    try:
        name = resolve_user_name(session, user_name)
    except InvalidInput:
        name = _raw_name(user_name)
    return "user:" + name[:100]


def _raw_name(user_name: str) -> str:
    # Malformed names are counted too, under their raw (bounded) form.
    return user_name.strip().lower()


def _address_key(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "addr:" + address[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"addr:{ip.ipv4_mapped}"
        return f"addr:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"addr:{ip}"


def _api_key_key(address: str) -> str:
    return "apikey:" + _address_key(address)


def _limits(
    session: Session, user_name: str, address: str, policy: ThrottlePolicy
) -> dict[str, int]:
    return {
        _user_key(session, user_name): policy.user_failures,
        _address_key(address): policy.address_failures,
    }


def check(
    session: Session,
    *,
    user_name: str,
    address: str,
    policy: ThrottlePolicy,
    now: datetime | None = None,
) -> None:
    """Raise LoginThrottled when this user name or this address has used up its failures."""
    _refuse_when_used_up(
        session, _limits(session, user_name, address, policy), policy, now, "failed logins"
    )


def check_api_key_caller(
    on: Session | Connection,
    *,
    address: str,
    policy: ThrottlePolicy,
    now: datetime | None = None,
) -> None:
    """Raise LoginThrottled when this address has sent too many wrong createToken API keys.

    `on` is a session, or a bare connection (`Database.statement`)."""
    limits = {_api_key_key(address): policy.api_key_failures}
    _refuse_when_used_up(on, limits, policy, now, "wrong API keys from this address")


def _token_caller_probe() -> Select[Any]:
    # createToken's one read: the address's wrong-key counter and the live user the name
    # resolves to, both LEFT JOINed to one row so that either may be missing. Two reads
    # were two round trips; this one is most of a token's database work.
    user = User.__table__.alias("token_user")
    by_address = LoginThrottle.__table__.alias("key_failures")
    one_row = select(literal(1).label("one")).subquery("one_row")
    return select(
        by_address.c.failures,
        by_address.c.window_start,
        user.c.id,
        user.c.user_name,
        user.c.enabled,
        user.c.uuid_hash,
    ).select_from(
        one_row.outerjoin(by_address, by_address.c.key == bindparam("address_key")).outerjoin(
            user,
            and_(user.c.id == resolved_user_id(bindparam("name")), user.c.deleted_at.is_(None)),
        )
    )


_TOKEN_CALLER_PROBE = _token_caller_probe()


def check_api_key_caller_and_find_user(
    on: Connection,
    *,
    address: str,
    user_name: str,
    policy: ThrottlePolicy,
    now: datetime | None = None,
) -> UserRef | None:
    """`check_api_key_caller`, and the live user `user_name` (or alias) names, in one
    statement: None when no live user has that name.

    Raises LoginThrottled as `check_api_key_caller` does, whatever the user.
    """
    try:
        name: str | None = normalise_name(user_name)
    except InvalidInput:
        name = None  # matches no user and no alias
    row = on.execute(
        _TOKEN_CALLER_PROBE, {"address_key": _api_key_key(address), "name": name}
    ).one()
    failures, window_start, *user = row
    if failures is not None:
        _refuse_if_used_up(
            [(policy.api_key_failures, failures, window_start)],
            policy,
            now or utcnow(),
            what="wrong API keys from this address",
        )
    return None if user[0] is None else UserRef(*user)


def _refuse_when_used_up(
    on: Session | Connection,
    limits: dict[str, int],
    policy: ThrottlePolicy,
    now: datetime | None,
    what: str,
) -> None:
    current = now or utcnow()
    rows = on.execute(
        select(LoginThrottle.key, LoginThrottle.failures, LoginThrottle.window_start).where(
            LoginThrottle.key.in_(limits)
        )
    )
    _refuse_if_used_up(
        ((limits[row.key], row.failures, row.window_start) for row in rows),
        policy,
        current,
        what=what,
    )


def _refuse_if_used_up(
    counters: Iterable[tuple[int, int, datetime]],
    policy: ThrottlePolicy,
    now: datetime,
    *,
    what: str = "failed logins",
) -> None:
    # counters: (the key's limit, its failures, its window's start), one per counted key.
    waits = [
        window_start + policy.window - now
        for limit, failures, window_start in counters
        if window_start > now - policy.window and failures >= limit
    ]
    if waits:
        seconds = max(1, math.ceil(max(waits).total_seconds()))
        minutes = math.ceil(seconds / 60)
        raise LoginThrottled(
            f"Too many {what}. Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
            retry_after=seconds,
        )


@dataclass(frozen=True, slots=True)
class LoginUser:
    """The user a login names, as a login needs them (not a whole `User`).

    deleted: the name resolves to a deleted user, who may not log in.
    had_failures: the user's failure counter existed when the login checked it, so a
    successful login has one to clear.
    """

    id: int
    user_name: str
    full_name: str
    enabled: bool
    deleted: bool
    had_failures: bool


def _login_probe() -> Select[Any]:
    # One row, whatever exists: the user the name resolves to (LEFT JOINed, so an unknown
    # name still gives the row) and the counters of the user's key and the address's key.
    # A Core statement built once; a login is mostly its statements' cost.
    user = User.__table__.alias("login_user")
    by_user = LoginThrottle.__table__.alias("user_failures")
    by_address = LoginThrottle.__table__.alias("address_failures")
    one_row = select(literal(1).label("one")).subquery("one_row")
    # The user's key as _user_key makes it: the canonical name an alias resolves to, else
    # the name as given (normalised, or raw when malformed).
    user_key = func.coalesce(literal("user:") + user.c.user_name, bindparam("user_key"))
    return select(
        user.c.id,
        user.c.user_name,
        user.c.full_name,
        user.c.enabled,
        user.c.deleted_at,
        by_user.c.failures.label("user_failures"),
        by_user.c.window_start.label("user_window"),
        by_address.c.failures.label("address_failures"),
        by_address.c.window_start.label("address_window"),
    ).select_from(
        one_row.outerjoin(user, user.c.id == resolved_user_id(bindparam("name")))
        .outerjoin(by_user, by_user.c.key == user_key)
        .outerjoin(by_address, by_address.c.key == bindparam("address_key"))
    )


LOGIN_PROBE = _login_probe()
"""`check_and_find_user`'s statement, for a caller that makes it part of a larger one: its
parameters are `login_probe_params`, its one row goes to `judge_login_probe`."""


def login_probe_params(*, user_name: str, address: str) -> dict[str, Any]:
    """The parameters of LOGIN_PROBE for a login as `user_name` from `address`."""
    try:
        name: str | None = normalise_name(user_name)
        fallback = str(name)
    except InvalidInput:
        name, fallback = None, _raw_name(user_name)  # None matches no user and no alias
    return {
        "name": name,
        "user_key": "user:" + fallback[:100],
        "address_key": _address_key(address),
    }


def judge_login_probe(
    row: Sequence[Any], *, policy: ThrottlePolicy, now: datetime
) -> LoginUser | None:
    """LoginThrottled when LOGIN_PROBE's row shows a used-up counter; else the user it
    found (None: no user has that name)."""
    user_id, canonical, full_name, enabled, deleted_at, *counts = row[:9]
    user_failures, user_window, address_failures, address_window = counts
    counters = []
    if user_failures is not None:
        counters.append((policy.user_failures, user_failures, user_window))
    if address_failures is not None:
        counters.append((policy.address_failures, address_failures, address_window))
    _refuse_if_used_up(counters, policy, now)
    if user_id is None:
        return None
    return LoginUser(
        user_id,
        canonical,
        full_name,
        bool(enabled),
        deleted_at is not None,
        had_failures=user_failures is not None,
    )


def check_and_find_user(
    session: Session,
    *,
    user_name: str,
    address: str,
    policy: ThrottlePolicy,
    now: datetime | None = None,
) -> LoginUser | None:
    """`check`, and the user `user_name` (or alias) names, deleted or not: None when no user
    has that name. One statement, on the session's connection (Core, not the ORM).

    Raises LoginThrottled as `check` does.
    """
    session.flush()  # what the ORM's autoflush would do before a query
    row = (
        session.connection()
        .execute(LOGIN_PROBE, login_probe_params(user_name=user_name, address=address))
        .one()
    )
    return judge_login_probe(row, policy=policy, now=now or utcnow())


def record_failure(
    session: Session,
    *,
    user_name: str,
    address: str,
    policy: ThrottlePolicy,
    now: datetime | None = None,
) -> None:
    """Count one failed login against the user name and the address."""
    current = now or utcnow()
    for key in _limits(session, user_name, address, policy):
        _count(session, key, current, current - policy.window)


def record_api_key_failure(
    session: Session, *, address: str, policy: ThrottlePolicy, now: datetime | None = None
) -> None:
    """Count one wrong createToken API key against the address."""
    current = now or utcnow()
    _count(session, _api_key_key(address), current, current - policy.window)


def _count(session: Session, key: str, now: datetime, cutoff: datetime) -> None:
    expired = LoginThrottle.window_start <= cutoff
    # Both SET expressions read the row as it was, so an expired window restarts at 1.
    bump = (
        update(LoginThrottle)
        .where(LoginThrottle.key == key)
        .values(
            failures=case((expired, 1), else_=LoginThrottle.failures + 1),
            window_start=case(
                (expired, literal(now, UTCDateTime())), else_=LoginThrottle.window_start
            ),
        )
        .execution_options(synchronize_session=False)
    )
    if session.execute(bump).rowcount:  # type: ignore[attr-defined]
        return
    try:
        with session.begin_nested():
            session.execute(insert(LoginThrottle).values(key=key, failures=1, window_start=now))
    except IntegrityError:
        # Another worker counted the first failure meanwhile; count on its row.
        session.execute(bump)


def forget_user(session: Session, *, user_name: str) -> None:
    """Clear a user's failures (after a successful login); the address keeps its own.

    `user_name` is the canonical name (a logged-in user's), so no alias look-up is needed.
    """
    # Core on the session's connection: the ORM's bulk-delete machinery costs more than
    # the statement, and no ORM object of this table is ever loaded on a login.
    session.connection().execute(_FORGET, {"key": "user:" + user_name[:100]})


_FORGET = delete(LoginThrottle).where(LoginThrottle.key == bindparam("key"))


def purge_stale(session: Session, *, policy: ThrottlePolicy, now: datetime | None = None) -> int:
    """Delete counters whose window has ended; returns how many."""
    cutoff = (now or utcnow()) - policy.window
    result = session.execute(
        delete(LoginThrottle)
        .where(LoginThrottle.window_start <= cutoff)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
