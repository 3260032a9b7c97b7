"""JSON-RPC methods about money beyond a user's own account: group defaults, group accounts,
and changing the base currency.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from printsrv.accounts import service as accounting
from printsrv.people import group_defaults
from printsrv.people import users as user_service
from printsrv.rpc.jsonrpc_methods import (
    CallContext,
    bad_param,
    basic_result,
    bool_param,
    object_param,
    rpc_method,
    text_param,
)
from printsrv.rpc.jsonrpc_users import CREDIT_LIMITS

GROUP_FIELDS = frozenset({"groupName", "accounting"})
GROUP_ACCOUNTING_FIELDS = frozenset({"balance", "creditLimit", "creditLimitAmount"})


def _group_defaults(fields: dict[str, Any]) -> group_defaults.GroupDefaults:
    """`userGroup.accounting` read as group defaults (fields left out keep their stored value);
    the rules they must keep are the service's (`group_defaults.check_defaults`)."""
    if fields.get("accounting") is None:
        return group_defaults.GroupDefaults()
    money = object_param("userGroup.accounting", fields["accounting"], GROUP_ACCOUNTING_FIELDS)
    initial = _amount(money, "balance") if money.get("balance") is not None else None
    policy = money.get("creditLimit")
    if policy is not None and policy not in CREDIT_LIMITS:
        raise bad_param("userGroup.accounting.creditLimit", "must be NONE, DEFAULT or INDIVIDUAL")
    limit = None
    if policy == "INDIVIDUAL" or money.get("creditLimitAmount") is not None:
        limit = _amount(money, "creditLimitAmount")
    return group_defaults.GroupDefaults(initial, policy, limit)


def _amount(money: dict[str, Any], field: str) -> Decimal:
    param = f"userGroup.accounting.{field}"
    return accounting.parse_amount(text_param(param, money.get(field)), param=param)


@rpc_method("setUserGroupProperties")
def set_user_group_properties(context: CallContext, userGroup: Any) -> dict[str, Any]:
    """Set a group's defaults for its members' new accounts: initial credit, credit limit."""
    fields = object_param("userGroup", userGroup, GROUP_FIELDS)
    name = text_param("userGroup.groupName", fields.get("groupName"))
    defaults = _group_defaults(fields)
    with context.installation.db.transaction() as session:
        user_service.change_group_defaults(session, name, defaults)
    return basic_result()


@rpc_method("deleteUserGroupAccount")
def delete_user_group_account(context: CallContext, uniqueName: Any) -> dict[str, Any]:
    """Logically delete a group's GROUP account: it can no longer be charged; the ledger stays."""
    name = text_param("uniqueName", uniqueName)
    with context.installation.db.transaction() as session:
        was_disabled = accounting.disable_group_account(session, name)
    return basic_result(0, "already deleted" if was_disabled else "group account deleted")


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


# jsonrpc_registry.py assembles the method table from this tuple.
METHODS = (
    set_user_group_properties,
    delete_user_group_account,
    change_base_currency,
)
