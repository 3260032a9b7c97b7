"""`printsrv group ...`: groups, their members and their scheduled quotas."""

from __future__ import annotations

from collections.abc import Callable

import click
from sqlalchemy.orm import Session

from financial import to_wire
from printsrv.accounts import quotas
from printsrv.cli.accounts import _cli_actor
from printsrv.cli.common import PrintsrvGroup, print_table, with_installation
from printsrv.operations.installation import Installation
from printsrv.people import users as user_service


@click.group(cls=PrintsrvGroup)
def group() -> None:
    """Manage user groups."""


@group.command("add")
@click.argument("name")
@with_installation
def group_add(installation: Installation, name: str) -> None:
    """Add a group."""
    with installation.db.transaction() as session:
        created = user_service.add_group(session, name)
    click.echo(f"Group {created.name!r} added")


@group.command("list")
@with_installation
def group_list(installation: Installation) -> None:
    """List groups with their member counts."""
    with installation.db.read() as session:
        rows = [(g.name, str(g.members)) for g in user_service.list_groups(session)]
    print_table(rows, ("GROUP", "MEMBERS"))


@group.command("delete")
@click.argument("name")
@with_installation
def group_delete(installation: Installation, name: str) -> None:
    """Delete group NAME, as JSON-RPC deleteUserGroup does: its members stay users, and it
    leaves every printer's access lists. Its GROUP account and ledger stay (`printsrv
    account show GROUP NAME`)."""
    with installation.db.transaction() as session:
        user_service.delete_group(session, name)
    click.echo(f"Group {name.strip().lower()!r} deleted")


@group.group("member", cls=PrintsrvGroup)
def group_member() -> None:
    """Group membership."""


def _membership_command(
    verb: str, change: Callable[[Session, str, str], object], done: str, help_text: str
) -> None:
    """`group member add|remove GROUP USER`: one call of `change`, then "User 'u' <done> 'g'"."""

    def membership(installation: Installation, group_name: str, user_name: str) -> None:
        with installation.db.transaction() as session:
            change(session, group_name, user_name)
        click.echo(f"User {user_name.strip().lower()!r} {done} {group_name.strip().lower()!r}")

    command = click.argument("user_name", metavar="USER")(with_installation(membership))
    group_member.command(verb, help=help_text)(
        click.argument("group_name", metavar="GROUP")(command)
    )


_membership_command("add", user_service.add_member, "added to group", "Add USER to GROUP.")
_membership_command(
    "remove",
    user_service.remove_member,
    "removed from group",
    "Take USER (a name or an alias) out of GROUP; their accounts are untouched.",
)


@group_member.command("list")
@click.argument("group_name", metavar="GROUP")
@with_installation
def group_member_list(installation: Installation, group_name: str) -> None:
    """List the members of GROUP."""
    with installation.db.read() as session:
        for name in user_service.list_members(session, group_name):
            click.echo(name)


_PER = {"daily": "day", "weekly": "week (from Monday)", "monthly": "month (from the 1st)"}


@group.command("quota")
@click.argument("group_name", metavar="GROUP")
@click.option("--amount", help="Credit per member and period, e.g. 5.00.")
@click.option("--period", metavar="daily|weekly|monthly", help="How often the credit comes.")
@click.option(
    "--max-accumulation",
    help="A credit never lifts a balance above this (it is reduced, or skipped).",
)
@click.option("--off", is_flag=True, help="Stop the group's quota.")
@with_installation
def group_quota(
    installation: Installation,
    group_name: str,
    amount: str | None,
    period: str | None,
    max_accumulation: str | None,
    off: bool,
) -> None:
    """Show GROUP's scheduled quota; with --amount and --period, set it (every member gets
    the amount once per period, from the first period that starts after now, at 00:00 in
    system.time-zone); with --off, stop it."""
    zone = installation.config.snapshot()["system.time-zone"]
    if off:
        if amount is not None or period is not None or max_accumulation is not None:
            raise click.UsageError("--off takes no --amount, --period or --max-accumulation")
        with installation.db.transaction() as session:
            had = quotas.remove_group_quota(session, group_name, time_zone=zone)
        name = group_name.strip().lower()
        click.echo(f"Quota of group {name!r} stopped" if had else f"Group {name!r} has no quota")
        return
    if amount is None and period is None and max_accumulation is None:
        with installation.db.read() as session:
            view = quotas.get_group_quota(session, group_name, time_zone=zone)
        if view is None:
            click.echo(f"Group {group_name.strip().lower()!r} has no quota")
            return
        _show(view, zone)
        return
    terms = quotas.parse_terms(
        amount, period, max_accumulation, names=("--amount", "--period", "--max-accumulation")
    )
    with installation.db.transaction() as session:
        view = quotas.set_group_quota(
            session, group_name, terms, actor=str(_cli_actor()), time_zone=zone
        )
    _show(view, zone)


def _show(view: quotas.QuotaView, zone: str) -> None:
    cap = view.terms.max_accumulation
    rows = [
        ("group", view.group),
        ("quota", f"{to_wire(view.terms.amount)} per {_PER[view.terms.period]}"),
        ("max-accumulation", to_wire(cap) if cap is not None else "none"),
        ("set", f"{view.set_at:%Y-%m-%d %H:%M} UTC by {view.set_by}"),
        ("next credit", f"{quotas.local_time(view.next_period, zone)} {zone}"),
    ]
    for label, value in rows:
        click.echo(f"{label + ':':17} {value}")
