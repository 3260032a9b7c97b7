"""printsrv/accounts/service.py: the accounting core with printsrv's config, user names, errors."""

from __future__ import annotations

import ast
import inspect
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from support import set_config

import financial
import financial.ledger
from financial import AccountTrx, AccountType
from printsrv import errors
from printsrv.accounts import service as accounting
from printsrv.error_table import ERROR_TABLE
from printsrv.errors import ConfigError, Conflict, InvalidInput, NotAllowed, NotFound
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.rest.responses import status_for

ADMIN = accounting.admin_actor("admin")
D = Decimal


def settings(installation: Installation) -> accounting.AccountingSettings:
    return accounting.settings_of(installation.config.snapshot())


def trx_count(installation: Installation) -> int:
    with installation.db.read() as session:
        return session.scalar(select(func.count()).select_from(AccountTrx)) or 0


def account_count(installation: Installation) -> int:
    with installation.db.read() as session:
        return len(financial.list_accounts(session))


@pytest.fixture
def people(installation: Installation) -> Installation:
    """janet (10.00) and rijk (alias s123456, 0.00)."""
    with installation.db.transaction() as session:
        users.add_user(session, "janet")
        users.add_user(session, "rijk")
        users.add_alias(session, "s123456", "rijk")
        accounting.change_balance(
            session,
            account_type="USER",
            name="janet",
            amount=D("10.00"),
            adjust=False,
            comment="start",
            actor=ADMIN,
        )
    return installation


def transfer(
    installation: Installation, amount: str, recipient: str = "s123456", **kw: str
) -> None:
    with installation.db.transaction() as session:
        accounting.transfer_credit(
            session,
            sender=kw.get("sender", "janet"),
            recipient=recipient,
            amount=D(amount),
            comment=kw.get("comment", ""),
            settings=settings(installation),
        )


def balance(installation: Installation, account_type: str, name: str) -> Decimal:
    with installation.db.read() as session:
        return accounting.balance_of(session, account_type, name)


# --- settings -------------------------------------------------------------------------------------


def test_settings_have_sensible_defaults(installation: Installation) -> None:
    found = settings(installation)
    assert found.currency == "EUR"
    assert found.default_credit_limit == D("0")
    assert found.transfers_enabled is True
    assert (found.transfer_minimum, found.transfer_maximum) == (D("0.01"), D("100"))


def test_financial_properties_are_validated_and_normalised(installation: Installation) -> None:
    set_config(
        installation,
        {
            "financial.currency-code": "usd",
            "financial.credit-limit.default": "5.5",
            "financial.user.transfers.amount-max": "25",
        },
    )
    found = settings(installation)
    assert (found.currency, found.default_credit_limit, found.transfer_maximum) == (
        "USD",
        D("5.500000"),
        D("25.000000"),
    )


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("financial.currency-code", "EUX", "not an ISO 4217 currency code"),
        ("financial.currency-code", "EURO", "not an ISO 4217 currency code"),
        ("financial.credit-limit.default", "-1", "must be between"),
        ("financial.credit-limit.default", "1e3", "not an amount"),
        ("financial.user.transfers.amount-min", "0.0000001", "more than 6 decimal places"),
        ("financial.user.transfers.amount-max", "0", "must be between"),
        ("financial.user.transfers.enable", "yes", "must be Y or N"),
    ],
)
def test_bad_financial_property_values_are_refused(
    installation: Installation, name: str, value: str, reason: str
) -> None:
    with pytest.raises(ConfigError, match=reason) as refused:
        set_config(installation, {name: value})
    assert name in refused.value.message


def test_a_minimum_above_the_maximum_makes_transfers_unavailable(people: Installation) -> None:
    set_config(
        people,
        {"financial.user.transfers.amount-min": "5", "financial.user.transfers.amount-max": "2"},
    )
    with pytest.raises(NotAllowed, match="amount-min/-max") as refused:
        transfer(people, "3")
    assert refused.value.reason == "transfers-misconfigured"


# --- accounts come with users and groups ----------------------------------------------------------


def test_every_new_user_and_group_has_its_account(installation: Installation) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "Janet")
        users.add_group(session, "Staff")
    with installation.db.read() as session:
        labels = [account.label for account in financial.list_accounts(session)]
    assert labels == ["GROUP/staff", "USER/janet"]


def test_a_group_added_again_keeps_its_account_and_history(installation: Installation) -> None:
    with installation.db.transaction() as session:
        users.add_group(session, "staff")
        accounting.change_balance(
            session,
            account_type="GROUP",
            name="STAFF",
            amount=D("3"),
            adjust=True,
            comment="",
            actor=ADMIN,
        )
        users.delete_group(session, "staff")
        users.add_group(session, "staff")
    assert balance(installation, "GROUP", "Staff") == D("3")


# --- balances -------------------------------------------------------------------------------------


def test_balance_of_a_user_goes_through_the_aliases(people: Installation) -> None:
    with people.db.transaction() as session:
        accounting.change_balance(
            session,
            account_type="USER",
            name="S123456",
            amount=D("9.26"),
            adjust=False,
            comment="",
            actor=ADMIN,
        )
    assert balance(people, "USER", "rijk") == D("9.26")
    assert balance(people, "USER", "s123456") == D("9.260000")


def test_a_user_without_an_account_has_balance_zero_and_reading_creates_none(
    installation: Installation,
) -> None:
    with installation.db.transaction() as session:
        created = users.add_user(session, "legacy")
        # A user from before accounting: no account yet.
        session.delete(financial.get_account(session, "USER", created.user_name))
    assert balance(installation, "USER", "legacy") == D("0")
    assert account_count(installation) == 0
    with installation.db.transaction() as session:
        accounting.change_balance(
            session,
            account_type="USER",
            name="legacy",
            amount=D("1"),
            adjust=True,
            comment="",
            actor=ADMIN,
        )
    assert balance(installation, "USER", "legacy") == D("1")


@pytest.mark.parametrize(
    ("account_type", "name", "error"),
    [
        ("USER", "nobody", NotFound),
        ("GROUP", "nobody", NotFound),
        ("SHARED", "nobody", NotFound),
        ("user", "janet", InvalidInput),
        ("PERSON", "janet", InvalidInput),
        ("USER", "jan et", InvalidInput),
    ],
)
def test_balance_of_refuses_unknown_accounts_and_bad_types(
    people: Installation, account_type: str, name: str, error: type[Exception]
) -> None:
    with pytest.raises(error), people.db.read() as session:
        accounting.balance_of(session, account_type, name)


def test_set_and_adjust_write_one_adjust_row_each_with_the_details(people: Installation) -> None:
    with people.db.transaction() as session:
        after_set = accounting.change_balance(
            session,
            account_type="USER",
            name="janet",
            amount=D("2.50"),
            adjust=False,
            comment="my text",
            actor=ADMIN,
        )
        after_adjust = accounting.change_balance(
            session,
            account_type="USER",
            name="janet",
            amount=D("-3"),
            adjust=True,
            comment="correction",
            actor=ADMIN,
        )
    assert (after_set, after_adjust) == (D("2.5"), D("-0.5"))
    with people.db.read() as session:
        account = financial.get_account(session, "USER", "janet")
        rows = financial.latest_transactions(session, account, 2)
    assert [(r.trx_type, r.amount, r.comment, r.actor_kind, r.actor_name) for r in rows] == [
        ("ADJUST", D("-3"), "correction", "admin", "admin"),
        ("ADJUST", D("-7.5"), "my text", "admin", "admin"),
    ]


def test_setting_the_balance_it_has_writes_nothing(people: Installation) -> None:
    before = trx_count(people)
    with people.db.transaction() as session:
        result = accounting.change_balance(
            session,
            account_type="USER",
            name="janet",
            amount=D("10"),
            adjust=False,
            comment="",
            actor=ADMIN,
        )
    assert result == D("10")
    assert trx_count(people) == before


def test_adjusting_by_zero_and_long_details_are_refused(people: Installation) -> None:
    with pytest.raises(InvalidInput, match="zero"), people.db.transaction() as session:
        accounting.change_balance(
            session,
            account_type="USER",
            name="janet",
            amount=D("0"),
            adjust=True,
            comment="",
            actor=ADMIN,
        )
    with pytest.raises(InvalidInput, match="longer than 1000"), people.db.transaction() as s:
        accounting.change_balance(
            s,
            account_type="USER",
            name="janet",
            amount=D("1"),
            adjust=True,
            comment="x" * 1001,
            actor=ADMIN,
        )


def test_wire_amounts_are_strict(installation: Installation) -> None:
    assert accounting.parse_amount("-2.50") == D("-2.5")
    for bad in ("1e3", "NaN", "Infinity", "", "1.0000001", " 1", "+1", "1,5"):
        with pytest.raises(InvalidInput, match="'amount'"):
            accounting.parse_amount(bad)


# --- transfers ------------------------------------------------------------------------------------


def test_transfer_moves_credit_as_two_linked_rows_written_by_the_sender(
    people: Installation,
) -> None:
    transfer(people, "4.25", comment="lunch")
    assert balance(people, "USER", "janet") == D("5.75")
    assert balance(people, "USER", "rijk") == D("4.25")
    with people.db.read() as session:
        rows = list(session.scalars(select(AccountTrx).where(AccountTrx.trx_type == "TRANSFER")))
        assert financial.verify(session) == []
    debit, credit = sorted(rows, key=lambda r: r.amount)
    assert (debit.amount, credit.amount) == (D("-4.25"), D("4.25"))
    assert (debit.twin_id, credit.twin_id) == (credit.id, debit.id)
    assert {(r.actor_kind, r.actor_name, r.comment) for r in rows} == {("user", "janet", "lunch")}


@pytest.mark.parametrize(
    ("config", "amount", "recipient", "rule", "error"),
    [
        ({"financial.user.transfers.enable": "N"}, "1", "nobody", "transfers-disabled", NotAllowed),
        ({}, "0", "rijk", "amount-not-positive", InvalidInput),
        ({}, "-1", "rijk", "amount-not-positive", InvalidInput),
        ({}, "0.001", "rijk", "minimum", InvalidInput),
        ({}, "100.01", "rijk", "maximum", InvalidInput),
        ({}, "1", "JANET", "self", InvalidInput),
        ({}, "1", "nobody", "recipient-unknown", NotFound),
        ({}, "10.01", "rijk", "sender-below-zero", Conflict),
    ],
)
def test_each_refused_transfer_names_its_rule_and_changes_nothing(
    people: Installation,
    config: dict[str, str],
    amount: str,
    recipient: str,
    rule: str,
    error: type[errors.PrintsrvError],
) -> None:
    set_config(people, config)
    before = trx_count(people)
    with pytest.raises(error) as refused:
        transfer(people, amount, recipient)
    assert refused.value.reason == rule
    assert refused.value.message.startswith(f"Transfer refused ({rule}): ")
    assert trx_count(people) == before
    assert balance(people, "USER", "janet") == D("10")


def test_a_disabled_or_deleted_recipient_is_refused(people: Installation) -> None:
    with people.db.transaction() as session:
        users.set_enabled(session, "rijk", False)
    with pytest.raises(Conflict, match=r"\(recipient-disabled\)"):
        transfer(people, "1")
    with people.db.transaction() as session:
        users.set_enabled(session, "rijk", True)
        users.delete_user(session, "rijk")
    with pytest.raises(NotFound, match=r"\(recipient-unknown\)"):
        transfer(people, "1")


def test_a_disabled_sender_account_is_refused(people: Installation) -> None:
    with people.db.transaction() as session:
        financial.disable_account(session, financial.get_account(session, "USER", "janet"))
    with pytest.raises(Conflict, match=r"\(sender-disabled\)"):
        transfer(people, "1")


def test_the_credit_limit_does_not_apply_to_transfers(people: Installation) -> None:
    with people.db.transaction() as session:
        accounting.set_credit_limit(session, "USER", "janet", "50")
    with pytest.raises(Conflict, match=r"\(sender-below-zero\)"):
        transfer(people, "10.01")


def test_a_failure_after_the_legs_are_written_leaves_no_half_transfer(
    people: Installation, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = trx_count(people)
    post = financial.ledger._post
    written: list[list[AccountTrx]] = []

    def failing_after_post(*args: object, **kwargs: object) -> list[AccountTrx]:
        written.append(post(*args, **kwargs))  # type: ignore[arg-type]
        raise RuntimeError("the database went away before the commit")

    monkeypatch.setattr(financial.ledger, "_post", failing_after_post)
    with pytest.raises(RuntimeError, match="before the commit"):
        transfer(people, "3")
    assert [len(rows) for rows in written] == [2], "both legs were written before the failure"
    assert trx_count(people) == before
    assert balance(people, "USER", "janet") == D("10")
    assert balance(people, "USER", "rijk") == D("0")
    with people.db.read() as session:
        assert financial.verify(session) == []


# --- command-line services ------------------------------------------------------------------------


def test_shared_accounts_credit_limits_and_details(people: Installation) -> None:
    with people.db.transaction() as session:
        accounting.add_shared_account(session, "Physics")
        accounting.add_shared_account(session, "Physics Lab", parent="Physics")
        accounting.set_credit_limit(session, "SHARED", "Physics", "25.5")
        accounting.set_credit_limit(session, "USER", "s123456", "default")
    set_config(people, {"financial.credit-limit.default": "3"})
    with people.db.read() as session:
        lab = accounting.account_details(
            session, "SHARED", "Physics Lab", default_credit_limit=D("3")
        )
        rijk = accounting.account_details(session, "USER", "S123456", default_credit_limit=D("3"))
        physics = accounting.account_details(
            session, "SHARED", "Physics", default_credit_limit=D("3")
        )
        assert lab.account.parent is not None and lab.account.parent.name == "Physics"
    assert (physics.credit_limit, rijk.credit_limit, lab.credit_limit) == (D("25.5"), D(3), D(0))
    with pytest.raises(InvalidInput, match="negative"), people.db.transaction() as session:
        accounting.set_credit_limit(session, "USER", "janet", "-1")
    with pytest.raises(InvalidInput, match="top-level"), people.db.transaction() as session:
        accounting.add_shared_account(session, "Deeper", parent="Physics Lab")
    with pytest.raises(Conflict, match="already exists"), people.db.transaction() as session:
        accounting.add_shared_account(session, "Physics")


def test_rename_user_account_keeps_its_ledger(people: Installation) -> None:
    with people.db.transaction() as session:
        accounting.rename_user_account(session, "janet", "erased-1")
        accounting.rename_user_account(session, "nobody", "erased-2")
    assert balance(people, "USER", "erased-1") == D("10")
    with pytest.raises(financial.AccountNotFound), people.db.read() as session:
        financial.get_account(session, AccountType.USER, "janet")


# --- error translation ----------------------------------------------------------------------------


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _rules_raised(path: Path, name: str) -> set[str]:
    """The rule names `name(...)` is called with in a module's source."""
    rules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == name
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            rules.add(node.args[0].value)
    return rules


def test_every_financial_error_is_translated_keeping_its_message() -> None:
    concrete = [cls for cls in _subclasses(financial.FinancialError) if not inspect.isabstract(cls)]
    assert concrete
    for cls in concrete:
        assert cls in accounting.FINANCIAL_ERRORS, f"{cls.__name__} has no printsrv error"
        target = accounting.FINANCIAL_ERRORS[cls]
        assert issubclass(target, errors.PrintsrvError)
        assert target in ERROR_TABLE, f"{target.__name__} has no row in the error table"


def test_every_transfer_rule_has_its_error_and_status() -> None:
    raised = _rules_raised(Path(inspect.getfile(financial.ledger)), "TransferRefused")
    raised |= _rules_raised(Path(inspect.getfile(accounting)), "TransferRefused")
    assert {"self", "sender-below-zero", "recipient-unknown"} <= raised
    assert raised == set(accounting.TRANSFER_RULES)
    for rule in raised:
        error = accounting.translate(financial.TransferRefused(rule, "because"))
        assert error.reason == rule and f"({rule})" in error.message
        assert 400 <= status_for(error) < 500


def test_translated_errors_keep_the_message_and_cause() -> None:
    original = financial.AccountNotFound("USER", "rijk")
    with pytest.raises(NotFound) as caught, accounting.financial_errors():
        raise original
    assert caught.value.message == "No USER account named 'rijk'"
    assert caught.value.__cause__ is original
