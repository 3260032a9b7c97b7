"""Synchronising users and groups from the LDAP user source into printsrv.

A full sync registers itself as a batch job, so `systemStatus` answers UNAVAILABLE on every
server while it runs. Only groups printsrv already has (added with `addUserGroup`) get their
members refreshed, as in SavaPage: a directory usually holds far more groups than anyone
prints with.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from printsrv.errors import Conflict, InvalidInput
from printsrv.operations.installation import Installation
from printsrv.operations.status import batch_job
from printsrv.people import group_defaults
from printsrv.people import users as user_service
from printsrv.people.models import User, UserGroup, UserGroupMember
from printsrv.people.sources import DirectoryUser, LdapDirectory, ldap_in_use
from printsrv.platform.properties import Snapshot

log = logging.getLogger(__name__)
JOB_KIND = "user-sync"


@dataclass(frozen=True)
class SyncReport:
    """What a sync changed."""

    added: int
    updated: int
    deleted: int
    groups: int

    def __str__(self) -> str:
        return (
            f"{self.added} users added, {self.updated} updated, {self.deleted} deleted, "
            f"{self.groups} groups refreshed"
        )


def _require_ldap(snapshot: Snapshot) -> None:
    if not ldap_in_use(snapshot):
        raise InvalidInput(
            "The user source is internal: set auth.method to ldap to sync", reason="auth.method"
        )


def _upsert(session: Session, person: DirectoryUser) -> str:
    """'added', 'updated' or 'same' for one person from the directory."""
    try:
        found = user_service.find_user(session, person.name, include_deleted=True)
    except InvalidInput:
        return "same"
    if found is None:
        try:
            created = user_service.add_user(
                session, person.name, full_name=person.full_name[:255], email=person.email[:255]
            )
        except InvalidInput:
            log.warning("LDAP user %r skipped: not a usable printsrv user name", person.name)
            return "same"
        created.source = "ldap"
        return "added"
    changed = (found.full_name, found.email, found.deleted_at) != (
        person.full_name[:255],
        person.email[:255],
        None,
    )
    found.full_name, found.email, found.deleted_at = (
        person.full_name[:255],
        person.email[:255],
        None,
    )
    found.source = "ldap"
    return "updated" if changed else "same"


def _set_members(session: Session, group: UserGroup, names: list[str]) -> set[int]:
    """Make the group's members exactly `names`; return the ids of the members it gained."""
    wanted = set(
        session.scalars(select(User.id).where(User.user_name.in_(names), User.deleted_at.is_(None)))
    )
    current = set(
        session.scalars(select(UserGroupMember.user_id).where(UserGroupMember.group_id == group.id))
    )
    for user_id in current - wanted:
        session.delete(session.get(UserGroupMember, (group.id, user_id)))
    for user_id in wanted - current:
        session.add(UserGroupMember(group_id=group.id, user_id=user_id))
    session.flush()
    return wanted - current


def _apply_group_defaults(session: Session, user_ids: set[int]) -> None:
    """Give new members' new accounts their groups' defaults, once every group is refreshed,
    so that the choice among several groups sees all of a user's memberships."""
    for user_id in sorted(user_ids):
        group_defaults.apply_group_defaults(session, session.get_one(User, user_id))


def sync_users_and_groups(
    installation: Installation,
    *,
    delete_users: bool,
    progress: Callable[[int], None] | None = None,
) -> SyncReport:
    """Bring users (and the members of printsrv's groups) in line with the directory.

    With `delete_users`, LDAP users that left the directory are logically deleted; users
    made in printsrv itself are never touched. `progress`, when given, hears 0..100 as the
    users are done (the groups take the last tenth).
    """
    report_progress = progress or (lambda percent: None)
    snapshot = installation.config.snapshot()
    _require_ldap(snapshot)
    directory = LdapDirectory(snapshot)
    with batch_job(installation.db, JOB_KIND):
        people = directory.users()
        counts = {"added": 0, "updated": 0, "same": 0}
        deleted = 0
        with installation.db.transaction() as session:
            for done, person in enumerate(people, 1):
                counts[_upsert(session, person)] += 1
                report_progress(done * 90 // len(people))
            if delete_users:
                present = {p.name for p in people}
                gone = session.scalars(
                    select(User).where(User.source == "ldap", User.deleted_at.is_(None))
                )
                for user in gone:
                    if user.user_name not in present:
                        user.deleted_at = user_service.utcnow()
                        deleted += 1
            refreshed = 0
            joined: set[int] = set()
            by_name = {g.name: g for g in directory.groups()}
            for group in session.scalars(select(UserGroup)):
                if group.name in by_name:
                    members = directory.group_members(group.name, nested=True)
                    joined |= _set_members(session, group, members)
                    refreshed += 1
            _apply_group_defaults(session, joined)
    report_progress(100)
    report = SyncReport(counts["added"], counts["updated"], deleted, refreshed)
    log.info("user sync: %s", report)
    return report


def sync_group(installation: Installation, name: str, *, create: bool = False) -> int:
    """Re-read one group's members from the directory (nested groups included).

    With `create`, the group is added to printsrv first. Returns the number of members.
    """
    snapshot = installation.config.snapshot()
    _require_ldap(snapshot)
    directory = LdapDirectory(snapshot)
    members = directory.group_members(name, nested=True)
    with installation.db.transaction() as session:
        for person in directory.users():
            if person.name in members:
                _upsert(session, person)
        if create:
            group = user_service.add_group(session, name)
        else:
            group = user_service.get_group(session, name)
        _apply_group_defaults(session, _set_members(session, group, members))
    return len(members)


_running = threading.Lock()


def start_background_sync(installation: Installation, *, delete_users: bool) -> None:
    """Run a full sync in a thread of this process; Conflict when one runs here already."""
    _require_ldap(installation.config.snapshot())
    if not _running.acquire(blocking=False):
        raise Conflict("A user sync is already running")

    def run() -> None:
        try:
            sync_users_and_groups(installation, delete_users=delete_users)
        except Exception:
            log.exception("background user sync failed")
        finally:
            _running.release()

    threading.Thread(target=run, name="user-sync", daemon=True).start()
