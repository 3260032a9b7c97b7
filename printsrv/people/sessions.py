"""Web-app sessions, kept in the database so every worker and machine sees the same ones.

The browser holds a random session id in an HttpOnly, SameSite=Lax cookie; the database
holds only its SHA-256 (`web_session.id_hash`), so a copy of the database logs no one in.
A session expires after `web-login.session.idle-mins` without a request; logging out
deletes its row, which ends it everywhere at once. Each session carries its own CSRF token
for the forms of the logged-in pages.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.orm import Session

from printsrv.people.models import User, WebSession
from printsrv.people.users import find_user
from printsrv.platform.models import utcnow
from printsrv.platform.security import equals_constant_time

__all__ = [
    "CSRF_COOKIE",
    "SESSION_COLUMNS",
    "SESSION_COOKIE",
    "ActiveSession",
    "csrf_matches",
    "end_session",
    "find_session",
    "id_digest",
    "is_well_formed",
    "new_secret",
    "new_session_row",
    "purge_expired_sessions",
    "renew_session",
    "start_session",
]

SESSION_COOKIE = "printsrv_session"
# Before login there is no session: the login form's CSRF token is double-submitted, once in
# this cookie and once in the form, and the two must match.
CSRF_COOKIE = "printsrv_csrf"
_SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


@dataclass(frozen=True)
class ActiveSession:
    """A live session and who it belongs to.

    user_id, user_name, full_name: the logged-in user.
    csrf_token: the token every form of the logged-in pages must carry.
    expires_at: when it ends unless the user comes back before.
    """

    user_id: int
    user_name: str
    full_name: str
    csrf_token: str = field(repr=False)
    expires_at: datetime


def new_secret() -> str:
    """A fresh random session id or CSRF token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def is_well_formed(value: str | None) -> bool:
    """Whether a cookie or form value can be one of our secrets at all (cheap pre-check)."""
    return bool(value) and bool(_SECRET_PATTERN.match(value or ""))


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Whether a form's CSRF token is the expected one, in constant time; None matches nothing."""
    if not (is_well_formed(expected) and is_well_formed(given)):
        return False
    assert expected is not None and given is not None
    return equals_constant_time(expected, given)


class SessionHolder(Protocol):
    """Whom a session is for: a `User`, or a login's `throttle.LoginUser`."""

    @property
    def id(self) -> int: ...
    @property
    def user_name(self) -> str: ...
    @property
    def full_name(self) -> str: ...


def start_session(
    session: Session,
    user: SessionHolder,
    *,
    idle: timedelta,
    method: str,
    address: str,
    now: datetime | None = None,
) -> tuple[str, ActiveSession]:
    """Open a session for `user`; returns (the id for the cookie, the session).

    A new id on every login, so an id planted in the browser beforehand (session
    fixation) never becomes a logged-in one.
    """
    current = now or utcnow()
    session_id, row = new_session_row(
        user.id, idle=idle, method=method, address=address, now=current
    )
    # Core on the session's connection: the ORM's unit of work cost several times the
    # INSERT itself, and a login needs no WebSession object afterwards.
    session.connection().execute(_START, row)
    active = ActiveSession(
        user.id, user.user_name, user.full_name, row["csrf_token"], row["expires_at"]
    )
    return session_id, active


# The columns of a new session's row, in the order new_session_row gives them.
SESSION_COLUMNS = (
    "id_hash",
    "user_id",
    "csrf_token",
    "login_method",
    "client_address",
    "created_at",
    "expires_at",
)


def new_session_row(
    user_id: int | None, *, idle: timedelta, method: str, address: str, now: datetime
) -> tuple[str, dict[str, Any]]:
    """A new session, not yet stored: (the id for the cookie, its `web_session` row's
    values by column name). A new id on every login (no session fixation); `start_session`
    stores the row, or a login that writes in one statement stores it itself."""
    session_id = new_secret()
    row = {
        "id_hash": _digest(session_id),
        "user_id": user_id,
        "csrf_token": new_secret(),
        "login_method": method,
        "client_address": address[:64],
        "created_at": now,
        "expires_at": now + idle,
    }
    return session_id, row


_START = insert(WebSession).values({name: bindparam(name) for name in SESSION_COLUMNS})


def id_digest(session_id: str | None) -> str | None:
    """What `web_session.id_hash` holds for this session id; None for a value that cannot
    be one of our ids (so it matches no row)."""
    return _digest(session_id) if session_id and is_well_formed(session_id) else None


def _active(row: WebSession, user: User) -> ActiveSession:
    return ActiveSession(user.id, user.user_name, user.full_name, row.csrf_token, row.expires_at)


def find_session(
    session: Session, session_id: str | None, *, now: datetime | None = None
) -> ActiveSession | None:
    """The live session with this id, or None.

    None too when the session has expired, or its user has since been disabled or deleted.
    """
    if not is_well_formed(session_id):
        return None
    assert session_id is not None
    found = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.id_hash == _digest(session_id))
    ).one_or_none()
    if found is None:
        return None
    row, user = found
    if row.expires_at <= (now or utcnow()) or not user.enabled:
        return None
    # find_user applies the user source's rules (a deleted user is not found).
    if find_user(session, user.user_name) is not user:
        return None
    return _active(row, user)


def renew_session(
    session: Session, session_id: str, *, idle: timedelta, now: datetime | None = None
) -> bool:
    """Push the session's end to `idle` from now; False when it is gone.

    Callers renew only once half the idle time has passed, so a busy user does not turn
    every page view into a database write.
    """
    row = session.get(WebSession, _digest(session_id)) if is_well_formed(session_id) else None
    if row is None:
        return False
    row.expires_at = (now or utcnow()) + idle
    session.flush()
    return True


def end_session(session: Session, session_id: str | None) -> bool:
    """Delete the session (log out); True when there was one."""
    if not is_well_formed(session_id):
        return False
    assert session_id is not None
    # Core on the session's connection (no WebSession object is loaded where this runs).
    result = session.connection().execute(_END, {"id_hash": _digest(session_id)})
    return bool(result.rowcount)


_END = delete(WebSession).where(WebSession.id_hash == bindparam("id_hash"))


def purge_expired_sessions(session: Session, *, now: datetime | None = None) -> int:
    """Delete sessions that have expired; returns how many."""
    result = session.execute(
        delete(WebSession)
        .where(WebSession.expires_at < (now or utcnow()))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
