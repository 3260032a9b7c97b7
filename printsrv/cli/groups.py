"""`printsrv group ...`: groups and their members."""

from __future__ import annotations

from collections.abc import Callable

import click
from sqlalchemy.orm import Session

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
