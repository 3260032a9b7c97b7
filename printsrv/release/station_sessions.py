"""The station page's server-side sessions: who is at the station, until they release, say
they are done, or walk away (``release.station.idle-secs`` after their last input: each
action on the page, "More time" among them, starts the time again).

The cookie holds a random id, the row its SHA-256. A session is bound to its printer and
its station's address, and lives in the database, so any machine can serve the next tap
and a session forgotten on one is forgotten on all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from printsrv.people.models import User
from printsrv.people.sessions import is_well_formed, new_secret
from printsrv.release.models import StationSession

__all__ = ["Present", "extend", "find_present", "forget", "purge_expired", "start"]


@dataclass(frozen=True)
class Present:
    """A live station session: the person, the CSRF token their forms carry, and when the
    station forgets them unless they act before."""

    id_hash: str
    user_id: int
    csrf_token: str
    expires_at: datetime


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def start(
    session: Session, *, user: User, printer: str, station: str, idle: timedelta, now: datetime
) -> str:
    """A new station session for ``user``; returns the id for the cookie (shown once)."""
    session_id = new_secret()
    session.add(
        StationSession(
            id_hash=_digest(session_id),
            user_id=user.id,
            printer_name=printer,
            station_address=station,
            csrf_token=new_secret(),
            created_at=now,
            expires_at=now + idle,
        )
    )
    return session_id


def find_present(
    session: Session, session_id: str | None, *, printer: str, station: str, now: datetime
) -> Present | None:
    """The live session behind a cookie at this printer and station, or None."""
    if not is_well_formed(session_id):
        return None
    assert session_id is not None
    row = session.scalar(
        select(StationSession)
        .join(User, User.id == StationSession.user_id)
        .where(
            StationSession.id_hash == _digest(session_id),
            StationSession.printer_name == printer,
            StationSession.station_address == station,
            StationSession.expires_at > now,
            User.enabled.is_(True),
            User.deleted_at.is_(None),
        )
    )
    if row is None:
        return None
    return Present(row.id_hash, row.user_id, row.csrf_token, row.expires_at)


def extend(session: Session, present: Present, *, idle: timedelta, now: datetime) -> bool:
    """Start the idle time again from ``now`` (the person did something); False when the
    session ended meanwhile (another tap released, or it expired), which stays ended."""
    result = session.execute(
        update(StationSession)
        .where(StationSession.id_hash == present.id_hash, StationSession.expires_at > now)
        .values(expires_at=now + idle)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def forget(session: Session, present: Present) -> bool:
    """End the session; False when it had already ended (a second click, another machine)."""
    result = session.execute(
        delete(StationSession)
        .where(StationSession.id_hash == present.id_hash)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def purge_expired(session: Session, now: datetime) -> int:
    """Delete sessions past their time; returns how many."""
    result = session.execute(
        delete(StationSession)
        .where(StationSession.expires_at <= now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
