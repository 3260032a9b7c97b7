"""JSON-RPC methods for scheduled group quotas (printsrv extensions; PaperCut calls its
method setGroupQuota): setUserGroupQuota and getUserGroupQuota, with the parameters of
`printsrv group quota`. Both are provisioning methods (api.jsonrpc.admin.enable).
"""

from __future__ import annotations

from typing import Any

from financial import to_wire
from printsrv.accounts import quotas
from printsrv.rpc.jsonrpc_methods import (
    CallContext,
    bad_param,
    basic_result,
    bool_param,
    rpc_method,
    text_param,
)

_NAMES = ("amount", "period", "maxAccumulation")


def _optional_text(name: str, value: Any) -> str | None:
    return None if value is None else text_param(name, value)


@rpc_method("setUserGroupQuota")
def set_user_group_quota(
    context: CallContext,
    groupName: Any,
    amount: Any = None,
    period: Any = None,
    maxAccumulation: Any = None,
    off: Any = False,
) -> dict[str, Any]:
    """Set a group's quota (`amount` per `period`, up to `maxAccumulation`), or with `off`
    stop it. Amounts are strings in the wire form ("5.00")."""
    name = text_param("groupName", groupName)
    zone = context.snapshot["system.time-zone"]
    if bool_param("off", off):
        for field, value in zip(_NAMES, (amount, period, maxAccumulation), strict=True):
            if value is not None:
                raise bad_param(field, "must be left out with off")
        with context.installation.db.transaction() as session:
            had = quotas.remove_group_quota(session, name, time_zone=zone)
        return basic_result(0, "quota stopped" if had else "the group has no quota")
    terms = quotas.parse_terms(
        _optional_text("amount", amount),
        _optional_text("period", period),
        _optional_text("maxAccumulation", maxAccumulation),
        names=_NAMES,
    )
    with context.installation.db.transaction() as session:
        view = quotas.set_group_quota(
            session, name, terms, actor=f"jsonrpc {context.client.host}", time_zone=zone
        )
    return basic_result(
        0, f"quota set; the first credit is for the period from {view.next_period.isoformat()}"
    )


@rpc_method("getUserGroupQuota")
def get_user_group_quota(context: CallContext, groupName: Any) -> dict[str, Any]:
    """A group's quota: amount, period, maxAccumulation (null: none), when it was set, the
    start of the latest period credited and of the next one; `enabled` false when none."""
    name = text_param("groupName", groupName)
    zone = context.snapshot["system.time-zone"]
    with context.installation.db.read() as session:
        view = quotas.get_group_quota(session, name, time_zone=zone)
    data: dict[str, Any] = {"@type": "QUOTA", "groupName": name.strip().lower()}
    if view is None:
        return {"data": {**data, "enabled": False}}
    cap = view.terms.max_accumulation
    return {
        "data": {
            **data,
            "enabled": True,
            "amount": to_wire(view.terms.amount),
            "period": view.terms.period,
            "maxAccumulation": to_wire(cap) if cap is not None else None,
            "timeZone": zone,
            "setAt": view.set_at.isoformat(),
            "setBy": view.set_by,
            "creditedThrough": (
                view.credited_through.isoformat() if view.credited_through else None
            ),
            "nextPeriod": view.next_period.isoformat(),
        }
    }


# jsonrpc_registry.py assembles the method table from this tuple.
METHODS = (set_user_group_quota, get_user_group_quota)
