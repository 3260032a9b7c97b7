"""Logging in to the web app, by one-time token or by password, and logging out.

Each login is one unit of work: rate-limit check, credential check, the token spent, the
session row written, in one transaction, so a failure leaves the token unspent and no
session behind. On PostgreSQL a token login is one statement, which is its own transaction
(`login_statement.py`): each statement and the BEGIN and COMMIT around it were a round trip
that cost the server more than the database's work. A failed attempt is then counted in a
transaction of its own, since the count must stay even though the login did not. Every
failure of one method gives the same message (`LoginFailed`), so a caller cannot tell which
check refused it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from printsrv.errors import NotAuthenticated
from printsrv.operations.installation import Installation
from printsrv.people import login_statement, sessions, throttle, tokens
from printsrv.people.models import User
from printsrv.people.sessions import ActiveSession, SessionHolder
from printsrv.people.throttle import ThrottlePolicy
from printsrv.people.users import check_password
from printsrv.platform.models import utcnow
from printsrv.platform.properties import Snapshot

__all__ = [
    "CREDENTIALS_REFUSED",
    "LINK_REFUSED",
    "LoggedIn",
    "LoginFailed",
    "LoginSettings",
    "log_in_with_password",
    "log_in_with_token",
    "log_out",
]

log = logging.getLogger(__name__)

LINK_REFUSED = (
    "This login link is not valid: it may have expired or been used already. "
    "Please start again from the page that sent you here."
)
CREDENTIALS_REFUSED = "Unknown user name or wrong password."
# Housekeeping (expired sessions, spent tokens, old counters) rides on logins, at most
# this often per process; the tables stay small without a scheduler.
HOUSEKEEPING_INTERVAL = timedelta(minutes=1)


class LoginFailed(NotAuthenticated):
    """A login was refused; the message is the same whichever check failed."""


@dataclass(frozen=True)
class LoginSettings:
    """The config a login runs with, read once from one snapshot."""

    ttp_enabled: bool
    token_expiry_ms: int
    idle: timedelta
    throttle: ThrottlePolicy

    @classmethod
    def from_config(cls, snapshot: Snapshot) -> LoginSettings:
        """The settings the `web-login.*` properties give."""
        return cls(
            ttp_enabled=snapshot["web-login.ttp.enable"],
            token_expiry_ms=snapshot["web-login.ttp.token.expiry-msecs"],
            idle=timedelta(minutes=snapshot["web-login.session.idle-mins"]),
            throttle=ThrottlePolicy.from_config(snapshot),
        )


@dataclass(frozen=True)
class LoggedIn:
    """A successful login: the new session and the id its cookie must carry."""

    session_id: str = field(repr=False)
    session: ActiveSession


class _Every:
    """'Due at most once per interval', per process and thread-safe."""

    def __init__(self, interval: timedelta) -> None:
        self._interval = interval
        self._next: datetime | None = None
        self._lock = threading.Lock()

    def due(self, now: datetime) -> bool:
        with self._lock:
            if self._next is not None and now < self._next:
                return False
            self._next = now + self._interval
            return True


_housekeeping = _Every(HOUSEKEEPING_INTERVAL)


def _open_session(
    session: Session,
    user: SessionHolder,
    *,
    settings: LoginSettings,
    method: str,
    address: str,
    replaces: str | None,
    now: datetime,
    had_failures: bool = True,
) -> LoggedIn:
    # A session the browser still held (another user's, or a stale one) ends here.
    sessions.end_session(session, replaces)
    if had_failures:  # a token login knows; a password login does not, so it always clears
        throttle.forget_user(session, user_name=user.user_name)
    if _housekeeping.due(now):
        _keep_house(session, settings, now)
    session_id, active = sessions.start_session(
        session, user, idle=settings.idle, method=method, address=address, now=now
    )
    log.info("web login: %s by %s from %s", user.user_name, method, address)
    return LoggedIn(session_id, active)


def _keep_house(session: Session, settings: LoginSettings, now: datetime) -> None:
    sessions.purge_expired_sessions(session, now=now)
    tokens.purge_spent_tokens(session, now=now)
    throttle.purge_stale(session, policy=settings.throttle, now=now)


def _count_failure(
    installation: Installation,
    *,
    user_name: str,
    address: str,
    settings: LoginSettings,
    now: datetime,
) -> None:
    with installation.db.transaction() as session:
        throttle.record_failure(
            session, user_name=user_name, address=address, policy=settings.throttle, now=now
        )


def log_in_with_token(
    installation: Installation,
    *,
    auth_user: str,
    auth_token: str,
    address: str,
    replaces: str | None = None,
    now: datetime | None = None,
) -> LoggedIn:
    """Log in with a one-time token from `onetime-auth.createToken`.

    Raises LoginThrottled when the user name or address has too many recent failures, and
    LoginFailed (message LINK_REFUSED) when token logins are disabled or the token is
    invalid, expired, spent, for another user, or its user may not log in.
    """
    current = now or utcnow()
    settings = LoginSettings.from_config(installation.config.snapshot())
    throttle_checked = False
    try:
        if not settings.ttp_enabled:
            raise tokens.TtpLoginDisabled("Token logins are disabled")
        checked = tokens.read_token(
            auth_token, key=installation.token_key, expiry_ms=settings.token_expiry_ms, now=current
        )
        throttle_checked = True  # both ways below check it before anything else
        if installation.db.backend == "postgresql":
            return _log_in_at_once(
                installation, checked, auth_user, address, replaces, settings, current
            )
        with installation.db.transaction() as session:
            # One statement checks the throttle and finds the user (who is then not looked
            # up again); writing takes three more at most: spend, clear, start.
            user = throttle.check_and_find_user(
                session, user_name=auth_user, address=address, policy=settings.throttle, now=current
            )
            live = user if user is not None and not user.deleted else None
            tokens.spend_token(
                session,
                checked,
                user_name=live.user_name if live else None,
                enabled=live is not None and live.enabled,
                now=current,
            )
            assert live is not None  # spend_token refuses a name that finds no live user
            return _open_session(
                session,
                live,
                settings=settings,
                method="token",
                address=address,
                replaces=replaces,
                now=current,
                # No counter was there when the statement above read it: nothing to clear.
                had_failures=live.had_failures,
            )
    except (tokens.TokenError, tokens.TtpLoginDisabled, tokens.UserDisabled) as refusal:
        if not throttle_checked:
            # Refused before the login's statements ran; a throttled caller still learns
            # only that, as if the throttle had been checked first.
            with installation.db.read() as session:
                throttle.check(
                    session,
                    user_name=auth_user,
                    address=address,
                    policy=settings.throttle,
                    now=current,
                )
        log.warning("web token login refused for %r from %s: %s", auth_user, address, refusal)
        _count_failure(
            installation, user_name=auth_user, address=address, settings=settings, now=current
        )
        raise LoginFailed(LINK_REFUSED) from None


def _log_in_at_once(
    installation: Installation,
    checked: tokens.LoginToken,
    auth_user: str,
    address: str,
    replaces: str | None,
    settings: LoginSettings,
    now: datetime,
) -> LoggedIn:
    # PostgreSQL: the whole login is one statement in autocommit mode, one round trip
    # instead of six (login_statement.py says why and how).
    with installation.db.statement() as connection:
        session_id, active = login_statement.log_in(
            connection,
            auth_user=auth_user,
            checked=checked,
            address=address,
            replaces=replaces,
            policy=settings.throttle,
            idle=settings.idle,
            now=now,
        )
    if _housekeeping.due(now):
        with installation.db.transaction() as session:
            _keep_house(session, settings, now)
    log.info("web login: %s by token from %s", active.user_name, address)
    return LoggedIn(session_id, active)


def log_in_with_password(
    installation: Installation,
    *,
    user_name: str,
    password: str,
    address: str,
    replaces: str | None = None,
    now: datetime | None = None,
) -> LoggedIn:
    """Log in with user name (or alias) and password from the user source.

    Raises LoginThrottled, or LoginFailed (message CREDENTIALS_REFUSED) for an unknown user, a
    wrong password, or a user who may not log in. The password is checked in a read-only
    transaction, so its deliberately slow hash never holds SQLite's write lock.
    """
    current = now or utcnow()
    settings = LoginSettings.from_config(installation.config.snapshot())
    with installation.db.read() as session:
        throttle.check(
            session, user_name=user_name, address=address, policy=settings.throttle, now=current
        )
        user = check_password(session, user_name, password) if password else None
        user_id = user.id if user is not None else None
    if user_id is None:
        log.warning("web password login refused for %r from %s", user_name, address)
        _count_failure(
            installation, user_name=user_name, address=address, settings=settings, now=current
        )
        raise LoginFailed(CREDENTIALS_REFUSED)
    with installation.db.transaction() as session:
        fresh = session.get(User, user_id)
        if fresh is None or not fresh.enabled:  # removed or disabled a moment ago
            raise LoginFailed(CREDENTIALS_REFUSED)
        return _open_session(
            session,
            fresh,
            settings=settings,
            method="password",
            address=address,
            replaces=replaces,
            now=current,
        )


def log_out(installation: Installation, session_id: str | None) -> bool:
    """End the session everywhere; True when there was one."""
    with installation.db.transaction() as session:
        return sessions.end_session(session, session_id)
