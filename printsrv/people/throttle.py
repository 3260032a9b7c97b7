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
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from printsrv.errors import InvalidInput, NotAllowed
from printsrv.people.models import LoginThrottle
from printsrv.people.users import resolve_user_name
from printsrv.platform.models import UTCDateTime, utcnow
from printsrv.platform.properties import Snapshot

__all__ = [
    "LoginThrottled",
    "ThrottlePolicy",
    "check",
    "check_api_key_caller",
    "forget_user",
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
        # Malformed names are counted too, under their raw (bounded) form.
        name = user_name.strip().lower()
    return "user:" + name[:100]


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
    session: Session, *, address: str, policy: ThrottlePolicy, now: datetime | None = None
) -> None:
    """Raise LoginThrottled when this address has sent too many wrong createToken API keys."""
    limits = {_api_key_key(address): policy.api_key_failures}
    _refuse_when_used_up(session, limits, policy, now, "wrong API keys from this address")


def _refuse_when_used_up(
    session: Session,
    limits: dict[str, int],
    policy: ThrottlePolicy,
    now: datetime | None,
    what: str,
) -> None:
    current = now or utcnow()
    rows = session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(limits)))
    waits = [
        row.window_start + policy.window - current
        for row in rows
        if row.window_start > current - policy.window and row.failures >= limits[row.key]
    ]
    if waits:
        seconds = max(1, math.ceil(max(waits).total_seconds()))
        minutes = math.ceil(seconds / 60)
        raise LoginThrottled(
            f"Too many {what}. Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
            retry_after=seconds,
        )


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
    session.execute(
        delete(LoginThrottle)
        .where(LoginThrottle.key == "user:" + user_name[:100])
        .execution_options(synchronize_session=False)
    )


def purge_stale(session: Session, *, policy: ThrottlePolicy, now: datetime | None = None) -> int:
    """Delete counters whose window has ended; returns how many."""
    cutoff = (now or utcnow()) - policy.window
    result = session.execute(
        delete(LoginThrottle)
        .where(LoginThrottle.window_start <= cutoff)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
