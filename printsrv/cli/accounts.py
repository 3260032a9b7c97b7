"""`printsrv account ...` and `printsrv financial verify`: accounts and the ledger."""

from __future__ import annotations

import os
import sys

import click

from financial import Account, to_wire
from financial.errors import InvalidAmount
from financial.money import money
from printsrv.accounts import service as accounting
from printsrv.cli.common import PrintsrvGroup, print_table, with_installation
from printsrv.operations.installation import Installation

ACCOUNT_TYPES = click.Choice(["USER", "GROUP", "SHARED"], case_sensitive=False)


def _credit_limit(account: Account) -> str:
    if account.credit_limit_policy == "INDIVIDUAL" and account.credit_limit is not None:
        return to_wire(account.credit_limit)
    return account.credit_limit_policy.lower()


@click.group(cls=PrintsrvGroup)
def account() -> None:
    """Accounts: USER (one per user), GROUP (one per group), SHARED (departments, projects)."""


@account.command("add-shared")
@click.argument("name")
@click.option("--parent", help="A top-level SHARED account to put the new one under.")
@with_installation
def account_add_shared(installation: Installation, name: str, parent: str | None) -> None:
    """Add a SHARED account NAME, with balance zero and no credit."""
    with installation.db.transaction() as session:
        label = accounting.add_shared_account(session, name, parent=parent).label
    click.echo(f"Account {label} added" + (f" under SHARED/{parent}" if parent else ""))


@account.command("list")
@click.option("--type", "account_type", type=ACCOUNT_TYPES, help="Only accounts of this type.")
@with_installation
def account_list(installation: Installation, account_type: str | None) -> None:
    """List accounts with their balance, credit limit and state."""
    with installation.db.read() as session:
        rows = [
            (
                a.account_type,
                a.name,
                to_wire(a.balance),
                _credit_limit(a),
                "yes" if a.disabled else "no",
                a.parent.name if a.parent else "",
            )
            for a in accounting.list_accounts(session, account_type)
        ]
    print_table(rows, ("TYPE", "NAME", "BALANCE", "CREDIT LIMIT", "DISABLED", "PARENT"))


@account.command("show")
@click.argument("account_type", metavar="TYPE", type=ACCOUNT_TYPES)
@click.argument("name")
@click.option("--rows", default=10, show_default=True, type=click.IntRange(0, 1000))
@with_installation
def account_show(installation: Installation, account_type: str, name: str, rows: int) -> None:
    """Show one account (a USER NAME may be an alias): balance and latest ledger rows."""
    settings = accounting.settings_of(installation.config.snapshot())
    with installation.db.read() as session:
        details = accounting.account_details(
            session,
            account_type,
            name,
            default_credit_limit=settings.default_credit_limit,
            limit=rows,
        )
        found = details.account
        fields = [
            ("account", found.label),
            ("balance", f"{to_wire(found.balance)} {settings.currency}"),
            ("credit", f"{_credit_limit(found)} (may go to {to_wire(-details.credit_limit)})"),
            ("disabled", "yes" if found.disabled else "no"),
            ("parent", found.parent.label if found.parent else ""),
            ("created", f"{found.created_at:%Y-%m-%d %H:%M} UTC"),
        ]
    for label, value in fields:
        click.echo(f"{label + ':':9} {value}")
    click.echo("")
    print_table(
        [
            (
                f"{trx.created_at:%Y-%m-%d %H:%M:%S}",
                trx.trx_type,
                to_wire(trx.amount),
                to_wire(trx.balance_after),
                " ".join(trx.comment.split()),
                f"{trx.actor_kind}:{trx.actor_name}",
            )
            for trx in details.latest
        ],
        ("DATE (UTC)", "TYPE", "AMOUNT", "BALANCE AFTER", "COMMENT", "ACTOR"),
    )


@account.command("credit-limit")
@click.argument("account_type", metavar="TYPE", type=ACCOUNT_TYPES)
@click.argument("name")
@click.argument("limit", metavar="none|default|AMOUNT")
@with_installation
def account_credit_limit(
    installation: Installation, account_type: str, name: str, limit: str
) -> None:
    """Set how far below zero an account may be charged: none, the default limit
    (financial.credit-limit.default) or an AMOUNT of its own."""
    with installation.db.transaction() as session:
        changed = accounting.set_credit_limit(session, account_type, name, limit)
        shown = _credit_limit(changed)
        label = changed.label
    click.echo(f"Credit limit of {label}: {shown}")


def _cli_actor() -> accounting.Actor:
    """Who a ledger row written from the command line names: the operating-system user."""
    import getpass

    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no login name, no passwd entry (a bare container)
        who = str(os.getuid())
    return accounting.admin_actor(f"cli {who}")


@account.command("adjust", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("amount")
@click.option("--comment", required=True, help="Why: kept on the ledger row.")
@click.option(
    "--type",
    "account_type",
    type=ACCOUNT_TYPES,
    default="USER",
    show_default=True,
    help="The kind of account NAME is.",
)
@with_installation
def account_adjust(
    installation: Installation, name: str, amount: str, comment: str, account_type: str
) -> None:
    """Add AMOUNT to account NAME's balance (a negative AMOUNT takes it off): a top-up or
    a correction, written as one ADJUST ledger row with --comment. A USER NAME may be an
    alias. No credit limit applies, and a disabled account can be settled."""
    # ignore_unknown_options lets "-1.25" through as AMOUNT instead of as an option.
    try:
        value = money(amount)
    except InvalidAmount as error:
        raise click.BadParameter(error.message, param_hint="AMOUNT") from None
    if not comment.strip():
        raise click.BadParameter(
            "say why: the comment stays on the ledger row", param_hint="--comment"
        )
    currency = accounting.settings_of(installation.config.snapshot()).currency
    with installation.db.transaction() as session:
        balance = accounting.change_balance(
            session,
            account_type=account_type.upper(),
            name=name,
            amount=value,
            adjust=True,
            comment=comment,
            actor=_cli_actor(),
        )
    click.echo(
        f"Account {account_type.upper()}/{name}: {to_wire(value)} adjusted, balance "
        f"{to_wire(balance)} {currency}"
    )


@click.group("financial", cls=PrintsrvGroup)
def financial_group() -> None:
    """The ledger as a whole."""


@financial_group.command("verify")
@with_installation
def financial_verify(installation: Installation) -> None:
    """Check that every balance equals the sum of its ledger and transfers are whole;
    print each problem and exit with status 1 if there is any."""
    with installation.db.read() as session:
        problems = accounting.verify_ledger(session)
        accounts = len(accounting.list_accounts(session))
    for problem in problems:
        click.echo(f"{problem.code}: {problem.message}")
    if problems:
        click.echo(f"{len(problems)} problem(s) found in the ledger", err=True)
        sys.exit(1)
    click.echo(f"ledger OK: {accounts} accounts, every balance equals its transactions")
