"""The JSON-RPC methods, SavaPage's names and shapes (shared/jsonrpc.md).

Each method checks its parameters, makes one service call in one transaction, and wraps
the answer in its `@type` data object. Service errors become JSON-RPC error objects
through one table, chosen along the exception's MRO.
"""

from __future__ import annotations

import math
import uuid as uuidlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import wraps
from typing import Any

from jsonrpcserver import Success
from jsonrpcserver.exceptions import JsonRpcError

from printsrv import accounting, errors, group_defaults, usersource, usersync
from printsrv import config as config_service
from printsrv import users as user_service
from printsrv.config import Snapshot
from printsrv.installation import Installation
from printsrv.models import User
from printsrv.printing import access as printer_access
from printsrv.printing.errors import PrintingError
from printsrv.security import Client

# -- error table ---------------------------------------------------------------------------------

ACCESS_DENIED = (-32600, "Access denied.")
ERROR_CODES: dict[type[errors.PrintsrvError], tuple[int, str]] = {
    errors.PrintsrvError: (-32603, "Internal error"),
    errors.InvalidInput: (-32602, "Invalid params"),
    errors.ConfigError: (-32602, "Invalid params"),
    errors.NotAuthenticated: ACCESS_DENIED,
    errors.NotAllowed: (-32003, "Not allowed"),
    errors.NotFound: (-32001, "Not found"),
    errors.Conflict: (-32002, "Conflict"),
    errors.PayloadTooLarge: (-32600, "Invalid Request"),
    errors.ServiceUnavailable: (-32603, "Service unavailable"),
    errors.DatabaseUnavailable: (-32603, "Service unavailable"),
    PrintingError: (-32603, "Printing failed"),  # CUPS refused or failed the job
}


def error_code(error: errors.PrintsrvError) -> tuple[int, str]:
    """(code, short message) for a service error, by the most specific class in the table."""
    for cls in type(error).__mro__:
        if cls in ERROR_CODES:
            return ERROR_CODES[cls]
    return ERROR_CODES[errors.PrintsrvError]


def basic_reason(reason: str | None) -> dict[str, str]:
    return {"@type": "BASIC", "reason": reason or "unknown"}


# -- result shapes -------------------------------------------------------------------------------


def enum_result(value: str) -> dict[str, Any]:
    return {"data": {"@type": "enum", "value": value}}


def boolean_result(value: bool) -> dict[str, Any]:
    return {"data": {"@type": "boolean", "value": value}}


def string_result(value: str) -> dict[str, Any]:
    return {"data": {"@type": "string", "value": value}}


def basic_result(code: int = 0, message: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"@type": "BASIC", "code": code}
    if message is not None:
        data["message"] = message
    return {"data": data}


@dataclass(frozen=True)
class Page:
    """A slice of a sorted list: 0-based start and page size."""

    start: int
    size: int

    def fields(self, shown: int, total: int) -> dict[str, int]:
        return {
            "currentItemCount": shown,
            "itemsPerPage": self.size,
            "startIndex": self.start,
            "totalItems": total,
            "pageIndex": self.start // self.size,
            "totalPages": math.ceil(total / self.size) if total else 0,
        }


def list_result(type_name: str, items: list[Any], page: Page, total: int) -> dict[str, Any]:
    return {"data": {"@type": type_name, "items": items, **page.fields(len(items), total)}}


def names_page(type_name: str, names: Sequence[str], page: Page) -> dict[str, Any]:
    return list_result(
        type_name, list(names[page.start : page.start + page.size]), page, len(names)
    )


# -- parameters ----------------------------------------------------------------------------------


def _bad(name: str, what: str) -> errors.InvalidInput:
    return errors.InvalidInput(f"Parameter {name!r} {what}", reason=name)


def text_param(name: str, value: Any, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _bad(name, "must be a non-empty string" if required else "must be a string")
    return value


def bool_param(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(name, "must be true or false")
    return value


def int_param(name: str, value: Any, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise _bad(name, f"must be a whole number from {minimum} to {maximum}")
    return value


def page_params(start_index: Any, items_per_page: Any) -> Page:
    return Page(
        int_param("startIndex", 0 if start_index is None else start_index, 0, 10**9),
        int_param("itemsPerPage", 100 if items_per_page is None else items_per_page, 1, 1000),
    )


def object_param(name: str, value: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(name, "must be an object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise errors.InvalidInput(
            f"Parameter {name!r} has unknown field {unknown[0]!r}", reason=f"{name}.{unknown[0]}"
        )
    return value


# -- registry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallContext:
    """What every method gets besides its parameters."""

    installation: Installation
    snapshot: Snapshot
    client: Client


METHODS: dict[str, Callable[..., Any]] = {}
# Methods without parameters, cheap enough to answer on the event loop (no database, no
# blocking call), called straight from the adapter: a monitoring system polls them.
INLINE_METHODS: dict[str, Callable[[CallContext], dict[str, Any]]] = {}


def rpc_method(name: str, *, admin: bool = True) -> Callable[[Callable[..., Any]], Any]:
    """Register a method; admin methods answer only when api.jsonrpc.admin.enable is Y.

    The wrapper keeps the method's signature (functools.wraps), which jsonrpcserver uses
    to refuse missing or unexpected parameters with -32602.
    """

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(func)
        def method(context: CallContext, *args: Any, **kwargs: Any) -> Any:
            if admin and not context.snapshot["api.jsonrpc.admin.enable"]:
                code, message = ACCESS_DENIED
                raise JsonRpcError(
                    code,
                    message,
                    basic_reason(
                        f"{name} is a provisioning method: set api.jsonrpc.admin.enable to Y"
                    ),
                )
            try:
                return Success(func(context, *args, **kwargs))
            except errors.PrintsrvError as error:
                code, _ = error_code(error)
                raise JsonRpcError(code, error.message, basic_reason(error.reason)) from None

        METHODS[name] = method
        return method

    return register


# -- public methods ------------------------------------------------------------------------------


def system_status(context: CallContext) -> dict[str, Any]:
    """READY, or why users are kept out: SETUP, MAINTENANCE or UNAVAILABLE."""
    return enum_result(context.installation.monitor.status(context.snapshot).value)


INLINE_METHODS["systemStatus"] = system_status
rpc_method("systemStatus", admin=False)(system_status)


@rpc_method("authUserSource", admin=False)
def auth_user_source(context: CallContext, username: Any, password: Any) -> dict[str, Any]:
    """Whether user name and password are valid in the user source (aliases apply)."""
    name = text_param("username", username)
    secret = text_param("password", password, required=False)
    with context.installation.db.transaction() as session:
        return boolean_result(usersource.authenticate(session, context.snapshot, name, secret))


# -- printer access ------------------------------------------------------------------------------

ACCESS_ACTIONS = ("ADD", "REMOVE", "REMOVE_ALL", "LIST")


def _access_scope(scope: Any, *, required: bool) -> str | None:
    if scope is None and not required:
        return None
    if scope not in printer_access.SCOPES:
        raise _bad("scope", "must be ALLOW or DENY")
    return str(scope)


@rpc_method("printerAccessControl")
def printer_access_control(
    context: CallContext,
    action: Any,
    printerName: Any,
    groupName: Any = None,
    scope: Any = None,
) -> dict[str, Any]:
    """ADD or REMOVE a group on a printer's ALLOW/DENY list, REMOVE_ALL, or LIST the lists.

    ``scope`` is required for ADD; for the other actions it narrows them to one list.
    ``groupName`` is required for ADD and REMOVE, and refused for REMOVE_ALL and LIST.
    """
    if action not in ACCESS_ACTIONS:
        raise _bad("action", "must be ADD, REMOVE, REMOVE_ALL or LIST")
    printer = text_param("printerName", printerName)
    wanted = _access_scope(scope, required=action == "ADD")
    group = None
    if action in ("ADD", "REMOVE"):
        group = text_param("groupName", groupName)
    elif groupName is not None:
        raise _bad("groupName", f"is not used by action {action}: leave it out")
    if action == "LIST":
        with context.installation.db.read() as session:
            entries = printer_access.list_access(session, printer, wanted)
        items = [{"groupName": e.group, "scope": e.scope} for e in entries]
        return {"data": {"@type": "USER_GROUP_ACCESS", "userGroupAccess": items}}
    with context.installation.db.transaction() as session:
        if action == "ADD":
            assert group is not None and wanted is not None
            previous = printer_access.grant(session, printer, group, wanted)
            return basic_result(0, printer_access.describe_grant(group, wanted, previous))
        if action == "REMOVE":
            assert group is not None
            printer_access.revoke(session, printer, group, wanted)
            return basic_result(0, "removed")
        removed = printer_access.revoke_all(session, printer, wanted)
    return basic_result(0, f"{removed} removed")


# -- config --------------------------------------------------------------------------------------

# Properties only the command line may change: who may call the APIs, and how callers are
# identified. A leaked X-Auth-Key must not be enough to widen its own access.
GUARDED_PROPERTIES = frozenset(
    {
        "api.jsonrpc.admin.enable",
        "api.jsonrpc.ext.ip-addresses-allowed",
        "api.jsonrpc.secret-key",
        "api.restful.auth.password",
        "api.restful.auth.username",
        "api.restful.ip-addresses-allowed",
        "server.trusted-proxies",
        "web-login.ttp.apikey",
    }
)


@rpc_method("getConfigProperty")
def get_config_property(context: CallContext, uniqueName: Any) -> dict[str, Any]:
    """A property's value; a secret's value is never returned."""
    name = text_param("uniqueName", uniqueName)
    prop = config_service.get_definition(name)
    if prop.secret:
        raise errors.NotAllowed(
            f"Config property {name!r} is a secret; it is never returned", reason=name
        )
    with context.installation.db.read() as session:
        [(_, value)] = config_service.describe(session, [name])
    return string_result(value)


@rpc_method("setConfigProperty")
def set_config_property(context: CallContext, name: Any, value: Any) -> dict[str, Any]:
    """Validate and store a property; secret, allowlist and credential properties refused."""
    key = text_param("name", name)
    text = text_param("value", value, required=False)
    config_service.get_definition(key)
    if key in GUARDED_PROPERTIES:
        raise errors.NotAllowed(
            f"Config property {key!r} can only be changed with the printsrv command", reason=key
        )
    with context.installation.db.transaction() as session:
        config_service.set_property(
            session,
            key,
            text,
            hasher=context.installation.hasher,
            actor=f"jsonrpc {context.client.host}",
        )
    return basic_result()


# -- users ---------------------------------------------------------------------------------------

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
        raise _bad("user.emailOther", "must be a list of strings")
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
    )


def _set_uuid(user: User, value: Any, context: CallContext) -> None:
    text = text_param("user.uuid", value)
    try:
        credential = str(uuidlib.UUID(text))
    except ValueError:
        raise _bad("user.uuid", "must be a UUID") from None
    user.uuid_hash = context.installation.hasher.digest(credential)
    user.uuid_created_at = user_service.utcnow()


ACCOUNTING_FIELDS = frozenset(
    {"balance", "keepBalance", "creditLimit", "creditLimitAmount", "comment"}
)
CREDIT_LIMITS = {"NONE": "none", "DEFAULT": "default", "INDIVIDUAL": None}


@dataclass(frozen=True)
class AccountingChanges:
    """What `user.accounting` asks for: a new balance (an ADJUST row for the difference)
    and a credit limit ("none", "default" or an amount)."""

    balance: Decimal | None
    credit_limit: str | None
    comment: str


def _accounting(user: dict[str, Any]) -> AccountingChanges | None:
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
            raise _bad("user.accounting.creditLimit", "must be NONE, DEFAULT or INDIVIDUAL")
        credit_limit = CREDIT_LIMITS[limit]
        if credit_limit is None:
            amount = text_param(
                "user.accounting.creditLimitAmount", fields.get("creditLimitAmount")
            )
            accounting.parse_amount(amount, param="user.accounting.creditLimitAmount")
            credit_limit = amount
    comment = text_param("user.accounting.comment", fields.get("comment"), required=False)
    return AccountingChanges(balance, credit_limit, comment or "JSON-RPC")


def _apply_accounting(
    session: Any, user_name: str, changes: AccountingChanges | None, context: CallContext
) -> None:
    if changes is None:
        return
    if changes.balance is not None:
        accounting.change_balance(
            session,
            account_type="USER",
            name=user_name,
            amount=changes.balance,
            adjust=False,
            comment=changes.comment,
            actor=accounting.admin_actor(f"jsonrpc {context.client.host}"),
        )
    if changes.credit_limit is not None:
        accounting.set_credit_limit(session, "USER", user_name, changes.credit_limit)


@rpc_method("addInternalUser")
def add_internal_user(context: CallContext, user: Any) -> dict[str, Any]:
    """Create an internal user, or update it when it exists (a deleted one is restored)."""
    fields = object_param("user", user, USER_FIELDS)
    name = text_param("user.userName", fields.get("userName"))
    changes = _user_changes(fields)
    money = _accounting(fields)
    hasher = context.installation.hasher
    with context.installation.db.transaction() as session:
        existing = user_service.find_user(session, name, include_deleted=True)
        if existing is None:
            existing = user_service.add_user(session, name)
            message = "user created"
        else:
            user_service.restore_user(session, existing)
            message = "user updated"
        user_service.update_user(session, existing, changes, hasher=hasher)
        if fields.get("uuid") is not None:
            _set_uuid(existing, fields["uuid"], context)
        _apply_accounting(session, existing.user_name, money, context)
    return basic_result(0, message)


@rpc_method("setUserProperties")
def set_user_properties(context: CallContext, user: Any) -> dict[str, Any]:
    """Update an existing user's fields; remove* flags clear them."""
    fields = object_param("user", user, USER_FIELDS | REMOVE_FIELDS)
    name = text_param("user.userName", fields.get("userName"))
    changes, removals = _user_changes(fields), _removals(fields)
    money = _accounting(fields)
    hasher = context.installation.hasher
    with context.installation.db.transaction() as session:
        found = user_service.get_user(session, name)
        user_service.update_user(session, found, removals, hasher=hasher)
        user_service.update_user(session, found, changes, hasher=hasher)
        if fields.get("removeUuid") is True:
            found.uuid_hash, found.uuid_created_at = None, None
        if fields.get("uuid") is not None:
            _set_uuid(found, fields["uuid"], context)
        _apply_accounting(session, found.user_name, money, context)
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
        old_name = user_service.get_user(session, name, include_deleted=True).user_name
        anonymous = user_service.erase_user(session, name)
        accounting.rename_user_account(session, old_name, anonymous)
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


GROUP_FIELDS = frozenset({"groupName", "accounting"})
GROUP_ACCOUNTING_FIELDS = frozenset({"balance", "creditLimit", "creditLimitAmount"})


def _group_defaults(fields: dict[str, Any]) -> group_defaults.GroupDefaults:
    """`userGroup.accounting` as group defaults; fields left out keep their stored value."""
    if fields.get("accounting") is None:
        return group_defaults.GroupDefaults()
    money = object_param("userGroup.accounting", fields["accounting"], GROUP_ACCOUNTING_FIELDS)
    initial = None
    if money.get("balance") is not None:
        param = "userGroup.accounting.balance"
        initial = accounting.parse_amount(text_param(param, money["balance"]), param=param)
        if initial < 0:
            raise _bad(param, "must not be negative (it is the credit new members start with)")
    policy, limit = None, None
    if money.get("creditLimit") is not None:
        policy = money["creditLimit"]
        if policy not in CREDIT_LIMITS:
            raise _bad("userGroup.accounting.creditLimit", "must be NONE, DEFAULT or INDIVIDUAL")
        param = "userGroup.accounting.creditLimitAmount"
        if policy == "INDIVIDUAL":
            amount = text_param(param, money.get("creditLimitAmount"))
            limit = accounting.parse_amount(amount, param=param)
            if limit < 0:
                raise _bad(param, "must not be negative")
        elif money.get("creditLimitAmount") is not None:
            raise _bad(param, f"is only used with creditLimit INDIVIDUAL, not {policy}")
    elif money.get("creditLimitAmount") is not None:
        raise _bad("userGroup.accounting.creditLimit", "must be INDIVIDUAL with an amount")
    return group_defaults.GroupDefaults(initial, policy, limit)


@rpc_method("setUserGroupProperties")
def set_user_group_properties(context: CallContext, userGroup: Any) -> dict[str, Any]:
    """Set a group's defaults for its members' new accounts: initial credit, credit limit."""
    fields = object_param("userGroup", userGroup, GROUP_FIELDS)
    name = text_param("userGroup.groupName", fields.get("groupName"))
    defaults = _group_defaults(fields)
    with context.installation.db.transaction() as session:
        group = user_service.get_group(session, name)
        group_defaults.set_group_defaults(session, group, defaults)
    return basic_result()


@rpc_method("deleteUserGroupAccount")
def delete_user_group_account(context: CallContext, uniqueName: Any) -> dict[str, Any]:
    """Logically delete a group's GROUP account: it can no longer be charged; the ledger stays."""
    name = text_param("uniqueName", uniqueName)
    with context.installation.db.transaction() as session:
        was_disabled = accounting.disable_group_account(session, name)
    return basic_result(0, "already deleted" if was_disabled else "group account deleted")


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


# -- money ---------------------------------------------------------------------------------------


@rpc_method("changeBaseCurrency")
def change_base_currency(
    context: CallContext,
    currencyCodeFrom: Any,
    currencyCodeTo: Any,
    exchangeRate: Any,
    test: Any = False,
) -> dict[str, Any]:
    """Convert every account to another currency at a rate; `test` only reports what would be.

    One transaction: the ledger rows, the scaled credit limits and the new
    financial.currency-code commit together or not at all.
    """
    source = accounting.parse_currency_code(
        text_param("currencyCodeFrom", currencyCodeFrom), param="currencyCodeFrom"
    )
    target = accounting.parse_currency_code(
        text_param("currencyCodeTo", currencyCodeTo), param="currencyCodeTo"
    )
    rate = accounting.parse_exchange_rate(text_param("exchangeRate", exchangeRate))
    dry_run = bool_param("test", test)
    with context.installation.db.transaction() as session:
        change = accounting.change_base_currency(
            session,
            source=source,
            target=target,
            rate=rate,
            actor=accounting.admin_actor(f"jsonrpc {context.client.host}"),
            hasher=context.installation.hasher,
            dry_run=dry_run,
        )
    return basic_result(0, change.summary(done=not dry_run))
