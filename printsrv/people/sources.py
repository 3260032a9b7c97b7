"""User sources: where people and their passwords live.

`internal` is printsrv's own user table (printsrv/people/users.py). `ldap` is an LDAP or Active
Directory server, read with ldap3: users and groups are found with the `ldap.schema.*`
filters and attributes, passwords are checked by binding as the user. printsrv's aliases
apply first, whichever source answers.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn
from sqlalchemy.orm import Session

from printsrv.errors import InvalidInput, NotFound, ServiceUnavailable
from printsrv.people import users as user_service
from printsrv.platform.properties import Snapshot

PAGE_SIZE = 500


@dataclass(frozen=True)
class DirectoryUser:
    """A person as the directory describes them."""

    name: str
    full_name: str
    email: str
    dn: str


@dataclass(frozen=True)
class DirectoryGroup:
    """A group and the DNs of its direct members (people or other groups)."""

    name: str
    dn: str
    member_dns: tuple[str, ...] = field(default=())


def _first(entry: dict[str, object], attribute: str) -> str:
    value = entry.get(attribute)
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value) if value is not None else ""


def _close(connection: ldap3.Connection) -> None:
    # ldap3 leaves the socket of a failed connect or handshake open.
    with contextlib.suppress(Exception):
        connection.strategy.close()
    if connection.socket is not None:
        with contextlib.suppress(OSError):
            connection.socket.close()


def _dn_key(dn: str) -> str:
    # Compare DNs without case or spaces around separators, as LDAP does for these schemas.
    return ",".join(part.strip() for part in dn.lower().split(","))


class LdapDirectory:
    """One LDAP / Active Directory server, as the `ldap.*` config properties describe it."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.host = snapshot["ldap.host"]
        self.port = snapshot["ldap.port"]
        self.base_dn = snapshot["ldap.basedn"]
        self.admin_dn = snapshot["ldap.admin.dn"]
        self._admin_password = snapshot["ldap.admin.password"]
        self.use_ssl = snapshot["ldap.ssl"]
        self.starttls = snapshot["ldap.starttls"]
        self.timeout = snapshot["ldap.timeout-secs"]
        self.user_filter = snapshot["ldap.schema.user-filter"]
        self.user_name_field = snapshot["ldap.schema.user-name-field"]
        self.full_name_field = snapshot["ldap.schema.user-full-name-field"]
        self.email_field = snapshot["ldap.schema.user-email-field"]
        self.group_filter = snapshot["ldap.schema.group-filter"]
        self.group_name_field = snapshot["ldap.schema.group-name-field"]
        self.member_field = snapshot["ldap.schema.group-member-field"]
        if not self.host or not self.base_dn:
            raise ServiceUnavailable(
                "The LDAP user source is not configured: set ldap.host and ldap.basedn",
                reason="ldap.host",
            )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _unavailable(self, error: Exception) -> ServiceUnavailable:
        # The contract's shape: message "host:port [what went wrong]", reason "host:port".
        return ServiceUnavailable(f"{self.address} [{error}]", reason=self.address)

    def _connect(self, user: str | None, password: str | None) -> ldap3.Connection | None:
        """An open connection bound as `user`; None when the directory refuses the bind."""
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED) if (self.use_ssl or self.starttls) else None
        server = ldap3.Server(
            self.host,
            port=self.port,
            use_ssl=self.use_ssl,
            tls=tls,
            connect_timeout=self.timeout,
            get_info=ldap3.NONE,
        )
        connection = ldap3.Connection(
            server,
            user=user,
            password=password,
            receive_timeout=self.timeout,
            auto_bind=ldap3.AUTO_BIND_NONE,
            raise_exceptions=False,
            read_only=True,
        )
        try:
            connection.open()
            if self.starttls and not connection.start_tls():
                raise ldap_errors.LDAPStartTLSError("STARTTLS refused")
            if connection.bind():
                return connection
            connection.unbind()
            return None
        except ldap_errors.LDAPException as error:
            _close(connection)
            raise self._unavailable(error) from error

    def _admin(self) -> ldap3.Connection:
        password = self._admin_password.reveal() or None
        connection = self._connect(self.admin_dn or None, password if self.admin_dn else None)
        if connection is None:
            raise ServiceUnavailable(
                f"{self.address} [the bind as ldap.admin.dn was refused]", reason=self.address
            )
        return connection

    def _search(
        self, connection: ldap3.Connection, search_filter: str, attributes: list[str]
    ) -> Iterator[tuple[str, dict[str, object]]]:
        try:
            for entry in connection.extend.standard.paged_search(
                self.base_dn,
                search_filter,
                ldap3.SUBTREE,
                attributes=attributes,
                paged_size=PAGE_SIZE,
                generator=True,
            ):
                if entry.get("type") == "searchResEntry":
                    yield entry["dn"], entry["attributes"]
        except ldap_errors.LDAPException as error:
            raise self._unavailable(error) from error

    # -- people --------------------------------------------------------------------------------

    def _user_filter(self, name: str | None = None) -> str:
        if name is None:
            return self.user_filter
        return f"(&{self.user_filter}({self.user_name_field}={escape_filter_chars(name)}))"

    def _user(self, dn: str, attributes: dict[str, object]) -> DirectoryUser:
        return DirectoryUser(
            name=_first(attributes, self.user_name_field).strip().lower(),
            full_name=_first(attributes, self.full_name_field),
            email=_first(attributes, self.email_field),
            dn=dn,
        )

    def users(self) -> list[DirectoryUser]:
        """Every person the user filter finds, with a usable name."""
        connection = self._admin()
        try:
            fields = [self.user_name_field, self.full_name_field, self.email_field]
            found = [
                self._user(dn, a) for dn, a in self._search(connection, self.user_filter, fields)
            ]
        finally:
            connection.unbind()
        return [u for u in found if u.name]

    def find_user(self, name: str) -> DirectoryUser | None:
        """The person called `name`, or None."""
        connection = self._admin()
        try:
            fields = [self.user_name_field, self.full_name_field, self.email_field]
            found = [
                self._user(dn, a)
                for dn, a in self._search(connection, self._user_filter(name), fields)
            ]
        finally:
            connection.unbind()
        return found[0] if len(found) == 1 else None

    def authenticate(self, name: str, password: str) -> bool:
        """Whether `password` is the person's, by binding as them.

        An empty password is refused before asking: LDAP treats a bind with one as an
        anonymous bind, which succeeds. An unknown name still costs one bind, so timing
        does not tell which names exist.
        """
        if not password:
            return False
        user = self.find_user(name)
        dn = user.dn if user else f"{self.user_name_field}={escape_rdn(name)},{self.base_dn}"
        connection = self._connect(dn, password)
        if connection is None:
            return False
        connection.unbind()
        return user is not None

    # -- groups --------------------------------------------------------------------------------

    def groups(self) -> list[DirectoryGroup]:
        """Every group the group filter finds, sorted by name."""
        connection = self._admin()
        try:
            found = [
                DirectoryGroup(
                    name=_first(a, self.group_name_field).strip().lower(),
                    dn=dn,
                    member_dns=tuple(str(m) for m in (a.get(self.member_field) or [])),
                )
                for dn, a in self._search(
                    connection, self.group_filter, [self.group_name_field, self.member_field]
                )
            ]
        finally:
            connection.unbind()
        return sorted((g for g in found if g.name), key=lambda g: g.name)

    def group(self, name: str) -> DirectoryGroup:
        """The group called `name`; NotFound otherwise."""
        wanted = name.strip().lower()
        for group in self.groups():
            if group.name == wanted:
                return group
        raise NotFound(f"Group {wanted!r} does not exist in the LDAP directory", reason=wanted)

    def group_members(self, name: str, *, nested: bool) -> list[str]:
        """User names in a group; with `nested`, also those of the groups inside it."""
        groups = {_dn_key(g.dn): g for g in self.groups()}
        people = {_dn_key(u.dn): u.name for u in self.users()}
        root = self.group(name)
        members: set[str] = set()
        seen: set[str] = set()

        def walk(group: DirectoryGroup) -> None:
            seen.add(_dn_key(group.dn))
            for dn in group.member_dns:
                key = _dn_key(dn)
                if key in people:
                    members.add(people[key])
                elif nested and key in groups and key not in seen:
                    walk(groups[key])

        walk(root)
        return sorted(members)

    def group_nesting(self, name: str) -> list[str]:
        """The group and the groups inside it, each indented by two spaces per level."""
        groups = {_dn_key(g.dn): g for g in self.groups()}
        lines: list[str] = []

        def walk(group: DirectoryGroup, depth: int, path: frozenset[str]) -> None:
            lines.append("  " * depth + group.name)
            for dn in group.member_dns:
                key = _dn_key(dn)
                if key in groups and key not in path:  # cycles are cut, not followed
                    walk(groups[key], depth + 1, path | {key})

        root = self.group(name)
        walk(root, 0, frozenset({_dn_key(root.dn)}))
        return lines


def ldap_in_use(snapshot: Snapshot) -> bool:
    """Whether the configured user source is LDAP."""
    return snapshot["auth.method"] == "ldap"


def authenticate(session: Session, snapshot: Snapshot, name: str, password: str) -> bool:
    """Whether name and password are valid in the configured user source (aliases apply).

    Raises ServiceUnavailable (naming host:port) when the LDAP server cannot be asked.
    """
    if not ldap_in_use(snapshot):
        return user_service.check_password(session, name, password) is not None
    try:
        canonical = user_service.resolve_user_name(session, name)
    except InvalidInput:
        return False
    local = user_service.find_user(session, canonical, include_deleted=True)
    if local is not None and (local.deleted_at is not None or not local.enabled):
        return False  # printsrv's own word on a user wins: deleted or disabled stays out
    return LdapDirectory(snapshot).authenticate(canonical, password)
