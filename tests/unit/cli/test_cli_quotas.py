"""`printsrv group quota` and `printsrv quota run` (printsrv/cli/groups.py, cli/quota.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from printsrv.accounts import quotas
from printsrv.accounts import service as accounting
from printsrv.accounts.models import GroupQuota
from printsrv.cli import main
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.platform.environment import Environment


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def ok(*args: str) -> str:
    code, output = run(*args)
    assert code == 0, output
    return output


@pytest.fixture(autouse=True)
def _env(process_env: Environment) -> Iterator[None]:
    """Every command here runs against this test's installation, on 1 March 2025 at 10:00."""
    quotas.set_clock(lambda: datetime(2025, 3, 1, 10, tzinfo=UTC))
    yield
    quotas.set_clock(None)


@pytest.fixture
def staff(installation: Installation) -> Installation:
    with installation.db.transaction() as session:
        users.add_group(session, "staff")
        for name in ("ann", "bob"):
            users.add_user(session, name)
            users.add_member(session, "staff", name)
    return installation


def quota_count(installation: Installation) -> int:
    with installation.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(GroupQuota)) or 0)


def test_every_verb_has_help() -> None:
    for verb in (["group", "quota"], ["quota"], ["quota", "run"]):
        assert "Usage:" in ok(*verb, "--help")


def test_set_show_and_stop_a_quota(staff: Installation) -> None:
    output = ok("group", "quota", "Staff", "--amount", "5.00", "--period", "weekly",
                "--max-accumulation", "20")  # fmt: skip
    assert "quota:            5.000000 per week (from Monday)" in output
    assert "max-accumulation: 20.000000" in output
    assert "next credit:      2025-03-03 00:00 UTC" in output
    shown = ok("group", "quota", "staff")
    assert "set:              2025-03-01 10:00 UTC by admin:cli " in shown
    assert ok("group", "quota", "staff", "--off") == "Quota of group 'staff' stopped\n"
    assert ok("group", "quota", "staff") == "Group 'staff' has no quota\n"
    assert ok("group", "quota", "staff", "--off") == "Group 'staff' has no quota\n"


def test_quota_run_credits_what_is_due_and_a_second_run_nothing(staff: Installation) -> None:
    ok("group", "quota", "staff", "--amount", "1.50", "--period", "daily")
    quotas.set_clock(None)
    output = ok("quota", "run", "--as-of", "2025-03-04T00:00:00+00:00")
    assert output == (
        "3 period(s) allocated: 6 credit(s), 9.000000 EUR in all, 0 skipped at "
        "max-accumulation\nnext period starts 2025-03-05 00:00 UTC\n"
    )
    assert ok("quota", "run", "--as-of", "2025-03-04T00:00:00+00:00").startswith(
        "0 period(s) allocated: 0 credit(s)"
    )
    assert ok("account", "show", "USER", "ann").count("QUOTA") == 3
    assert ok("financial", "verify").startswith("ledger OK")
    with staff.db.read() as session:
        assert accounting.user_balance(session, "bob") == Decimal("4.5")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--amount", "-5.00", "--period", "daily"], "'--amount' has value '-5.00'"),
        (["--amount", "five", "--period", "daily"], "'--amount'"),
        (["--amount", "5", "--period", "hourly"], "'--period' has value 'hourly'"),
        (["--period", "daily"], "'--amount' is missing"),
        (["--amount", "5"], "'--period' is missing"),
        (["--amount", "5", "--period", "daily", "--max-accumulation", "4"], "'--max-accumulation'"),
        (["--off", "--amount", "5"], "--off takes no --amount"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    staff: Installation, args: list[str], message: str
) -> None:
    code, output = run("group", "quota", "staff", *args)
    assert code != 0
    assert message in output
    assert quota_count(staff) == 0


def test_an_unknown_group_is_refused(staff: Installation) -> None:
    code, output = run("group", "quota", "nobody", "--amount", "5", "--period", "daily")
    assert code == 1
    assert "Group 'nobody' does not exist" in output
    assert run("group", "quota", "nobody")[1].endswith("Group 'nobody' does not exist\n")


@pytest.mark.parametrize("as_of", ["yesterday", "2025-02-30T00:00", "2999-01-01T00:00Z"])
def test_a_bad_as_of_is_refused_naming_it(staff: Installation, as_of: str) -> None:
    code, output = run("quota", "run", "--as-of", as_of)
    assert code == 1
    assert "Parameter '--as-of'" in output
