"""Failed card and PIN attempts, counted per station address and per user, in the database.

A card number or a 4-digit PIN is a short secret: someone at a station could try cards or
PINs one after another. After ``MAX_FAILURES`` failures within ``WINDOW``, the station is
refused for the rest of the window (429 with Retry-After), and so is the user whose PIN
was tried, from every station; a locked user is told the same as a wrong PIN. The counters
live in ``release_throttle``, so guessing on several machines (or several workers) adds up.

Checking and counting are separate statements: a burst of attempts in flight at once may
overshoot the limit by their number, which gains a guesser nothing worth having.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import case, delete, insert, literal, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from printsrv.platform.models import UTCDateTime
from printsrv.release.models import ReleaseThrottle

__all__ = [
    "MAX_FAILURES",
    "WINDOW",
    "forget_user",
    "purge_stale",
    "record_failure",
    "station_wait",
    "user_locked",
]

MAX_FAILURES: Final = 5
WINDOW: Final = timedelta(minutes=5)


def _station_key(address: str) -> str:
    return "station:" + address[:100]


def _user_key(user_name: str) -> str:
    return "user:" + user_name[:100]


def _wait(session: Session, key: str, now: datetime) -> int | None:
    row = session.get(ReleaseThrottle, key, populate_existing=True)
    if row is None or row.window_start <= now - WINDOW or row.failures < MAX_FAILURES:
        return None
    return max(1, math.ceil((row.window_start + WINDOW - now).total_seconds()))


def station_wait(session: Session, station: str, now: datetime) -> int | None:
    """Seconds until ``station`` may try again, or None while it has failures left."""
    return _wait(session, _station_key(station), now)


def user_locked(session: Session, user_name: str, now: datetime) -> bool:
    """Whether ``user_name`` (canonical) has used up its failures in the current window."""
    return _wait(session, _user_key(user_name), now) is not None


def record_failure(session: Session, *, station: str, user_name: str | None, now: datetime) -> None:
    """Count one failed attempt against the station and, when one was named, the user."""
    keys = [_station_key(station)]
    if user_name:
        keys.append(_user_key(user_name))
    for key in keys:
        _count(session, key, now)


def _count(session: Session, key: str, now: datetime) -> None:
    expired = ReleaseThrottle.window_start <= now - WINDOW
    # Both SET expressions read the row as it was, so an expired window restarts at 1.
    bump = (
        update(ReleaseThrottle)
        .where(ReleaseThrottle.key == key)
        .values(
            failures=case((expired, 1), else_=ReleaseThrottle.failures + 1),
            window_start=case(
                (expired, literal(now, UTCDateTime())), else_=ReleaseThrottle.window_start
            ),
        )
        .execution_options(synchronize_session=False)
    )
    if session.execute(bump).rowcount:  # type: ignore[attr-defined]
        return
    try:
        with session.begin_nested():
            session.execute(insert(ReleaseThrottle).values(key=key, failures=1, window_start=now))
    except IntegrityError:
        # Another machine counted the first failure meanwhile: count on its row.
        session.execute(bump)


def forget_user(session: Session, user_name: str) -> None:
    """Clear a user's failures once they identified; the station keeps its own count."""
    session.execute(
        delete(ReleaseThrottle)
        .where(ReleaseThrottle.key == _user_key(user_name))
        .execution_options(synchronize_session=False)
    )


def purge_stale(session: Session, now: datetime) -> int:
    """Delete counters whose window has ended; returns how many."""
    result = session.execute(
        delete(ReleaseThrottle)
        .where(ReleaseThrottle.window_start <= now - WINDOW)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
