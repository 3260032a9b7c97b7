"""Logging in to the admin console (/admin): who may, from where, and its sessions.

Two kinds of people may log in:
- the REST admin, with `api.restful.auth.username` / `api.restful.auth.password`;
- any enabled user in the group `admin.web.group` (void: nobody), with their own password
  from the user source.

Only from addresses in `api.restful.ip-addresses-allowed` (void allows all, as for the REST
admin services): `require_admin_address`. Failed logins count against the same per-name and
per-address counters as the user web app's (`printsrv.people.throttle`), in the database,
so a guesser gains nothing by switching machines or between /user and /admin.

Sessions live in `admin_session` (the cookie holds a random id, the row its SHA-256) and
carry their own CSRF token. A session ends when it is idle for `web-login.session.idle-mins`,
on log-out, and at once when what let its holder in no longer does: the REST admin's name
or password changed, the user disabled, deleted or taken out of the group, or the group
changed.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from printsrv.errors import NotAllowed, NotAuthenticated
from printsrv.operations.installation import Installation
from printsrv.people import sessions, throttle
from printsrv.people.logins import CREDENTIALS_REFUSED, LoginSettings
from printsrv.people.models import AdminSession, User, UserGroup, UserGroupMember
from printsrv.people.users import check_password, find_user
from printsrv.platform.models import ConfigProperty, utcnow
from printsrv.platform.properties import Snapshot
from printsrv.platform.security import address_in, equals_constant_time

__all__ = [
    "REST_ADMIN",
    "ActiveAdmin",
    "AdminLoggedIn",
    "AdminLoginFailed",
    "find_admin_session",
    "log_in_admin",
    "log_out_admin",
    "renew_admin_session",
    "require_admin_address",
]

log = logging.getLogger(__name__)

REST_ADMIN = "REST admin"


class AdminLoginFailed(NotAuthenticated):
    """An admin log-in was refused; the same message whichever check failed."""


@dataclass(frozen=True)
class ActiveAdmin:
    """A live admin session and who holds it.

    principal: the REST admin's name or the group member's user name.
    user_id:   the group member's user id; None for the REST admin.
    csrf_token: the token every form of the console must carry.
    """

    principal: str
    user_id: int | None
    csrf_token: str = field(repr=False)
    expires_at: datetime

    @property
    def role(self) -> str:
        """How this person got in, for the page header and the audit trail."""
        return REST_ADMIN if self.user_id is None else "admin group member"

    @property
    def actor(self) -> str:
        """Who did it, as config changes and ledger rows record it ("admin-web:NAME")."""
        return f"admin-web:{self.principal}"


@dataclass(frozen=True)
class AdminLoggedIn:
    """A successful admin log-in: the session and the id its cookie must carry."""

    session_id: str = field(repr=False)
    admin: ActiveAdmin


def require_admin_address(snapshot: Snapshot, host: str) -> None:
    """Raise NotAllowed unless `host` is in `api.restful.ip-addresses-allowed` (void: all)."""
    allowed = snapshot.cidr_set("api.restful.ip-addresses-allowed")
    if allowed and not address_in(host, allowed):
        raise NotAllowed(f"Client address {host} is not allowed to use the admin console")


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def _is_rest_admin(snapshot: Snapshot, user_name: str, password: str) -> bool:
    configured = snapshot["api.restful.auth.username"]
    # Both compared whatever the first gives, so the time does not tell which one was wrong.
    name_ok = equals_constant_time(user_name, configured)
    password_ok = snapshot["api.restful.auth.password"].matches(password)
    return bool(configured) and name_ok and password_ok


def _in_group(session: Session, user_id: int, group: str) -> bool:
    if not group:
        return False
    found = session.scalar(
        select(UserGroupMember.user_id)
        .join(UserGroup, UserGroup.id == UserGroupMember.group_id)
        .where(UserGroupMember.user_id == user_id, UserGroup.name == group)
    )
    return found is not None


def log_in_admin(
    installation: Installation,
    *,
    user_name: str,
    password: str,
    address: str,
    replaces: str | None = None,
    now: datetime | None = None,
) -> AdminLoggedIn:
    """Log in to the admin console as the REST admin or a member of `admin.web.group`.

    The caller has checked the address (`require_admin_address`). Raises LoginThrottled
    when the name or address has used up its failures, and AdminLoginFailed (message
    CREDENTIALS_REFUSED) for a wrong name or password, or a user outside the group. The
    user's password is checked in a read-only transaction (its hash is slow on purpose).
    """
    current = now or utcnow()
    snapshot = installation.config.snapshot()
    settings = LoginSettings.from_config(snapshot)
    group = snapshot["admin.web.group"]
    principal: str | None = None
    user_id: int | None = None
    with installation.db.read() as session:
        throttle.check(
            session, user_name=user_name, address=address, policy=settings.throttle, now=current
        )
        if _is_rest_admin(snapshot, user_name, password):
            principal = snapshot["api.restful.auth.username"]
        elif group and password:
            user = check_password(session, user_name, password)
            if user is not None and _in_group(session, user.id, group):
                principal, user_id = user.user_name, user.id
    if principal is None:
        log.warning("admin console login refused for %r from %s", user_name, address)
        with installation.db.transaction() as session:
            throttle.record_failure(
                session,
                user_name=user_name,
                address=address,
                policy=settings.throttle,
                now=current,
            )
        raise AdminLoginFailed(CREDENTIALS_REFUSED)
    with installation.db.transaction() as session:
        if replaces and sessions.is_well_formed(replaces):
            session.execute(delete(AdminSession).where(AdminSession.id_hash == _digest(replaces)))
        session.execute(delete(AdminSession).where(AdminSession.expires_at < current))
        throttle.forget_user(session, user_name=principal)
        session_id = sessions.new_secret()
        row = AdminSession(
            id_hash=_digest(session_id),
            principal=principal,
            user_id=user_id,
            csrf_token=sessions.new_secret(),
            client_address=address[:64],
            created_at=current,
            expires_at=current + settings.idle,
        )
        session.add(row)
        session.flush()
        admin = ActiveAdmin(principal, user_id, row.csrf_token, row.expires_at)
    log.info("admin console login: %s (%s) from %s", principal, admin.role, address)
    return AdminLoggedIn(session_id, admin)


def find_admin_session(
    session: Session, session_id: str | None, snapshot: Snapshot, *, now: datetime | None = None
) -> ActiveAdmin | None:
    """The live admin session with this id, or None.

    None too when it has expired, or when its holder may no longer log in: the REST admin's
    name is no longer `api.restful.auth.username` or the password changed since the log-in,
    or the user is disabled, deleted or not in `admin.web.group` any more.
    """
    if not sessions.is_well_formed(session_id):
        return None
    assert session_id is not None
    row = session.get(AdminSession, _digest(session_id))
    if row is None or row.expires_at <= (now or utcnow()):
        return None
    if row.user_id is None:
        configured = snapshot["api.restful.auth.username"]
        if not configured or not equals_constant_time(row.principal, configured):
            return None
        # A new REST admin password ends the sessions opened with the old one (a leaked
        # password is changed to lock its finder out, console included).
        changed = session.scalar(
            select(ConfigProperty.updated_at).where(
                ConfigProperty.name == "api.restful.auth.password"
            )
        )
        if changed is not None and changed > row.created_at:
            return None
    else:
        user = session.get(User, row.user_id)
        if user is None or not user.enabled or find_user(session, user.user_name) is not user:
            return None
        if not _in_group(session, user.id, snapshot["admin.web.group"]):
            return None
    return ActiveAdmin(row.principal, row.user_id, row.csrf_token, row.expires_at)


def renew_admin_session(
    installation: Installation, session_id: str, admin: ActiveAdmin, *, now: datetime | None = None
) -> None:
    """Push the session's end to the idle time from now, once half of it has passed (so a
    busy admin does not turn every page view into a write)."""
    current = now or utcnow()
    idle = LoginSettings.from_config(installation.config.snapshot()).idle
    if admin.expires_at - current >= idle / 2:
        return
    with installation.db.transaction() as session:
        row = session.get(AdminSession, _digest(session_id))
        if row is not None:
            row.expires_at = current + idle


def log_out_admin(installation: Installation, session_id: str | None) -> bool:
    """End the admin session everywhere; True when there was one."""
    if not sessions.is_well_formed(session_id):
        return False
    assert session_id is not None
    with installation.db.transaction() as session:
        result = session.execute(
            delete(AdminSession).where(AdminSession.id_hash == _digest(session_id))
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
