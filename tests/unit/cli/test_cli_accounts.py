"""`printsrv account ...` and `printsrv financial verify` (printsrv/cli/accounts.py), CliRunner."""

from __future__ import annotations

from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import update

import financial
from printsrv.accounts import service as accounting
from printsrv.cli import main
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.platform.environment import Environment

ADMIN = accounting.admin_actor("admin")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def ok(*args: str) -> str:
    code, output = run(*args)
    assert code == 0, output
    return output


@pytest.fixture(autouse=True)
def _env(process_env: Environment) -> None:
    """Every command here runs against this test's installation."""


@pytest.fixture
def janet(installation: Installation) -> Installation:
    with installation.db.transaction() as session:
        users.add_user(session, "janet")
        users.add_alias(session, "s1", "janet")
        for amount, comment in (("9.26", "top-up"), ("-1.5", "first\nprint")):
            accounting.change_balance(
                session,
                account_type="USER",
                name="janet",
                amount=Decimal(amount),
                adjust=True,
                comment=comment,
                actor=ADMIN,
            )
    return installation


def test_every_verb_has_help() -> None:
    for verb in (
        ["account"],
        ["account", "add-shared"],
        ["account", "list"],
        ["account", "show"],
        ["account", "credit-limit"],
        ["financial"],
        ["financial", "verify"],
    ):
        assert "Usage:" in ok(*verb, "--help"), verb


def test_shared_accounts_with_a_parent_are_listed(installation: Installation) -> None:
    assert ok("account", "add-shared", "Physics") == "Account SHARED/Physics added\n"
    assert "under SHARED/Physics" in ok(
        "account", "add-shared", "Physics Lab", "--parent", "Physics"
    )
    listing = ok("account", "list", "--type", "shared").splitlines()
    assert listing[0].split() == [
        "TYPE",
        "NAME",
        "BALANCE",
        "CREDIT",
        "LIMIT",
        "DISABLED",
        "PARENT",
    ]
    assert listing[1].split() == ["SHARED", "Physics", "0.000000", "none", "no"]
    assert listing[2].split() == ["SHARED", "Physics", "Lab", "0.000000", "none", "no", "Physics"]


def test_add_shared_refusals_are_one_line_and_exit_1(installation: Installation) -> None:
    ok("account", "add-shared", "Physics")
    assert run("account", "add-shared", "Physics") == (
        1,
        "Error: A SHARED account named 'Physics' already exists\n",
    )
    code, output = run("account", "add-shared", "Lab", "--parent", "Chemistry")
    assert code == 1 and "No SHARED account named 'Chemistry'" in output


def test_list_shows_every_type(janet: Installation) -> None:
    with janet.db.transaction() as session:
        users.add_group(session, "staff")
    listing = ok("account", "list")
    assert "GROUP  staff" in listing and "USER   janet  7.760000" in listing
    assert "janet" not in ok("account", "list", "--type", "GROUP")


def test_show_prints_balance_credit_and_latest_rows(janet: Installation) -> None:
    shown = ok("account", "show", "USER", "S1")
    assert "account:  USER/janet" in shown
    assert "balance:  7.760000 EUR" in shown
    assert "credit:   none (may go to 0.000000)" in shown  # never "-0"
    rows = shown.split("DATE (UTC)")[1].splitlines()[1:]
    assert "ADJUST  -1.500000  7.760000       first print  admin:admin" in rows[0]
    assert "top-up" in rows[1]
    assert (
        len(
            ok("account", "show", "user", "janet", "--rows", "1")
            .split("DATE (UTC)")[1]
            .splitlines()
        )
        == 2
    )


def test_show_of_an_unknown_account_fails(installation: Installation) -> None:
    code, output = run("account", "show", "SHARED", "nope")
    assert code == 1 and output == "Error: No SHARED account named 'nope'\n"
    code, output = run("account", "show", "PERSON", "nope")
    assert code == 2 and "Invalid value for 'TYPE'" in output


def test_credit_limit_none_default_and_amount(janet: Installation) -> None:
    assert ok("account", "credit-limit", "USER", "janet", "25.50") == (
        "Credit limit of USER/janet: 25.500000\n"
    )
    assert "default" in ok("account", "credit-limit", "USER", "s1", "default")
    ok("config", "set", "financial.credit-limit.default", "3")
    assert "credit:   default (may go to -3.000000)" in ok("account", "show", "USER", "janet")
    assert "none" in ok("account", "credit-limit", "USER", "janet", "none")
    for bad, reason in (("-1", "negative"), ("lots", "not a decimal"), ("1e2", "not a decimal")):
        code, output = run("account", "credit-limit", "USER", "janet", "--", bad)
        assert code == 1 and output.startswith("Error: ") and reason in output, output
    with janet.db.read() as session:
        assert financial.get_account(session, "USER", "janet").credit_limit_policy == "NONE"


def test_verify_is_quiet_and_zero_on_a_sound_ledger(janet: Installation) -> None:
    assert ok("financial", "verify") == (
        "ledger OK: 1 accounts, every balance equals its transactions\n"
    )


def test_verify_lists_every_problem_and_exits_1(janet: Installation) -> None:
    with janet.db.transaction() as session:
        account = financial.get_account(session, "USER", "janet")
        # Tamper with the balance behind the ledger's back.
        session.execute(
            update(financial.Account)
            .where(financial.Account.id == account.id)
            .values(balance=Decimal("100"))
        )
    code, output = run("financial", "verify")
    assert code == 1
    assert "balance: account USER/janet: balance 100.000000 != ledger sum 7.760000" in output
    assert "last-row: account USER/janet" in output
    assert "2 problem(s) found in the ledger" in output
