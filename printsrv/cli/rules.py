"""`printsrv rule ...` (print rules) and `printsrv document ...` (approving held prints)."""

from __future__ import annotations

from pathlib import Path

import click

from financial.money import to_wire
from printsrv.cli.common import PrintsrvGroup, print_table, with_installation
from printsrv.operations.installation import Installation
from printsrv.printing import approval
from printsrv.printing import rules as rule_service
from printsrv.printing.queues import RESERVED_QUEUE
from printsrv.printing.rule_trial import try_rules

CLI_ADMIN = "cli"


@click.group(cls=PrintsrvGroup)
def rule() -> None:
    """Print rules: refuse, hold for approval, or print grayscale/duplex what meets them."""


@rule.command("add")
@click.argument("name")
@click.option("--scope", required=True, help="all, printer:NAME, queue:NAME or group:NAME.")
@click.option(
    "--if", "condition", required=True, help="pages>N, copies>N, sheets>N, color or type:MIME."
)
@click.option("--then", "action", required=True, help="refuse, hold, grayscale or duplex.")
@click.option("--message", default="", help="What a refused or held user is told.")
@with_installation
def rule_add(
    installation: Installation, name: str, scope: str, condition: str, action: str, message: str
) -> None:
    """Add rule NAME: prints in --scope that meet --if get --then."""
    added = rule_service.add_rule(
        installation.db,
        name=name,
        scope=scope,
        condition=condition,
        action=action,
        message=message,
    )
    click.echo(
        f"Rule {added.name!r} added: {added.scope}, if {added.condition} then {added.action}"
    )


@rule.command("list")
@with_installation
def rule_list(installation: Installation) -> None:
    """List the rules, strongest action first (refuse, hold, then changes)."""
    rows = [
        (r.name, r.scope, r.condition, r.action, r.message)
        for r in rule_service.list_rules(installation.db)
    ]
    print_table(rows, ("RULE", "SCOPE", "IF", "THEN", "MESSAGE"))


@rule.command("remove")
@click.argument("name")
@with_installation
def rule_remove(installation: Installation, name: str) -> None:
    """Remove rule NAME."""
    rule_service.remove_rule(installation.db, name)
    click.echo(f"Rule {name!r} removed")


@rule.command("test")
@click.option("--user", "user_name", required=True, help="Who would print it.")
@click.option("--printer", required=True, help="The CUPS printer it would print on.")
@click.option("--queue", default=RESERVED_QUEUE, show_default=True, help="The queue it came by.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_installation
def rule_test(
    installation: Installation, user_name: str, printer: str, queue: str, file: Path
) -> None:
    """Show which rules FILE would meet and its price, without printing it."""
    trial = try_rules(installation, user_name=user_name, printer=printer, file=file, queue=queue)
    click.echo(f"{file.name}: {trial.pages} page(s), {trial.source_type}")
    for met in trial.matched:
        click.echo(f"  meets {met.name}: {met.scope}, if {met.condition} then {met.action}")
    if not trial.matched:
        click.echo("  meets no rule")
    options = ", ".join(f"{k}={v}" for k, v in sorted(trial.options.items()))
    click.echo(f"decision: {trial.decision}")
    click.echo(f"options: {options}")
    click.echo(f"price: {to_wire(trial.cost)}")


@click.group(cls=PrintsrvGroup)
def document() -> None:
    """Documents a print rule holds: approve (charge and print) or deny them."""


@document.command("waiting")
@click.option("--limit", default=100, show_default=True, help="Entries shown, oldest first.")
@click.option("--offset", default=0, show_default=True, help="Entries skipped first.")
@with_installation
def document_waiting(installation: Installation, limit: int, offset: int) -> None:
    """List the prints waiting for approval, the longest waiting first; REF is what
    `document approve` and `document deny` take."""
    with installation.db.read() as session:
        held = approval.list_waiting(session, limit=limit, offset=offset)
    rows = [
        (
            w.ref,
            w.user,
            w.title,
            str(w.pages),
            w.printer,
            w.queue,
            to_wire(w.cost),
            ",".join(w.rules),
            w.waiting_since.strftime("%Y-%m-%d %H:%M:%S"),
        )
        for w in held
    ]
    if not rows:
        click.echo("No print is waiting for approval")
        return
    print_table(
        rows,
        ("REF", "USER", "TITLE", "PAGES", "PRINTER", "QUEUE", "COST", "RULES", "SINCE (UTC)"),
    )


@document.command("approve")
@click.argument("ref")
@click.option("--comment", default="", help="Kept with the decision and shown to the user.")
@with_installation
def document_approve(installation: Installation, ref: str, comment: str) -> None:
    """Approve held document REF (its id or ext_id=...): charge it and print it."""
    decided = approval.approve_document(installation, ref, admin=CLI_ADMIN, comment=comment)
    if decided.job_state == "failed":
        raise click.ClickException(
            f"Document {decided.document_id} approved, but the printer refused it: "
            f"{decided.message} (nothing charged)"
        )
    click.echo(
        f"Document {decided.document_id} approved: printing on {decided.printer}, "
        f"charged {to_wire(decided.cost)}"
    )


@document.command("deny")
@click.argument("ref")
@click.option("--comment", default="", help="Why: kept with the decision, shown to the user.")
@with_installation
def document_deny(installation: Installation, ref: str, comment: str) -> None:
    """Deny held document REF (its id or ext_id=...); nothing is charged."""
    decided = approval.deny_document(installation, ref, admin=CLI_ADMIN, comment=comment)
    click.echo(f"Document {decided.document_id} denied")
