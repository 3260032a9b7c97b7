"""`printsrv config ...`: the config properties."""

from __future__ import annotations

import sys

import click

from printsrv.cli.common import PrintsrvGroup, print_table, with_installation
from printsrv.operations.installation import Installation
from printsrv.platform import properties as config_service


@click.group(cls=PrintsrvGroup)
def config() -> None:
    """Read and change config properties."""


@config.command("list")
@with_installation
def config_list(installation: Installation) -> None:
    """List every property with its value (secrets masked) and what it does."""
    with installation.db.read() as session:
        shown = config_service.describe(session)
    print_table(
        [(p.name, value, p.help) for p, value in shown], ("PROPERTY", "VALUE", "DESCRIPTION")
    )


@config.command("get")
@click.argument("key")
@with_installation
def config_get(installation: Installation, key: str) -> None:
    """Print one property's value (a secret shows as [secure] or (not set))."""
    with installation.db.read() as session:
        [(_, value)] = config_service.describe(session, [key])
    click.echo(value)


@config.command("set")
@click.argument("key")
@click.argument("value", required=False)
@with_installation
def config_set(installation: Installation, key: str, value: str | None) -> None:
    """Set a property. Leave VALUE out to type it at a prompt (hidden and asked twice for
    secrets) or pipe it on standard input, so that a secret stays out of the shell history.
    A secret is never set empty (unset it with `printsrv config unset KEY`); the admin
    password and API keys need 12 characters or more."""
    prop = config_service.get_definition(key)
    if value is None:
        if sys.stdin.isatty():
            value = click.prompt(
                key,
                hide_input=prop.secret,
                confirmation_prompt=prop.secret,
                default="",
                show_default=False,
            )
        else:
            value = sys.stdin.readline().rstrip("\r\n")  # piped: one line, asked once
    if prop.secret and not value:
        # Pressing Enter at the prompt must never unset the admin password or a key.
        raise click.ClickException(
            f"{key}: the value is empty, nothing changed. "
            f"To unset it, use: printsrv config unset {key}"
        )
    with installation.db.transaction() as session:
        config_service.set_property(session, key, value, hasher=installation.hasher, actor="cli")
    installation.config.refresh()  # runs the change hooks now (the initial password file)
    click.echo(f"{key} set" if not prop.secret else f"{key} set (stored as a keyed hash)")


@config.command("unset")
@click.argument("key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_installation
def config_unset(installation: Installation, key: str, yes: bool) -> None:
    """Put a property back to its default; a secret becomes unset. Unsetting the admin
    password locks the REST admin services (systemStatus: SETUP), unsetting an API key
    locks out its callers. Asks first, unless --yes."""
    prop = config_service.get_definition(key)
    what = "unset" if prop.secret else f"back to its default ({prop.default or 'void'})"
    if not yes:
        click.confirm(f"Set {key} {what}?", abort=True)
    with installation.db.transaction() as session:
        changed = config_service.unset_property(session, key, actor="cli")
    installation.config.refresh()
    click.echo(f"{key} {what}" if changed else f"{key} was not set; nothing changed")
