"""`printsrv user ...`: users, their passwords, PINs, UUIDs and aliases, the LDAP sync."""

from __future__ import annotations

import click

from printsrv.cli.common import (
    PrintsrvGroup,
    add_switches,
    ask_secret,
    print_listing,
    progress_reporter,
    with_installation,
)
from printsrv.operations.installation import Installation
from printsrv.people import users as user_service
from printsrv.people.models import User


@click.group(cls=PrintsrvGroup)
def user() -> None:
    """Manage users of the internal user source."""


@user.command("add")
@click.argument("name")
@click.option("--password", help="Password for the web app (or use --ask-password).")
@click.option(
    "--ask-password",
    is_flag=True,
    help="Prompt (hidden, twice) for the password, or read one line from standard input.",
)
@click.option("--full-name", default="", help="The person's full name.")
@click.option("--email", default="", help="The person's email address.")
@with_installation
def user_add(
    installation: Installation,
    name: str,
    password: str | None,
    ask_password: bool,
    full_name: str,
    email: str,
) -> None:
    """Add a user."""
    if ask_password:
        password = ask_secret("Password")
    with installation.db.transaction() as session:
        created = user_service.add_user(
            session, name, full_name=full_name, email=email, password=password
        )
    click.echo(f"User {created.user_name!r} added")


def _user_row(found: User) -> tuple[str, ...]:
    enabled = "yes" if found.enabled else "no"
    aliases = ", ".join(a.alias for a in found.aliases)
    return (found.user_name, found.full_name, found.email, enabled, aliases)


@user.command("list")
@with_installation
def user_list(installation: Installation) -> None:
    """List users."""
    header = ("USER", "FULL NAME", "EMAIL", "ENABLED", "ALIASES")
    print_listing(installation, user_service.list_users, _user_row, header)


@user.command("show")
@click.argument("name")
@with_installation
def user_show(installation: Installation, name: str) -> None:
    """Show one user (NAME may be an alias)."""
    with installation.db.read() as session:
        found = user_service.get_user(session, name)
        fields = [
            ("user name", found.user_name),
            ("full name", found.full_name),
            ("email", found.email),
            ("enabled", "yes" if found.enabled else "no"),
            ("password", "set" if found.password_hash else "not set"),
            (
                "uuid",
                f"set {found.uuid_created_at:%Y-%m-%d %H:%M} UTC"
                if found.uuid_created_at
                else "not set",
            ),
            ("aliases", ", ".join(a.alias for a in found.aliases)),
            ("groups", ", ".join(g.name for g in found.groups)),
            ("created", f"{found.created_at:%Y-%m-%d %H:%M} UTC"),
        ]
    for label, value in fields:
        click.echo(f"{label + ':':11} {value}")


@user.command("uuid")
@click.argument("name")
@click.option("--regenerate", is_flag=True, help="Issue a new UUID (the old one stops working).")
@with_installation
def user_uuid(installation: Installation, name: str, regenerate: bool) -> None:
    """The user's UUID credential for the REST user services.

    Only a keyed hash of it is stored, so it is shown once, when --regenerate issues it.
    """
    if regenerate:
        with installation.db.transaction() as session:
            credential = user_service.issue_uuid(session, name, hasher=installation.hasher)
        click.echo(credential)
        return
    with installation.db.read() as session:
        found = user_service.get_user(session, name)
    if found.uuid_created_at is None:
        click.echo(f"User {found.user_name!r} has no UUID; issue one with --regenerate")
    else:
        click.echo(
            f"User {found.user_name!r} has a UUID since {found.uuid_created_at:%Y-%m-%d %H:%M} "
            "UTC; only its hash is stored. Use --regenerate to issue a new one."
        )


add_switches(
    user,
    "User",
    user_service.set_enabled,
    lambda changed: changed.user_name,
    enable_help="Enable a user again.",
    disable_help="Disable a user: no login, no printing.",
)


@user.command("delete")
@click.argument("name")
@with_installation
def user_delete(installation: Installation, name: str) -> None:
    """Delete user NAME (or an alias's user) logically, as JSON-RPC deleteUser does: no
    login, no printing, no longer listed. Their documents, prints and ledger stay, and
    JSON-RPC addInternalUser with the same name restores them. `user erase` removes the
    personal data too."""
    with installation.db.transaction() as session:
        deleted = user_service.delete_user(session, name).user_name
    click.echo(f"User {deleted!r} deleted")


@user.command("erase")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_installation
def user_erase(installation: Installation, name: str, yes: bool) -> None:
    """Erase user NAME's personal data for good (a privacy-law request), as JSON-RPC
    eraseUser does: the user becomes an anonymous, deleted 'erased-N' with no name, email,
    password, UUID, card, PIN, aliases or groups; their USER account and ledger follow the
    anonymous name, so amounts and totals stay. Works on a deleted user too. Asks first,
    unless --yes."""
    with installation.db.read() as session:
        # Read first so the question names the user the alias means, and an unknown name
        # is refused before anyone is asked anything.
        target = user_service.get_user(session, name, include_deleted=True).user_name
    if not yes:
        click.confirm(
            f"Erase user {target!r}: personal data, aliases and memberships are removed "
            "and cannot be restored. Continue?",
            abort=True,
        )
    with installation.db.transaction() as session:
        anonymous = user_service.erase_user(session, target)
    click.echo(f"User {target!r} erased; their history now reads {anonymous!r}")


@user.command("passwd")
@click.argument("name")
@with_installation
def user_passwd(installation: Installation, name: str) -> None:
    """Set user NAME's web-app password: typed twice at a hidden prompt (or one line on
    standard input), so it stays out of the shell history."""
    with installation.db.read() as session:
        target = user_service.get_user(session, name).user_name  # refuse before prompting
    password = ask_secret(f"New password for {target}")
    with installation.db.transaction() as session:
        user_service.set_password(session, target, password)
    click.echo(f"Password of user {target!r} set")


@user.command("set")
@click.argument("name")
@click.option("--full-name", help="The person's full name.")
@click.option("--email", help='The person\'s email address ("" removes it).')
@click.option(
    "--card",
    "card_number",
    metavar="NUMBER",
    help='Card number for a card reader ("" removes it); no two users share a card.',
)
@click.option("--pin", "ask_pin", is_flag=True, help="Prompt (hidden, twice) for a 4-8 digit PIN.")
@click.option("--no-pin", is_flag=True, help="Remove the PIN.")
@with_installation
def user_set(
    installation: Installation,
    name: str,
    full_name: str | None,
    email: str | None,
    card_number: str | None,
    ask_pin: bool,
    no_pin: bool,
) -> None:
    """Change user NAME's full name, email, card number or PIN (the rules of JSON-RPC
    setUserProperties). The PIN is typed at a prompt, never on the command line, and
    stored only as a keyed hash."""
    if ask_pin and no_pin:
        raise click.UsageError("--pin and --no-pin contradict each other")
    if full_name is None and email is None and card_number is None and not (ask_pin or no_pin):
        raise click.UsageError("Nothing to change: give --full-name, --email, --card or --pin")
    with installation.db.read() as session:
        target = user_service.get_user(session, name).user_name  # refuse before prompting
    pin = "" if no_pin else None
    if ask_pin:
        pin = ask_secret(f"PIN for {target}")
    with installation.db.transaction() as session:
        user_service.set_user_fields(
            session,
            target,
            full_name=full_name,
            email=email,
            card_number=card_number,
            pin=pin,
            hasher=installation.hasher,
        )
    changed = [
        label
        for label, value in (
            ("full name", full_name),
            ("email", email),
            ("card", card_number),
            ("PIN", pin),
        )
        if value is not None
    ]
    click.echo(f"User {target!r}: {', '.join(changed)} changed")


@user.command("sync")
@click.option(
    "--delete-users", is_flag=True, help="Logically delete LDAP users that left the directory."
)
@with_installation
def user_sync(installation: Installation, delete_users: bool) -> None:
    """Synchronise users and groups from the LDAP user source (auth.method = ldap)."""
    from printsrv.people.sync import sync_users_and_groups

    with progress_reporter("user sync") as report:
        done = sync_users_and_groups(installation, delete_users=delete_users, progress=report)
    click.echo(done)


@user.group("alias", cls=PrintsrvGroup)
def user_alias() -> None:
    """Other names a user is known by."""


@user_alias.command("add")
@click.argument("alias")
@click.argument("name")
@with_installation
def user_alias_add(installation: Installation, alias: str, name: str) -> None:
    """Make ALIAS another name for user NAME."""
    with installation.db.transaction() as session:
        row = user_service.add_alias(session, alias, name)
        target = row.user.user_name
    click.echo(f"Alias {row.alias!r} -> user {target!r}")


@user_alias.command("remove")
@click.argument("alias")
@with_installation
def user_alias_remove(installation: Installation, alias: str) -> None:
    """Stop ALIAS meaning its user (the user stays)."""
    with installation.db.transaction() as session:
        target = user_service.remove_alias(session, alias)
    click.echo(f"Alias {alias.strip().lower()!r} removed (it meant user {target!r})")
