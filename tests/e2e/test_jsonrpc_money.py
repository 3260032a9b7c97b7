"""The JSON-RPC methods that touch money, against the real server: changeBaseCurrency,
setUserGroupProperties, deleteUserGroupAccount. Every refusal is checked to change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from support import LiveServer, open_jsonrpc, rpc, set_config

import financial
from financial import AccountTrx
from printsrv.accounts import service as accounting
from printsrv.accounts.models import GroupQuota
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.people.models import UserGroup
from printsrv.printing import printers
from printsrv.printing.costs import CostModel
from printsrv.printing.models import Printer

ADMIN = accounting.admin_actor("test")
AMOUNT_PROPERTIES = (
    "financial.credit-limit.default",
    "financial.user.transfers.amount-max",
    "financial.user.transfers.amount-min",
)


@pytest.fixture
def server(installation: Installation) -> Iterator[LiveServer]:
    open_jsonrpc(installation, admin=True)
    with installation.db.transaction() as session:
        for name in ("john", "mary", "idle"):
            users.add_user(session, name)
        users.add_group(session, "staff")
        users.add_group(session, "students")
        for kind, name, amount in (
            ("USER", "john", "10.00"),
            ("USER", "mary", "-2.50"),
            ("GROUP", "staff", "100.000001"),
        ):
            accounting.change_balance(
                session,
                account_type=kind,
                name=name,
                amount=Decimal(amount),
                adjust=True,
                comment="start",
                actor=ADMIN,
            )
        accounting.set_credit_limit(session, "USER", "mary", "5")
    live = LiveServer(installation).start()
    yield live
    live.stop()


def error_of(answer: dict) -> tuple[int, str]:
    assert answer["result"] is False, answer
    return answer["error"]["code"], answer["error"]["data"]["reason"]


def ok(answer: dict) -> dict:
    assert "error" not in answer, answer
    return answer["result"]["data"]


def state(installation: Installation) -> tuple:
    """Everything these methods may change: accounts, ledger size, currency, group defaults."""
    with installation.db.read() as session:
        accounts = tuple(
            (a.label, a.balance, a.credit_limit_policy, a.credit_limit, a.disabled)
            for a in financial.list_accounts(session)
        )
        rows = session.scalar(select(func.count()).select_from(AccountTrx))
        groups = tuple(
            session.execute(
                select(
                    UserGroup.name,
                    UserGroup.initial_credit,
                    UserGroup.credit_limit_policy,
                    UserGroup.credit_limit,
                ).order_by(UserGroup.name)
            )
        )
    return accounts, rows, currency(installation), groups, amounts(installation)


def amounts(installation: Installation) -> dict[str, str]:
    """The config amounts a change of currency scales, as `config get` shows them."""
    with installation.db.read() as session:
        return {
            prop.name: value
            for prop, value in accounting.config_service.describe(session, AMOUNT_PROPERTIES)
        }


def currency(installation: Installation) -> str:
    with installation.db.read() as session:
        [(_, value)] = accounting.config_service.describe(session, ["financial.currency-code"])
    return value


def balances(installation: Installation) -> dict[str, Decimal]:
    with installation.db.read() as session:
        return {a.label: a.balance for a in financial.list_accounts(session)}


# -- changeBaseCurrency ---------------------------------------------------------------------------

CHANGE = {"currencyCodeFrom": "EUR", "currencyCodeTo": "USD", "exchangeRate": "1.08"}
# The transfer limits are at their defaults (0.01 and 100), the default credit limit is 0.
SCALED = (
    "financial.user.transfers.amount-max 100.000000 -> 108.000000, "
    "financial.user.transfers.amount-min 0.010000 -> 0.010800"
)


def test_change_base_currency_restates_every_balance_and_the_currency(
    server: LiveServer, installation: Installation
) -> None:
    data = ok(rpc(server, "changeBaseCurrency", {**CHANGE, "test": False}))

    assert data["code"] == 0
    assert data["message"] == (
        "3 accounts converted, total 107.500001 EUR -> 116.100001 USD at 1.08; scaled " + SCALED
    )
    assert balances(installation) == {
        "GROUP/staff": Decimal("108.000001"),  # 108.00000108 rounded
        "GROUP/students": Decimal("0"),
        "USER/idle": Decimal("0"),
        "USER/john": Decimal("10.800000"),
        "USER/mary": Decimal("-2.700000"),
    }
    assert currency(installation) == "USD"
    assert ok(rpc(server, "getConfigProperty", {"uniqueName": "financial.currency-code"})) == {
        "@type": "string",
        "value": "USD",
    }
    with installation.db.read() as session:
        mary = financial.get_account(session, "USER", "mary")
        assert mary.credit_limit == Decimal("5.400000")
        rows = financial.latest_transactions(session, mary, 2)
        assert [(r.trx_type, r.amount, r.comment) for r in reversed(rows)] == [
            ("ADJUST", Decimal("2.500000"), "Base currency EUR -> USD at 1.08"),
            ("ADJUST", Decimal("-2.700000"), "Base currency EUR -> USD at 1.08"),
        ]
        assert accounting.verify_ledger(session) == []

    # The old currency is no longer the current one: a second change from EUR is refused.
    before = state(installation)
    assert error_of(rpc(server, "changeBaseCurrency", CHANGE)) == (-32602, "currencyCodeFrom")
    assert state(installation) == before


def test_change_base_currency_dry_run_reports_and_changes_nothing(
    server: LiveServer, installation: Installation
) -> None:
    before = state(installation)
    data = ok(rpc(server, "changeBaseCurrency", {**CHANGE, "test": True}))
    assert data["message"] == (
        "3 accounts would be converted, total 107.500001 EUR -> 116.100001 USD at 1.08; "
        "would scale " + SCALED
    )
    assert state(installation) == before


def test_change_base_currency_scales_the_config_amounts_in_the_same_unit_of_work(
    server: LiveServer, installation: Installation
) -> None:
    # Issue 21: the default credit limit and the transfer limits stayed as they were, so
    # after EUR -> JPY at 160 a transfer of at most 100 EUR became one of at most 100 JPY.
    set_config(
        installation,
        {
            "financial.credit-limit.default": "5",
            "financial.user.transfers.amount-min": "0.50",
            "financial.user.transfers.amount-max": "20",
        },
    )
    change = {"currencyCodeFrom": "EUR", "currencyCodeTo": "JPY", "exchangeRate": "160"}
    message = ok(rpc(server, "changeBaseCurrency", change))["message"]

    assert message.endswith(
        "; scaled financial.credit-limit.default 5.000000 -> 800.000000, "
        "financial.user.transfers.amount-max 20.000000 -> 3200.000000, "
        "financial.user.transfers.amount-min 0.500000 -> 80.000000"
    ), message
    assert amounts(installation) == {
        "financial.credit-limit.default": "800.000000",
        "financial.user.transfers.amount-max": "3200.000000",
        "financial.user.transfers.amount-min": "80.000000",
    }
    assert currency(installation) == "JPY"


def test_change_base_currency_scales_group_defaults_quotas_and_printer_prices(
    server: LiveServer, installation: Installation
) -> None:
    # Issue: only balances, individual limits and the config were restated; a group's
    # initial credit, its quota and a printer's prices stayed at their EUR figures.
    staff = {"groupName": "staff", "accounting": {"balance": "5.00"}}
    ok(rpc(server, "setUserGroupProperties", {"userGroup": staff}))
    quota = {"groupName": "staff", "amount": "3", "period": "weekly"}
    ok(rpc(server, "setUserGroupQuota", quota))
    with installation.db.transaction() as session:
        session.add(Printer(name="lab"))
        session.flush()
        printers.set_cost(session, "lab", CostModel.simple(Decimal("0.10")))

    message = ok(rpc(server, "changeBaseCurrency", {**CHANGE, "test": False}))["message"]

    assert message.endswith(
        "group staff initial credit 5.000000 -> 5.400000, "
        "group staff quota 3.000000 -> 3.240000, printer lab prices"
    ), message
    with installation.db.read() as session:
        group = session.scalar(select(UserGroup).where(UserGroup.name == "staff"))
        assert group is not None and group.initial_credit == Decimal("5.4")
        assert session.scalar(select(GroupQuota.amount)) == Decimal("3.24")
        lab = session.scalar(select(Printer.cost_model).where(Printer.name == "lab"))
        assert printers.cost_from_json(lab) == CostModel.simple(Decimal("0.108"))


def test_a_config_amount_the_rate_would_break_refuses_the_whole_change(
    server: LiveServer, installation: Installation
) -> None:
    # The transfer maximum would round to zero, which its property refuses: no balance,
    # no ledger row, no amount and not the currency code may change either.
    set_config(installation, {"financial.user.transfers.amount-max": "0.000002"})
    before = state(installation)
    change = {"currencyCodeFrom": "EUR", "currencyCodeTo": "USD", "exchangeRate": "0.1"}
    assert error_of(rpc(server, "changeBaseCurrency", change)) == (-32602, "exchangeRate")
    assert state(installation) == before


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"currencyCodeFrom": "GBP"}, "currencyCodeFrom"),  # not the current currency
        ({"currencyCodeFrom": "eur"}, "currencyCodeFrom"),
        ({"currencyCodeFrom": ""}, "currencyCodeFrom"),
        ({"currencyCodeTo": "EURO"}, "currencyCodeTo"),
        ({"currencyCodeTo": "ABC"}, "currencyCodeTo"),  # three letters, not ISO 4217
        ({"currencyCodeTo": "EUR"}, "currencyCodeTo"),  # the same currency
        ({"currencyCodeTo": 840}, "currencyCodeTo"),
        ({"exchangeRate": "1e3"}, "exchangeRate"),
        ({"exchangeRate": "NaN"}, "exchangeRate"),
        ({"exchangeRate": "Infinity"}, "exchangeRate"),
        ({"exchangeRate": ""}, "exchangeRate"),
        ({"exchangeRate": "-1.08"}, "exchangeRate"),
        ({"exchangeRate": "0"}, "exchangeRate"),
        ({"exchangeRate": "0.0000000000001"}, "exchangeRate"),
        ({"exchangeRate": 1.08}, "exchangeRate"),
        ({"exchangeRate": "100000000000"}, "exchangeRate"),  # staff's balance would overflow
        ({"test": "yes"}, "test"),
    ],
)
def test_change_base_currency_refuses_bad_params_and_changes_nothing(
    server: LiveServer, installation: Installation, change: dict, reason: str
) -> None:
    before = state(installation)
    code, got = error_of(rpc(server, "changeBaseCurrency", {**CHANGE, **change}))
    assert (code, got) == (-32602, reason)
    assert state(installation) == before


def test_change_base_currency_refuses_a_missing_rate(
    server: LiveServer, installation: Installation
) -> None:
    before = state(installation)
    params = {k: v for k, v in CHANGE.items() if k != "exchangeRate"}
    code, _ = error_of(rpc(server, "changeBaseCurrency", params))
    assert code == -32602
    assert state(installation) == before


# -- setUserGroupProperties -----------------------------------------------------------------------


def group_props(name: str, **accounting_fields: object) -> dict:
    return {"userGroup": {"groupName": name, "accounting": accounting_fields}}


def new_member(installation: Installation, user: str, *groups: str) -> financial.Account:
    with installation.db.transaction() as session:
        users.add_user(session, user)
        for group in groups:
            users.add_member(session, group, user)
    with installation.db.read() as session:
        return financial.get_account(session, "USER", user)


def test_group_defaults_give_a_new_member_initial_credit_and_credit_limit(
    server: LiveServer, installation: Installation
) -> None:
    params = group_props(
        "Staff", balance="5.00", creditLimit="INDIVIDUAL", creditLimitAmount="2.50"
    )
    assert ok(rpc(server, "setUserGroupProperties", params))["code"] == 0

    account = new_member(installation, "nina", "staff")

    assert account.balance == Decimal("5.000000")
    assert (account.credit_limit_policy, account.credit_limit) == ("INDIVIDUAL", Decimal("2.5"))
    with installation.db.read() as session:
        [row] = financial.latest_transactions(session, account, 5)
        assert (row.trx_type, row.amount, row.comment) == (
            "INITIAL",
            Decimal("5.000000"),
            "Initial credit of group staff",
        )
        assert accounting.verify_ledger(session) == []


def test_a_member_joining_groups_one_by_one_gets_the_first_defaults_only(
    server: LiveServer, installation: Installation
) -> None:
    ok(rpc(server, "setUserGroupProperties", group_props("staff", balance="1", creditLimit="NONE")))
    ok(rpc(server, "setUserGroupProperties", group_props("students", creditLimit="DEFAULT")))
    ok(rpc(server, "setUserGroupProperties", group_props("students", balance="3")))

    ann = new_member(installation, "ann", "staff", "students")
    bob = new_member(installation, "bob", "students", "staff")

    assert (ann.balance, ann.credit_limit_policy) == (Decimal("1"), "NONE")
    assert (bob.balance, bob.credit_limit_policy) == (Decimal("3"), "DEFAULT")


def test_group_defaults_leave_accounts_that_are_no_longer_new_alone(
    server: LiveServer, installation: Installation
) -> None:
    ok(rpc(server, "setUserGroupProperties", group_props("staff", balance="7")))
    with installation.db.transaction() as session:
        users.add_member(session, "staff", "john")  # john's account has ledger rows
    assert balances(installation)["USER/john"] == Decimal("10")


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (group_props("staff", balance="-1"), "userGroup.accounting.balance"),
        (group_props("staff", balance="1e3"), "userGroup.accounting.balance"),
        (group_props("staff", balance=5), "userGroup.accounting.balance"),
        (group_props("staff", creditLimit="SOME"), "userGroup.accounting.creditLimit"),
        (
            group_props("staff", creditLimit="INDIVIDUAL"),
            "userGroup.accounting.creditLimitAmount",
        ),
        (
            group_props("staff", creditLimit="INDIVIDUAL", creditLimitAmount="-2"),
            "userGroup.accounting.creditLimitAmount",
        ),
        (
            group_props("staff", creditLimit="DEFAULT", creditLimitAmount="2"),
            "userGroup.accounting.creditLimitAmount",
        ),
        (group_props("staff", creditLimitAmount="2"), "userGroup.accounting.creditLimit"),
        (group_props("staff", initialCredit="2"), "userGroup.accounting.initialCredit"),
        ({"userGroup": {"groupName": "staff", "colour": "red"}}, "userGroup.colour"),
        ({"userGroup": {"accounting": {"balance": "1"}}}, "userGroup.groupName"),
        ({"userGroup": "staff"}, "userGroup"),
    ],
)
def test_set_user_group_properties_refuses_bad_params_and_changes_nothing(
    server: LiveServer, installation: Installation, params: dict, reason: str
) -> None:
    before = state(installation)
    assert error_of(rpc(server, "setUserGroupProperties", params)) == (-32602, reason)
    assert state(installation) == before


def test_set_user_group_properties_of_an_unknown_group_is_not_found(
    server: LiveServer, installation: Installation
) -> None:
    before = state(installation)
    code, _ = error_of(rpc(server, "setUserGroupProperties", group_props("nobody", balance="1")))
    assert code == -32001
    assert state(installation) == before


# -- deleteUserGroupAccount -----------------------------------------------------------------------


def test_delete_user_group_account_disables_it_and_keeps_the_ledger(
    server: LiveServer, installation: Installation
) -> None:
    _, before_rows, *_ = state(installation)
    data = ok(rpc(server, "deleteUserGroupAccount", {"uniqueName": "Staff"}))
    assert data["message"] == "group account deleted"

    after_accounts, after_rows, *_ = state(installation)
    assert after_rows == before_rows
    assert ("GROUP/staff", Decimal("100.000001"), "NONE", None, True) in after_accounts
    with installation.db.transaction() as session:
        staff = financial.get_account(session, "GROUP", "staff")
        with pytest.raises(financial.AccountDisabled):
            financial.charge(
                session,
                account=staff,
                amount="1",
                comment="print",
                actor=ADMIN,
                default_credit_limit=Decimal(0),
            )
    assert ok(rpc(server, "deleteUserGroupAccount", {"uniqueName": "staff"}))["message"] == (
        "already deleted"
    )


@pytest.mark.parametrize(
    ("name", "code"), [("nobody", -32001), ("", -32602), (7, -32602), ("a b", -32602)]
)
def test_delete_user_group_account_refuses_unknown_or_bad_names(
    server: LiveServer, installation: Installation, name: object, code: int
) -> None:
    before = state(installation)
    assert error_of(rpc(server, "deleteUserGroupAccount", {"uniqueName": name}))[0] == code
    assert state(installation) == before
