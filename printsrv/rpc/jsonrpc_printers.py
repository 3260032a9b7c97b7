"""JSON-RPC methods about printers: which groups may print where (printerAccessControl)."""

from __future__ import annotations

from typing import Any

from printsrv.printing import access as printer_access
from printsrv.rpc.jsonrpc_methods import (
    CallContext,
    bad_param,
    basic_result,
    rpc_method,
    text_param,
)

# -- printer access ------------------------------------------------------------------------------

ACCESS_ACTIONS = ("ADD", "REMOVE", "REMOVE_ALL", "LIST")


def _access_scope(scope: Any, *, required: bool) -> str | None:
    if scope is None and not required:
        return None
    if scope not in printer_access.SCOPES:
        raise bad_param("scope", "must be ALLOW or DENY")
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
        raise bad_param("action", "must be ADD, REMOVE, REMOVE_ALL or LIST")
    printer = text_param("printerName", printerName)
    wanted = _access_scope(scope, required=action == "ADD")
    group = None
    if action in ("ADD", "REMOVE"):
        group = text_param("groupName", groupName)
    elif groupName is not None:
        raise bad_param("groupName", f"is not used by action {action}: leave it out")
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


# jsonrpc_registry.py assembles the method table from this tuple.
METHODS = (printer_access_control,)
