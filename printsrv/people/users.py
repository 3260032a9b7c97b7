"""The internal user source: users, their aliases, UUID credentials and groups.

User and group names are case-insensitive and stored lower-case. An alias is another name
for a user (a student number, an old login); every user name that comes in from outside
goes through `resolve_user_name` first.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, bindparam, func, literal_column, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

import financial
from financial.accounts import normalise_name as normalise_account_name
from printsrv.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from printsrv.people import group_defaults
from printsrv.people.models import User, UserAlias, UserGroup, UserGroupMember
from printsrv.platform import properties as config
from printsrv.platform.models import utcnow
from printsrv.platform.security import SecretHasher

MAX_NAME_LENGTH = 100
# A PIN is typed on a printer's keypad: digits only, and short enough to remember. Stored
# only as a keyed hash (like a UUID), so even the database cannot give it back.
PIN_MIN_DIGITS = 4
PIN_MAX_DIGITS = 8
# Printable, no white space, and no ':' since Basic credentials are "user:secret".
_NAME_PATTERN = re.compile(r"^[^\s:/\\\x00-\x1f\x7f]+$")

# OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): about 50 ms here, where the
# library's default (64 MiB, 3 passes, 4 lanes) takes 250 ms on a 2-core server and would
# make the login endpoint a denial-of-service lever. check_password rehashes on login
# whenever these parameters change.
_passwords = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Verifying against this when a user does not exist makes "unknown user" take as long as
# "wrong password", so timing does not reveal which user names exist.
_DUMMY_HASH = _passwords.hash("printsrv-timing-equaliser")


def normalise_name(name: str, *, what: str = "User name") -> str:
    """The stored form of a user or group name: stripped and lower-case.

    Raises InvalidInput quoting the name when it is empty, too long or has characters
    that cannot be part of a name (white space, ':', '/', control characters).
    """
    if not isinstance(name, str):
        raise InvalidInput(f"{what} must be text")
    value = name.strip().lower()
    if not value:
        raise InvalidInput(f"{what} is empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if not _NAME_PATTERN.match(value):
        raise InvalidInput(
            f"{what} {name!r} has a character that is not allowed "
            "(white space, ':', '/', '\\' or a control character)"
        )
    return value


# --- users -------------------------------------------------------------------------------------


def add_user(
    session: Session,
    name: str,
    *,
    full_name: str = "",
    email: str = "",
    password: str | None = None,
) -> User:
    """Create a user; Conflict when the name is taken by a user or an alias."""
    user_name = normalise_name(name)
    if session.scalar(select(User.id).where(User.user_name == user_name)) is not None:
        raise Conflict(f"User {user_name!r} already exists")
    if session.get(UserAlias, user_name) is not None:
        raise Conflict(f"{user_name!r} is already an alias of another user")
    _check_text("Full name", full_name, 255)
    _check_text("Email", email, 255)
    user = User(user_name=user_name, full_name=full_name.strip(), email=email.strip())
    if password is not None:
        user.password_hash = new_password_hash(session, password)
    session.add(user)
    session.flush()
    financial.get_or_create_user_account(session, user_name)  # every user has a USER account
    return user


def _check_text(what: str, value: str, max_length: int) -> None:
    if len(value) > max_length:
        raise InvalidInput(f"{what} is longer than {max_length} characters")
    if any(ord(c) < 32 for c in value):
        raise InvalidInput(f"{what} contains control characters")


def resolve_user_name(session: Session, name: str) -> str:
    """Map an incoming user name through the aliases; the result is the canonical name."""
    user_name = normalise_name(name)
    alias = session.get(UserAlias, user_name)
    if alias is not None:
        return alias.user.user_name
    return user_name


def find_user(session: Session, name: str, *, include_deleted: bool = False) -> User | None:
    """The user with this name or alias, or None; deleted users only when asked for."""
    try:
        user_name = normalise_name(name)
    except InvalidInput:
        return None
    query = _FIND_USER if include_deleted else _FIND_LIVE_USER
    return session.scalar(query, {"name": user_name})


def resolved_user_id(name: Any) -> Any:
    """A SQL expression for the id of the user `name` (a normalised name, or a bound
    parameter holding one) resolves to: the alias's user, else the user of that name.

    What resolve_user_name does, inside the query that reads the user: one round trip
    (every REST user call, transfer and token login comes through here).
    """
    return func.coalesce(
        select(UserAlias.user_id).where(UserAlias.alias == name).scalar_subquery(),
        select(User.id).where(User.user_name == name).scalar_subquery(),
    )


# Built once, with the name as a bound parameter.
_FIND_USER = select(User).where(User.id == resolved_user_id(bindparam("name")))
_FIND_LIVE_USER = _FIND_USER.where(User.deleted_at.is_(None))


@dataclass(frozen=True, slots=True)
class UserRef:
    """A user as a credential check or a transfer needs them, without the rest of the row.

    A plain value: reading a few columns instead of building a whole `User` is most of
    what a user's REST call costs the server.
    """

    id: int
    user_name: str
    enabled: bool
    uuid_hash: str | None = field(repr=False)


def find_user_refs(on: Session | Connection, *names: str) -> list[UserRef | None]:
    """The users with these names or aliases, in one query; None where there is no such
    (live) user. Names are resolved as `find_user` does.

    `on` is a session, or a bare connection (`Database.statement`) for a call that is
    only this read."""
    params: dict[str, Any] = {}
    for position, name in enumerate(names):
        try:
            params[f"name_{position}"] = normalise_name(name)
        except InvalidInput:
            params[f"name_{position}"] = None  # matches no user and no alias
    found: list[UserRef | None] = [None] * len(names)
    if isinstance(on, Session):
        # A Core statement on the session's connection, cheaper than through the ORM; the
        # flush stands in for the ORM's autoflush, so changes this session made are seen.
        on.flush()
        on = on.connection()
    rows = on.execute(_find_user_refs(len(names)), params)
    for position, *columns in rows:
        found[position] = UserRef(*columns)
    return found


@cache
def _find_user_refs(count: int) -> Any:
    # One SELECT per name, glued with UNION ALL: one round trip, and each part is
    # _FIND_USER's resolution (an alias first, then a user name).
    parts = [
        select(
            literal_column(str(position)).label("position"),
            User.id,
            User.user_name,
            User.enabled,
            User.uuid_hash,
        ).where(
            User.id == resolved_user_id(bindparam(f"name_{position}")), User.deleted_at.is_(None)
        )
        for position in range(count)
    ]
    return union_all(*parts) if count > 1 else parts[0]


def get_user(session: Session, name: str, *, include_deleted: bool = False) -> User:
    """The user with this name or alias; NotFound otherwise."""
    user = find_user(session, name, include_deleted=include_deleted)
    if user is None:
        raise NotFound(f"User {name.strip().lower()!r} does not exist")
    return user


def list_users(session: Session, *, offset: int = 0, limit: int | None = None) -> list[User]:
    """Users that are not deleted, sorted by name."""
    query = (
        select(User)
        .where(User.deleted_at.is_(None))
        .order_by(User.user_name)
        .offset(offset)
        .limit(limit)
    )
    return list(session.scalars(query.options(selectinload(User.aliases))))


def count_users(session: Session) -> int:
    """How many users there are (deleted ones not counted)."""
    query = select(func.count()).select_from(User).where(User.deleted_at.is_(None))
    return session.scalar(query) or 0


@dataclass(frozen=True)
class UserChanges:
    """Fields to change on a user; None leaves a field as it is, "" clears a text field.

    `uuid` is a UUID credential in its canonical form (the adapter parses it): it replaces
    the user's UUID, as `issue_uuid` does, but with a value the caller chose.
    """

    full_name: str | None = None
    email: str | None = None
    email_other: list[str] | None = None
    password: str | None = None
    card_number: str | None = None
    id_number: str | None = None
    pin: str | None = None
    disabled: bool | None = None
    uuid: str | None = None


def update_user(
    session: Session, user: User, changes: UserChanges, *, hasher: SecretHasher
) -> User:
    """Apply `changes` to `user`; Conflict when a card or ID number belongs to someone else."""
    if changes.full_name is not None:
        _check_text("Full name", changes.full_name, 255)
        user.full_name = changes.full_name.strip()
    if changes.email is not None:
        _check_text("Email", changes.email, 255)
        user.email = changes.email.strip()
    if changes.email_other is not None:
        for address in changes.email_other:
            _check_text("Email", address, 255)
        user.email_other = "\n".join(a.strip() for a in changes.email_other if a.strip())
    if changes.password is not None:
        user.password_hash = (
            new_password_hash(session, changes.password) if changes.password else None
        )
    if changes.card_number is not None:
        user.card_number = _unique_number(session, user, "card_number", changes.card_number)
    if changes.id_number is not None:
        user.id_number = _unique_number(session, user, "id_number", changes.id_number)
    if changes.pin is not None:
        if changes.pin and not _valid_pin(changes.pin):
            raise InvalidInput(f"PIN must be {PIN_MIN_DIGITS} to {PIN_MAX_DIGITS} digits")
        user.pin_hash = hasher.digest(changes.pin) if changes.pin else None
    if changes.disabled is not None:
        user.enabled = not changes.disabled
    if changes.uuid is not None:
        _store_uuid(user, changes.uuid or None, hasher=hasher)
    try:
        session.flush()
    except IntegrityError:
        # Two requests gave one number to two users at the same moment: both passed the
        # check above, and the unique index refused the second. Still without the owner.
        if changes.card_number is None and changes.id_number is None:
            raise
        raise Conflict("Card or ID number is taken by another user") from None
    return user


def _valid_pin(pin: str) -> bool:
    # isdigit() alone accepts other scripts' digits ("١٢٣٤"), which no keypad can type.
    return pin.isascii() and pin.isdigit() and PIN_MIN_DIGITS <= len(pin) <= PIN_MAX_DIGITS


def set_user_fields(
    session: Session,
    name: str,
    *,
    full_name: str | None = None,
    email: str | None = None,
    card_number: str | None = None,
    pin: str | None = None,
    hasher: SecretHasher,
) -> User:
    """Change a live user's full name, email, card number or PIN (None: leave as it is;
    "" clears it). The same rules as JSON-RPC setUserProperties: a card number already
    held by someone else is a Conflict that does not say whose it is."""
    user = get_user(session, name)
    changes = UserChanges(full_name=full_name, email=email, card_number=card_number, pin=pin)
    return update_user(session, user, changes, hasher=hasher)


def _unique_number(session: Session, user: User, column: str, value: str) -> str | None:
    what = "Card number" if column == "card_number" else "ID number"
    value = value.strip()
    if not value:
        return None
    _check_text(what, value, 100)
    owner = session.scalar(select(User).where(getattr(User, column) == value))
    if owner is not None and owner.id != user.id:
        # Naming the owner would tell whoever holds a card whose it is.
        raise Conflict(f"{what} {value!r} is taken by another user")
    return value


def delete_user(session: Session, name: str) -> User:
    """Logically delete a user: no login, no printing, no listing; the history stays."""
    user = get_user(session, name)
    user.deleted_at = utcnow()
    session.flush()
    return user


def restore_user(session: Session, user: User) -> User:
    """Undo a logical delete."""
    user.deleted_at = None
    session.flush()
    return user


def erase_user(session: Session, name: str) -> str:
    """Erase a user's personal data on request (privacy law), keeping the history's totals.

    The user is renamed to an anonymous name, loses every personal field, credential,
    alias and membership, and is logically deleted; their USER account follows them to the
    anonymous name, so the ledger's amounts stay and no longer name them. Works on a user
    deleted before. Returns the anonymous name.
    """
    user = find_user(session, name, include_deleted=True)
    if user is None:
        raise NotFound(f"User {name.strip().lower()!r} does not exist")
    anonymous = f"erased-{user.id}"
    move_user_account(session, user.user_name, anonymous)
    user.user_name = anonymous
    user.full_name = ""
    user.email = ""
    user.email_other = ""
    user.password_hash = None
    user.uuid_hash = None
    user.uuid_created_at = None
    user.card_number = None
    user.id_number = None
    user.pin_hash = None
    user.enabled = False
    user.deleted_at = user.deleted_at or utcnow()
    user.aliases.clear()
    user.groups.clear()
    session.flush()
    return anonymous


def move_user_account(session: Session, old_name: str, new_name: str) -> None:
    """Rename a user's USER account (kept here beside `add_user`, which makes it).

    The ledger rows stay with the account; nothing happens when the user had none.
    """
    try:
        account = financial.get_account(session, financial.AccountType.USER, old_name)
    except financial.AccountNotFound:
        return
    account.name = normalise_account_name(financial.AccountType.USER, new_name)
    session.flush()


def set_enabled(session: Session, name: str, enabled: bool) -> User:
    """Enable or disable a user; a disabled user can neither log in nor print."""
    user = get_user(session, name)
    user.enabled = enabled
    session.flush()
    return user


# --- passwords ---------------------------------------------------------------------------------


def hash_password(password: str, *, min_length: int = 1) -> str:
    """An argon2 hash of `password`; InvalidInput for an empty, short or absurd password."""
    if not password:
        raise InvalidInput("Password is empty")
    if len(password) < min_length:
        raise InvalidInput(
            f"Password is shorter than {min_length} characters (user.password.min-length)"
        )
    if len(password) > 1024:
        raise InvalidInput("Password is longer than 1024 characters")
    return _passwords.hash(password)


def new_password_hash(session: Session, password: str) -> str:
    """The hash of a password being set for a user, by whichever path (CLI, JSON-RPC, web).

    Every new password passes here, so `user.password.min-length` holds everywhere alike;
    it is read in the caller's transaction. Logins (check_password) never apply it: a
    raised minimum must not lock out people whose older password is shorter.
    """
    minimum = config.read_property(session, "user.password.min-length")
    return hash_password(password, min_length=minimum)


def set_password(session: Session, name: str, password: str) -> User:
    """Set a user's password."""
    user = get_user(session, name)
    user.password_hash = new_password_hash(session, password)
    session.flush()
    return user


def check_password(session: Session, name: str, password: str) -> User | None:
    """The enabled user whose password this is, or None; same cost whether or not they exist."""
    user = find_user(session, name)
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    try:
        _passwords.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.password_hash or not user.enabled:
        return None
    if _passwords.check_needs_rehash(stored):
        user.password_hash = _passwords.hash(password)
    return user


# --- UUID credentials for the REST user services ----------------------------------------------


def issue_uuid(session: Session, name: str, *, hasher: SecretHasher) -> str:
    """Give the user a new UUID credential and return it; only its keyed hash is stored.

    The old UUID stops working at once. The value is returned this one time.
    """
    user = get_user(session, name)
    credential = str(uuidlib.uuid4())
    _store_uuid(user, credential, hasher=hasher)
    session.flush()
    return credential


def _store_uuid(user: User, credential: str | None, *, hasher: SecretHasher) -> None:
    # Only the keyed hash is kept, so the database cannot give a credential back; None
    # takes the user's UUID away.
    user.uuid_hash = hasher.digest(credential) if credential is not None else None
    user.uuid_created_at = utcnow() if credential is not None else None


def authenticate_uuid(
    session: Session, name: str, credential: str, *, hasher: SecretHasher
) -> User:
    """The enabled user whose UUID credential this is; NotAuthenticated otherwise.

    One message for every failure, so a caller cannot probe which user names exist.
    """
    user = find_user(session, name)
    check_uuid(user, credential, hasher=hasher)
    assert user is not None  # check_uuid refuses a missing user
    return user


def authenticate_refs(
    session: Session, name: str, credential: str, *others: str, hasher: SecretHasher
) -> tuple[UserRef, list[UserRef | None]]:
    """The enabled user whose name (or alias) and UUID credential these are, and the users
    named `others` (None where there is none), all in one query.

    NotAuthenticated as `authenticate_uuid`. One round trip where a service needs the caller
    and someone else, such as a transfer's recipient.
    """
    caller, *found = find_user_refs(session, name, *others)
    check_uuid(caller, credential, hasher=hasher)
    assert caller is not None  # check_uuid refuses a missing user
    return caller, found


def check_uuid(user: User | UserRef | None, credential: str, *, hasher: SecretHasher) -> None:
    """Raise NotAuthenticated unless `user` is enabled and `credential` is their UUID.

    The digests are compared in constant time, and every failure has one message, so a
    caller cannot probe which user names exist.
    """
    candidate = credential.strip().lower()
    digest = user.uuid_hash if user is not None else None
    if not hasher.matches(candidate, digest) or user is None or not user.enabled:
        raise NotAuthenticated("Unknown user or wrong UUID")


# --- aliases -----------------------------------------------------------------------------------


def add_alias(session: Session, alias: str, name: str) -> UserAlias:
    """Make `alias` another name for user `name`; Conflict if it is a user or alias already."""
    alias_name = normalise_name(alias, what="Alias")
    user = get_user(session, name)
    if session.scalar(select(User.id).where(User.user_name == alias_name)) is not None:
        raise Conflict(f"{alias_name!r} is a user name; it cannot also be an alias")
    existing = session.get(UserAlias, alias_name)
    if existing is not None:
        raise Conflict(f"Alias {alias_name!r} already maps to user {existing.user.user_name!r}")
    row = UserAlias(alias=alias_name, user=user)
    session.add(row)
    session.flush()
    return row


def remove_alias(session: Session, alias: str) -> str:
    """Stop `alias` meaning its user; return that user's name. NotFound for no such alias."""
    alias_name = normalise_name(alias, what="Alias")
    row = session.get(UserAlias, alias_name)
    if row is None:
        raise NotFound(f"Alias {alias_name!r} does not exist")
    user_name = row.user.user_name
    session.delete(row)
    session.flush()
    return user_name


# --- groups ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSummary:
    """A group's name and how many members it has."""

    name: str
    members: int


def add_group(session: Session, name: str) -> UserGroup:
    """Create a group; Conflict when it exists."""
    group_name = normalise_name(name, what="Group name")
    if session.scalar(select(UserGroup.id).where(UserGroup.name == group_name)) is not None:
        raise Conflict(f"Group {group_name!r} already exists")
    group = UserGroup(name=group_name)
    session.add(group)
    session.flush()
    _ensure_group_account(session, group_name)
    return group


def _ensure_group_account(session: Session, group_name: str) -> None:
    """Every group has a GROUP account; one left by a deleted group of that name is kept."""
    try:
        financial.get_account(session, financial.AccountType.GROUP, group_name)
    except financial.AccountNotFound:
        financial.create_account(session, account_type=financial.AccountType.GROUP, name=group_name)


def get_group(session: Session, name: str) -> UserGroup:
    """The group called `name`; NotFound otherwise."""
    group_name = normalise_name(name, what="Group name")
    group = session.scalar(select(UserGroup).where(UserGroup.name == group_name))
    if group is None:
        raise NotFound(f"Group {group_name!r} does not exist")
    return group


def change_group_defaults(
    session: Session, name: str, defaults: group_defaults.GroupDefaults
) -> UserGroup:
    """Store `defaults` on the group called `name` (see `group_defaults`).

    Bad defaults are refused (InvalidInput) before the group is looked up (NotFound), so a
    malformed request is refused the same whether or not the group exists.
    """
    group_defaults.check_defaults(defaults)
    return group_defaults.set_group_defaults(session, get_group(session, name), defaults)


def add_member(session: Session, group_name: str, user_name: str) -> None:
    """Add a user to a group; Conflict when they are a member already."""
    group = get_group(session, group_name)
    user = get_user(session, user_name)
    if session.get(UserGroupMember, (group.id, user.id)) is not None:
        raise Conflict(f"User {user.user_name!r} is already a member of {group.name!r}")
    session.add(UserGroupMember(group_id=group.id, user_id=user.id))
    session.flush()
    group_defaults.apply_group_defaults(session, user)  # a new account gets the group's defaults


def remove_member(session: Session, group_name: str, user_name: str) -> None:
    """Take a user (name or alias) out of a group; NotFound when they are not in it.

    Their accounts are untouched: group defaults applied once stay applied.
    """
    group = get_group(session, group_name)
    user = get_user(session, user_name)
    membership = session.get(UserGroupMember, (group.id, user.id))
    if membership is None:
        raise NotFound(f"User {user.user_name!r} is not a member of group {group.name!r}")
    session.delete(membership)
    session.flush()


def list_groups(session: Session) -> list[GroupSummary]:
    """Every group with its member count, sorted by name."""
    query = (
        select(UserGroup.name, func.count(UserGroupMember.user_id))
        .outerjoin(UserGroupMember, UserGroupMember.group_id == UserGroup.id)
        .group_by(UserGroup.name)
        .order_by(UserGroup.name)
    )
    return [GroupSummary(name, count) for name, count in session.execute(query)]


def list_members(session: Session, group_name: str) -> list[str]:
    """The user names in a group, sorted."""
    group = get_group(session, group_name)
    query = (
        select(User.user_name)
        .join(UserGroupMember, UserGroupMember.user_id == User.id)
        .where(UserGroupMember.group_id == group.id)
        .order_by(User.user_name)
    )
    return list(session.scalars(query))


def delete_group(session: Session, name: str) -> None:
    """Remove a group and its memberships (the users stay)."""
    group = get_group(session, name)
    session.delete(group)
    session.flush()


def list_memberships(session: Session, user_name: str) -> list[str]:
    """The names of the groups a user is in, sorted."""
    user = get_user(session, user_name)
    query = (
        select(UserGroup.name)
        .join(UserGroupMember, UserGroupMember.group_id == UserGroup.id)
        .where(UserGroupMember.user_id == user.id)
        .order_by(UserGroup.name)
    )
    return list(session.scalars(query))
