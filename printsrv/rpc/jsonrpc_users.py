"""JSON-RPC provisioning of users and groups: add, update, delete, erase, list, sync, and the
user source's groups.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable
from typing import Any

from printsrv.accounts import service as accounting
from printsrv.people import provisioning
from printsrv.people import sources as usersource
from printsrv.people import sync as usersync
from printsrv.people import users as user_service
from printsrv.people.models import User
from printsrv.rpc.jsonrpc_methods import (
    CallContext,
    Page,
    bad_param,
    basic_result,
    bool_param,
    list_result,
    names_page,
    object_param,
    page_params,
    rpc_method,
    text_param,
)

USER_FIELDS = frozenset(
    {
        "userName",
        "password",
        "fullName",
        "email",
        "emailOther",
        "card",
        "id",
        "pin",
        "uuid",
        "disabled",
        "accounting",
    }
)
REMOVE_FIELDS = frozenset(
    {
        "removeEmail",
        "removeEmailOther",
        "removeCard",
        "removeId",
        "removePassword",
        "removePin",
        "removeUuid",
    }
)


def _user_changes(user: dict[str, Any]) -> user_service.UserChanges:
    def text(field: str) -> str | None:
        value = user.get(field)
        return None if value is None else text_param(f"user.{field}", value, required=False)

    other = user.get("emailOther")
    if other is not None and (
        not isinstance(other, list) or not all(isinstance(a, str) for a in other)
    ):
        raise bad_param("user.emailOther", "must be a list of strings")
    disabled = user.get("disabled")
    return user_service.UserChanges(
        full_name=text("fullName"),
        email=text("email"),
        email_other=other,
        password=text("password"),
        card_number=text("card"),
        id_number=text("id"),
        pin=text("pin"),
        disabled=None if disabled is None else bool_param("user.disabled", disabled),
        uuid=None if user.get("uuid") is None else _uuid(user["uuid"]),
    )


def _removals(user: dict[str, Any]) -> user_service.UserChanges:
    flags = {f: bool_param(f"user.{f}", user[f]) for f in REMOVE_FIELDS if f in user}
    return user_service.UserChanges(
        email="" if flags.get("removeEmail") else None,
        email_other=[] if flags.get("removeEmailOther") else None,
        password="" if flags.get("removePassword") else None,
        card_number="" if flags.get("removeCard") else None,
        id_number="" if flags.get("removeId") else None,
        pin="" if flags.get("removePin") else None,
        uuid="" if flags.get("removeUuid") else None,
    )


def _uuid(value: Any) -> str:
    """A UUID credential in its canonical form (lower case, with dashes)."""
    text = text_param("user.uuid", value)
    try:
        return str(uuidlib.UUID(text))
    except ValueError:
        raise bad_param("user.uuid", "must be a UUID") from None


ACCOUNTING_FIELDS = frozenset(
    {"balance", "keepBalance", "creditLimit", "creditLimitAmount", "comment"}
)
CREDIT_LIMITS = {"NONE": "none", "DEFAULT": "default", "INDIVIDUAL": None}


def _accounting(user: dict[str, Any], context: CallContext) -> provisioning.AccountChanges | None:
    if "accounting" not in user:
        return None
    fields = object_param("user.accounting", user["accounting"], ACCOUNTING_FIELDS)
    keep = fields.get("keepBalance", False)
    balance = None
    if "balance" in fields and not bool_param("user.accounting.keepBalance", keep):
        text = text_param("user.accounting.balance", fields["balance"])
        balance = accounting.parse_amount(text, param="user.accounting.balance")
    limit = fields.get("creditLimit")
    credit_limit = None
    if limit is not None:
        if limit not in CREDIT_LIMITS:
            raise bad_param("user.accounting.creditLimit", "must be NONE, DEFAULT or INDIVIDUAL")
        credit_limit = CREDIT_LIMITS[limit]
        if credit_limit is None:
            amount = text_param(
                "user.accounting.creditLimitAmount", fields.get("creditLimitAmount")
            )
            accounting.parse_amount(amount, param="user.accounting.creditLimitAmount")
            credit_limit = amount
    comment = text_param("user.accounting.comment", fields.get("comment"), required=False)
    admin = f"jsonrpc {context.client.host}"
    return provisioning.AccountChanges(balance, credit_limit, comment or "JSON-RPC", admin)


@rpc_method("addInternalUser")
def add_internal_user(context: CallContext, user: Any) -> dict[str, Any]:
    """Create an internal user, or update it when it exists (a deleted one is restored)."""
    fields = object_param("user", user, USER_FIELDS)
    name = text_param("user.userName", fields.get("userName"))
    changes = _user_changes(fields)
    money = _accounting(fields, context)
    with context.installation.db.transaction() as session:
        created = provisioning.provision_user(
            session, name, changes, account=money, hasher=context.installation.hasher
        )
    return basic_result(0, "user created" if created else "user updated")


@rpc_method("setUserProperties")
def set_user_properties(context: CallContext, user: Any) -> dict[str, Any]:
    """Update an existing user's fields; remove* flags clear them."""
    fields = object_param("user", user, USER_FIELDS | REMOVE_FIELDS)
    name = text_param("user.userName", fields.get("userName"))
    changes, removals = _user_changes(fields), _removals(fields)
    money = _accounting(fields, context)
    with context.installation.db.transaction() as session:
        provisioning.update_user(
            session,
            name,
            changes,
            removals=removals,
            account=money,
            hasher=context.installation.hasher,
        )
    return basic_result()


@rpc_method("deleteUser")
def delete_user(context: CallContext, uniqueName: Any) -> dict[str, Any]:
    """Logically delete a user: no login, no printing; the history stays."""
    name = text_param("uniqueName", uniqueName)
    with context.installation.db.transaction() as session:
        user_service.delete_user(session, name)
    return basic_result()


@rpc_method("eraseUser")
def erase_user(context: CallContext, uniqueName: Any) -> dict[str, Any]:
    """Erase a user's personal data (privacy law); the history's amounts stay.

    The USER account follows the user to the anonymous name, so it no longer names them.
    """
    name = text_param("uniqueName", uniqueName)
    with context.installation.db.transaction() as session:
        user_service.erase_user(session, name)
    return basic_result()


def _user_item(user: User) -> dict[str, Any]:
    return {
        "userName": user.user_name,
        "fullName": user.full_name,
        "email": user.email,
        "admin": False,
        "person": True,
        "disabled": not user.enabled,
        "id": user.id_number or "",
    }


@rpc_method("listUsers")
def list_users(
    context: CallContext,
    startIndex: Any = None,
    itemsPerPage: Any = None,
) -> dict[str, Any]:
    """Users sorted by name, a page at a time."""
    page = page_params(startIndex, itemsPerPage)
    with context.installation.db.read() as session:
        total = user_service.count_users(session)
        found = user_service.list_users(session, offset=page.start, limit=page.size)
        items = [_user_item(u) for u in found]
    return list_result("USER_LIST", items, page, total)


# -- groups --------------------------------------------------------------------------------------


@rpc_method("addUserGroup")
def add_user_group(context: CallContext, uniqueName: Any) -> dict[str, Any]:
    """Add a group; with the LDAP user source, the directory's group with its members."""
    name = text_param("uniqueName", uniqueName)
    if usersource.ldap_in_use(context.snapshot):
        members = usersync.sync_group(context.installation, name, create=True)
        return basic_result(0, f"group added with {members} members")
    with context.installation.db.transaction() as session:
        user_service.add_group(session, name)
    return basic_result()


@rpc_method("syncUserGroup")
def sync_user_group(context: CallContext, uniqueName: Any) -> dict[str, Any]:
    """Re-read one group's members from the user source."""
    name = text_param("uniqueName", uniqueName)
    members = usersync.sync_group(context.installation, name)
    return basic_result(0, f"{members} members")


@rpc_method("syncUsersAndGroups")
def sync_users_and_groups(context: CallContext, deleteUsers: Any = False) -> dict[str, Any]:
    """Schedule a full sync from the user source; systemStatus is UNAVAILABLE while it runs."""
    delete = bool_param("deleteUsers", deleteUsers)
    usersync.start_background_sync(context.installation, delete_users=delete)
    return basic_result(0, "user synchronisation scheduled")


def _source_groups(context: CallContext) -> list[str]:
    if usersource.ldap_in_use(context.snapshot):
        return [g.name for g in usersource.LdapDirectory(context.snapshot).groups()]
    with context.installation.db.read() as session:
        return [g.name for g in user_service.list_groups(session)]


def _whole(type_name: str, names: list[str]) -> dict[str, Any]:
    return names_page(type_name, names, Page(0, max(len(names), 1)))


@rpc_method("listUserSourceGroups")
def list_user_source_groups(context: CallContext) -> dict[str, Any]:
    """Every group in the user source."""
    return _whole("USER_GROUP_LIST", _source_groups(context))


@rpc_method("listUserSourceGroupMembers")
def list_user_source_group_members(
    context: CallContext, groupName: Any, nested: Any = False
) -> dict[str, Any]:
    """The user names in a group of the user source (with nested groups' members if asked)."""
    name = text_param("groupName", groupName)
    deep = bool_param("nested", nested)
    if usersource.ldap_in_use(context.snapshot):
        names = usersource.LdapDirectory(context.snapshot).group_members(name, nested=deep)
    else:
        with context.installation.db.read() as session:
            names = user_service.list_members(session, name)
    return _whole("USER_GROUP_LIST", names)


@rpc_method("listUserSourceGroupNesting")
def list_user_source_group_nesting(context: CallContext, uniqueName: Any) -> dict[str, Any]:
    """A group and the groups inside it, indented two spaces per level."""
    name = text_param("uniqueName", uniqueName)
    if usersource.ldap_in_use(context.snapshot):
        lines = usersource.LdapDirectory(context.snapshot).group_nesting(name)
    else:
        with context.installation.db.read() as session:
            lines = [user_service.get_group(session, name).name]
    return _whole("USER_GROUP_LIST", lines)


@rpc_method("deleteUserGroup")
def delete_user_group(context: CallContext, uniqueName: Any) -> dict[str, Any]:
    """Remove a group (its members stay users)."""
    name = text_param("uniqueName", uniqueName)
    with context.installation.db.transaction() as session:
        user_service.delete_group(session, name)
    return basic_result()


def _names_page(
    context: CallContext,
    lister: Callable[[Any], list[str]],
    start_index: Any,
    items_per_page: Any,
) -> dict[str, Any]:
    """One page of the names `lister(session)` returns, as a USER_GROUP_LIST."""
    page = page_params(start_index, items_per_page)
    with context.installation.db.read() as session:
        names = lister(session)
    return names_page("USER_GROUP_LIST", names, page)


@rpc_method("listUserGroups")
def list_user_groups(
    context: CallContext,
    startIndex: Any = None,
    itemsPerPage: Any = None,
) -> dict[str, Any]:
    """Group names, sorted, a page at a time."""
    return _names_page(
        context, lambda s: [g.name for g in user_service.list_groups(s)], startIndex, itemsPerPage
    )


@rpc_method("listUserGroupMembers")
def list_user_group_members(
    context: CallContext,
    filter: Any,
    startIndex: Any = None,
    itemsPerPage: Any = None,
) -> dict[str, Any]:
    """The user names in a group."""
    group = text_param("filter", filter)
    return _names_page(
        context, lambda s: user_service.list_members(s, group), startIndex, itemsPerPage
    )


@rpc_method("listUserGroupMemberships")
def list_user_group_memberships(
    context: CallContext,
    filter: Any,
    startIndex: Any = None,
    itemsPerPage: Any = None,
) -> dict[str, Any]:
    """The groups a user is in."""
    name = text_param("filter", filter)
    return _names_page(
        context, lambda s: user_service.list_memberships(s, name), startIndex, itemsPerPage
    )


# jsonrpc_registry.py assembles the method table from this tuple.
METHODS = (
    add_internal_user,
    set_user_properties,
    delete_user,
    erase_user,
    list_users,
    add_user_group,
    sync_user_group,
    sync_users_and_groups,
    list_user_source_groups,
    list_user_source_group_members,
    list_user_source_group_nesting,
    delete_user_group,
    list_user_groups,
    list_user_group_members,
    list_user_group_memberships,
)
