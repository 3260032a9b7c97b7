"""The everyday commands of issue 14 item 10, with CliRunner on both back-ends: user delete,
erase, passwd and set, user alias remove, group delete, group member remove, queue delete and
account adjust. Each refusal exits non-zero and changes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

import financial
from financial.schema import AccountTrx
from printsrv.accounts import service as accounting
from printsrv.cli import main
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.people.models import User, UserAlias, UserGroup, UserGroupMember
from printsrv.platform.environment import Environment
from printsrv.printing import queues
from printsrv.printing.models import PrintQueue

ADMIN = accounting.admin_actor("test")


def run(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    return result.exit_code, result.output


def ok(*args: str, input: str | None = None) -> str:
    code, output = run(*args, input=input)
    assert code == 0, output
    return output


@pytest.fixture(autouse=True)
def _env(process_env: Environment) -> None:
    """Every command here runs against this test's installation."""


@pytest.fixture
def people(installation: Installation) -> Installation:
    """janet (alias s1, in staff, 10.00 on her account) and rijk; group staff; queue lab."""
    with installation.db.transaction() as session:
        users.add_user(session, "janet", full_name="Janet Jones", email="janet@example.edu")
        users.add_user(session, "rijk")
        users.add_alias(session, "s1", "janet")
        users.add_group(session, "staff")
        users.add_member(session, "staff", "janet")
        accounting.change_balance(
            session,
            account_type="USER",
            name="janet",
            amount=Decimal("10.00"),
            adjust=True,
            comment="start",
            actor=ADMIN,
        )
        queues.add_queue(session, "lab")
    return installation


def snapshot(installation: Installation) -> dict[str, object]:
    """Everything the commands here could change, to show a refusal changed nothing."""
    with installation.db.read() as session:
        return {
            "users": sorted(
                (
                    u.user_name,
                    u.full_name,
                    u.email,
                    u.card_number,
                    u.pin_hash,
                    u.password_hash,
                    u.deleted_at is None,
                )
                for u in session.scalars(select(User))
            ),
            "aliases": sorted((a.alias, a.user_id) for a in session.scalars(select(UserAlias))),
            "groups": sorted(session.scalars(select(UserGroup.name))),
            "members": sorted(
                session.execute(select(UserGroupMember.group_id, UserGroupMember.user_id)).all()
            ),
            "queues": sorted(session.scalars(select(PrintQueue.name))),
            "ledger": session.scalar(select(func.count()).select_from(AccountTrx)),
            "balances": sorted((a.label, a.balance) for a in financial.list_accounts(session)),
        }


def test_every_new_verb_has_help() -> None:
    for verb in (
        ["user", "delete"],
        ["user", "erase"],
        ["user", "passwd"],
        ["user", "set"],
        ["user", "alias", "remove"],
        ["group", "delete"],
        ["group", "member", "remove"],
        ["queue", "delete"],
        ["account", "adjust"],
    ):
        output = ok(*verb, "--help")
        assert "Usage:" in output, verb
        # A sentence of its own, not just the usage line.
        assert len(output.split("\n\n")[1].strip()) > 20, verb


def test_user_delete_is_logical(people: Installation) -> None:
    assert ok("user", "delete", "S1").strip() == "User 'janet' deleted"
    assert "janet" not in ok("user", "list")
    with people.db.read() as session:
        kept = users.find_user(session, "janet", include_deleted=True)
        assert kept is not None and kept.deleted_at is not None
        # The history stays: her account and its ledger are untouched.
        assert accounting.balance_of(session, "USER", "janet") == Decimal("10.00")
    before = snapshot(people)
    code, output = run("user", "delete", "janet")
    assert code == 1 and "User 'janet' does not exist" in output
    code, output = run("user", "delete", "nobody")
    assert code == 1 and "User 'nobody' does not exist" in output
    assert snapshot(people) == before


def test_user_erase_asks_then_anonymises(people: Installation) -> None:
    before = snapshot(people)
    code, output = run("user", "erase", "janet", input="n\n")
    assert code == 1 and "Erase user 'janet'" in output and "Aborted" in output
    code, output = run("user", "erase", "janet")  # no answer at all: no
    assert code == 1
    code, output = run("user", "erase", "nobody", "--yes")
    assert code == 1 and "User 'nobody' does not exist" in output
    assert snapshot(people) == before

    output = ok("user", "erase", "s1", input="y\n")
    assert "User 'janet' erased" in output
    with people.db.read() as session:
        assert users.find_user(session, "janet", include_deleted=True) is None
        assert users.find_user(session, "s1", include_deleted=True) is None
        (erased,) = session.scalars(select(User).where(User.user_name.like("erased-%")))
        assert (erased.full_name, erased.email, erased.deleted_at is not None) == ("", "", True)
        labels = [a.label for a in financial.list_accounts(session, account_type="USER")]
        assert "USER/janet" not in labels and f"USER/{erased.user_name}" in labels
        assert accounting.balance_of(session, "USER", erased.user_name) == Decimal("10.00")
    assert "janet" not in ok("group", "member", "list", "staff")
    # A user deleted before can still be erased.
    ok("user", "delete", "rijk")
    assert "User 'rijk' erased" in ok("user", "erase", "rijk", "--yes")


def test_user_passwd_reads_one_piped_line(people: Installation) -> None:
    # A terminal is asked twice (tests/e2e/test_setup_traps.py); piped input is one line.
    code, output = run("user", "passwd", "janet", input="short\n")
    assert code != 0 and "shorter than 8 characters" in output
    with people.db.read() as session:
        assert users.get_user(session, "janet").password_hash is None
    output = ok("user", "passwd", "s1", input="good-secret-1\nignored-second-line\n")
    assert "Password of user 'janet' set" in output
    assert "good-secret-1" not in output
    with people.db.read() as session:
        assert users.check_password(session, "janet", "good-secret-1") is not None
    code, output = run("user", "passwd", "nobody", input="good-secret-1\ngood-secret-1\n")
    assert code == 1 and "User 'nobody' does not exist" in output


def test_user_set_fields_card_and_pin(people: Installation) -> None:
    output = ok(
        "user", "set", "janet", "--full-name", "Janet Q. Jones", "--email", "jq@example.edu",
        "--card", "0A1B2C", "--pin", input="4711\n4711\n",
    )  # fmt: skip
    assert "full name, email, card, PIN changed" in output
    assert "4711" not in output.replace("4711\n4711", "")  # never echoed back
    with people.db.read() as session:
        janet = users.get_user(session, "janet")
        assert (janet.full_name, janet.email, janet.card_number) == (
            "Janet Q. Jones",
            "jq@example.edu",
            "0A1B2C",
        )
        # A keyed hash, not the digits.
        assert janet.pin_hash and "4711" not in janet.pin_hash
        assert people.hasher.matches("4711", janet.pin_hash)

    before = snapshot(people)
    # Another user's card: refused without saying whose it is.
    code, output = run("user", "set", "rijk", "--card", "0A1B2C")
    assert code == 1 and "is taken by another user" in output and "janet" not in output
    for pin in ("123", "123456789", "12a4", "١٢٣٤"):
        code, output = run("user", "set", "rijk", "--pin", input=f"{pin}\n{pin}\n")
        assert code == 1 and "PIN must be 4 to 8 digits" in output, pin
    code, output = run("user", "set", "rijk")
    assert code == 2 and "Nothing to change" in output
    code, output = run("user", "set", "nobody", "--full-name", "X")
    assert code == 1 and "User 'nobody' does not exist" in output
    assert snapshot(people) == before

    ok("user", "set", "janet", "--card", "", "--no-pin")
    with people.db.read() as session:
        janet = users.get_user(session, "janet")
        assert (janet.card_number, janet.pin_hash) == (None, None)


def test_user_alias_remove(people: Installation) -> None:
    assert "Alias 's1' removed (it meant user 'janet')" in ok("user", "alias", "remove", "S1")
    code, output = run("user", "show", "s1")
    assert code == 1
    before = snapshot(people)
    code, output = run("user", "alias", "remove", "s1")
    assert code == 1 and "Alias 's1' does not exist" in output
    code, output = run("user", "alias", "remove", "janet")  # a user, not an alias
    assert code == 1 and "Alias 'janet' does not exist" in output
    assert snapshot(people) == before
    assert "janet" in ok("user", "list")


def test_group_member_remove_and_group_delete(people: Installation) -> None:
    assert "User 's1' removed from group 'staff'" in ok("group", "member", "remove", "staff", "s1")
    assert ok("group", "member", "list", "staff").strip() == ""
    before = snapshot(people)
    code, output = run("group", "member", "remove", "staff", "janet")
    assert code == 1 and "User 'janet' is not a member of group 'staff'" in output
    code, output = run("group", "member", "remove", "nogroup", "janet")
    assert code == 1 and "Group 'nogroup' does not exist" in output
    code, output = run("group", "member", "remove", "staff", "nobody")
    assert code == 1 and "User 'nobody' does not exist" in output
    assert snapshot(people) == before

    ok("group", "member", "add", "staff", "rijk")
    assert "Group 'staff' deleted" in ok("group", "delete", "STAFF")
    assert "staff" not in ok("group", "list")
    assert "rijk" in ok("user", "list")  # members stay users
    with people.db.read() as session:
        # Its GROUP account and ledger stay, as with JSON-RPC deleteUserGroup.
        assert financial.get_account(session, financial.AccountType.GROUP, "staff") is not None
    before = snapshot(people)
    code, output = run("group", "delete", "staff")
    assert code == 1 and "Group 'staff' does not exist" in output
    assert snapshot(people) == before


def test_queue_delete(people: Installation) -> None:
    assert "Queue 'lab' deleted" in ok("queue", "delete", "LAB")
    assert "lab" not in ok("queue", "list")
    before = snapshot(people)
    code, output = run("queue", "delete", "lab")
    assert code == 1 and "Queue 'lab' does not exist" in output
    code, output = run("queue", "delete", "webservice")
    assert code == 1 and "reserved and cannot be deleted" in output
    code, output = run("queue", "delete", "../etc")
    assert code == 1 and "Queue name" in output
    assert snapshot(people) == before
    assert "webservice" in ok("queue", "list")


def test_account_adjust_writes_one_adjust_row(people: Installation) -> None:
    output = ok("account", "adjust", "s1", "2.50", "--comment", "top-up at the desk")
    assert "2.500000 adjusted, balance 12.500000 EUR" in output
    # A negative amount is an AMOUNT, not an option.
    output = ok("account", "adjust", "janet", "-1.25", "--comment", "wrong print")
    assert "balance 11.250000 EUR" in output
    ok("account", "add-shared", "Physics")
    ok("account", "adjust", "Physics", "5", "--type", "SHARED", "--comment", "budget")
    ok("account", "adjust", "staff", "1.000001", "--type", "group", "--comment", "exact")
    with people.db.read() as session:
        janet = financial.get_account(session, financial.AccountType.USER, "janet")
        rows = financial.latest_transactions(session, janet, 2)
        assert [(r.trx_type, r.amount, r.comment) for r in rows] == [
            ("ADJUST", Decimal("-1.25"), "wrong print"),
            ("ADJUST", Decimal("2.50"), "top-up at the desk"),
        ]
        assert rows[0].actor_kind == "admin" and rows[0].actor_name.startswith("cli ")
        assert isinstance(rows[0].amount, Decimal)
        physics = financial.get_account(session, financial.AccountType.SHARED, "Physics")
        staff = financial.get_account(session, financial.AccountType.GROUP, "staff")
        assert (physics.balance, staff.balance) == (Decimal("5"), Decimal("1.000001"))
    assert "ledger OK" in ok("financial", "verify")

    before = snapshot(people)
    for amount in ("1e3", "0.1234567", "NaN", "+1", "1,50", ""):
        code, output = run("account", "adjust", "janet", amount, "--comment", "x")
        assert code == 2 and "AMOUNT" in output, amount
    code, output = run("account", "adjust", "janet", "0", "--comment", "x")
    assert code == 1 and "zero" in output
    code, output = run("account", "adjust", "nobody", "1", "--comment", "x")
    assert code == 1 and "No USER account named 'nobody'" in output
    code, output = run("account", "adjust", "Nowhere", "1", "--type", "SHARED", "--comment", "x")
    assert code == 1 and "Nowhere" in output
    code, output = run("account", "adjust", "janet", "1")
    assert code == 2 and "--comment" in output
    code, output = run("account", "adjust", "janet", "1", "--comment", "  ")
    assert code == 2 and "say why" in output
    code, output = run("account", "adjust", "janet", "1", "--comment", "x" * 1001)
    assert code == 1 and "longer than 1000" in output
    assert snapshot(people) == before
