"""The `printsrv` command: serve, and manage config, users, groups, printers and queues.

Every command reads PRINTSRV_HOME and PRINTSRV_DATABASE_URL from the environment, brings
the schema up to date, and calls the same services as the APIs in one transaction.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from financial import Account, to_wire
from financial.errors import InvalidAmount
from financial.money import money
from printsrv.accounts import service as accounting
from printsrv.errors import PrintsrvError
from printsrv.migrations import upgrade_schema
from printsrv.models import PrintQueue
from printsrv.operations.installation import (
    FirstAdmin,
    Installation,
    NotInstalled,
    check_installed,
    ensure_first_admin,
    has_schema,
    open_installation,
)
from printsrv.people import users as user_service
from printsrv.platform import properties as config_service
from printsrv.platform.environment import describe_database, load_environment, with_env_file
from printsrv.printing import access as access_service
from printsrv.printing import printers as printer_service
from printsrv.printing import queues as queue_service
from printsrv.printing.context import cups_client, cups_server
from printsrv.printing.costs import CostModel

F = TypeVar("F", bound=Callable[..., Any])


class PrintsrvGroup(click.Group):
    """A click group that turns service errors into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PrintsrvError as error:
            raise click.ClickException(error.message) from None


def _use_service_env_file() -> None:
    """Take the variables of the service's environment file that the environment lacks.

    When PRINTSRV_HOME is not set and /etc/printsrv/printsrv.env (or PRINTSRV_ENV_FILE)
    exists, the command works on the service's installation with the service's settings
    (database, secret, CUPS server), as if run by the unit itself.
    """
    for key, value in with_env_file().items():
        if not os.environ.get(key):
            os.environ[key] = value


def _installation(*, create: bool = False) -> Installation:
    """The installation the environment names, opened and migrated.

    Only `serve`, `init` and `backup restore` pass create=True. Every other command
    refuses with NotInstalled (naming the home and database it looked at) when they were
    never set up, and creates nothing: a command run from another directory must not
    quietly start a second, empty installation that the running server never sees.
    """
    _use_service_env_file()
    env = load_environment()
    _refuse_root_in_a_service_home(env.home)
    installation = open_installation(env, create=create)
    upgrade_schema(installation.db)
    return installation


def _refuse_root_in_a_service_home(home: Path) -> None:
    """Stop root from working in a home that belongs to another user (the service's).

    Files root would create there (SQLite's -wal and -shm, stored PDFs, a backup) belong to
    root, and the service, running as its own user, could then no longer write them.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    try:
        owner = home.stat().st_uid
    except FileNotFoundError:
        return
    if owner == 0:
        return
    try:
        import pwd

        name = pwd.getpwuid(owner).pw_name
    except (ImportError, KeyError):
        name = str(owner)
    raise click.ClickException(
        f"{home} belongs to user {name}; run the command as that user, so the files it "
        f"writes stay theirs: sudo -u {name} printsrv ..."
    )


def _announce_first_admin(first: FirstAdmin) -> None:
    """Say where the first admin password is, never the password itself (stdout may be the
    journal)."""
    click.echo(
        f"First start: REST admin {first.username!r} was created. Its password is in "
        f"{first.password_file} (readable only by this user)."
    )
    click.echo(
        "The file is deleted when the password is changed: "
        "printsrv config set api.restful.auth.password"
    )


def with_installation(func: F) -> F:
    """Pass the installation as the first argument, opened (never created) and migrated."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        installation = _installation()
        try:
            return func(installation, *args, **kwargs)
        finally:
            installation.db.dispose()

    return wrapper  # type: ignore[return-value]


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


def _ask_secret(prompt: str) -> str:
    """A secret typed twice at a hidden prompt, or one line piped on standard input.

    Piping keeps a secret out of the shell history and lets scripts (and the README's quick
    start) set one; a terminal gets the confirmation instead, so a typo is caught.
    """
    if sys.stdin.isatty():
        return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


WORKER_HEALTHCHECK_SECS = 30


@click.group(cls=PrintsrvGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="printsrv", prog_name="printsrv")
def main() -> None:
    """printsrv: a print-management server, wire-compatible with SavaPage's public APIs."""


# --- serve -------------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8631, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes."
)
@click.option(
    "--ssl-certfile",
    type=click.Path(exists=True, dir_okay=False),
    help="TLS certificate (PEM); serve https.",
)
@click.option(
    "--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM)."
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="Log one line per request.",
)
def serve(
    host: str,
    port: int,
    workers: int,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    access_log: bool,
) -> None:
    """Run the server: migrate the database, set up a first admin, serve every API."""
    import uvicorn

    from printsrv.platform.observability import logging_config

    if bool(ssl_certfile) != bool(ssl_keyfile):
        raise click.UsageError("--ssl-certfile and --ssl-keyfile go together")
    installation = _installation(create=True)
    first = ensure_first_admin(installation)
    installation.db.dispose()
    if first:
        _announce_first_admin(first)
    if not access_log:
        os.environ["PRINTSRV_ACCESS_LOG"] = "off"
    os.environ["PRINTSRV_FREEZE_STARTUP_HEAP"] = "on"
    if workers > 1:
        # Each worker counts in files here; /metrics adds them up (prometheus_client's
        # multiprocess mode). Stale files from an earlier run would be added too.
        metrics_dir = installation.env.home / f"metrics-{port}"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    scheme = "https" if ssl_certfile else "http"
    click.echo(f"printsrv serving {scheme}://{host}:{port}/ (data in {installation.env.home})")
    sys.stdout.flush()
    uvicorn.run(
        "printsrv.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        proxy_headers=False,  # printsrv decides whom to believe: server.trusted-proxies
        server_header=False,
        log_config=logging_config(),
        access_log=False,  # printsrv writes its own, with the request id
        # uvicorn kills a worker that has not answered its supervisor's ping within this many
        # seconds. Its default (5 s) killed workers still importing and migrating on a busy
        # 2-core machine, in a loop; a worker that is really stuck is still replaced.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECS,
    )


# --- init --------------------------------------------------------------------------------------


@main.command()
def init() -> None:
    """Set up a new installation where the environment points (PRINTSRV_HOME, else the
    service's environment file, else ./var): home, secret, database tables, first REST
    admin. Does nothing when one is set up there already."""
    _use_service_env_file()
    env = load_environment()
    _refuse_root_in_a_service_home(env.home)
    where = f"{env.home} (database {describe_database(env.database_url)})"
    try:
        check_installed(env)
    except NotInstalled:
        pass
    else:
        click.echo(f"printsrv is already set up at {where}; nothing changed")
        return
    secret_file = env.home / "secret.key"
    if not env.secret_key and not secret_file.exists() and has_schema(env.database_url):
        # Another machine's installation: a new secret here would make every stored hash
        # and token of it unreadable on this machine.
        raise click.ClickException(
            f"The database {describe_database(env.database_url)} holds an installation "
            f"already, but {env.home} has no secret: set PRINTSRV_SECRET_KEY to the one "
            "its other machines use"
        )
    installation = _installation(create=True)
    try:
        first = ensure_first_admin(installation)
    finally:
        installation.db.dispose()
    click.echo(f"printsrv set up at {where}")
    if first:
        _announce_first_admin(first)


# --- config ------------------------------------------------------------------------------------


@main.group(cls=PrintsrvGroup)
def config() -> None:
    """Read and change config properties."""


@config.command("list")
@with_installation
def config_list(installation: Installation) -> None:
    """List every property with its value (secrets masked) and what it does."""
    with installation.db.read() as session:
        shown = config_service.describe(session)
    _table([(p.name, value, p.help) for p, value in shown], ("PROPERTY", "VALUE", "DESCRIPTION"))


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


# --- users -------------------------------------------------------------------------------------


@main.group(cls=PrintsrvGroup)
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
        password = _ask_secret("Password")
    with installation.db.transaction() as session:
        created = user_service.add_user(
            session, name, full_name=full_name, email=email, password=password
        )
    click.echo(f"User {created.user_name!r} added")


@user.command("list")
@with_installation
def user_list(installation: Installation) -> None:
    """List users."""
    with installation.db.read() as session:
        rows = [
            (
                u.user_name,
                u.full_name,
                u.email,
                "yes" if u.enabled else "no",
                ", ".join(a.alias for a in u.aliases),
            )
            for u in user_service.list_users(session)
        ]
    _table(rows, ("USER", "FULL NAME", "EMAIL", "ENABLED", "ALIASES"))


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


@user.command("disable")
@click.argument("name")
@with_installation
def user_disable(installation: Installation, name: str) -> None:
    """Disable a user: no login, no printing."""
    with installation.db.transaction() as session:
        changed = user_service.set_enabled(session, name, False)
    click.echo(f"User {changed.user_name!r} disabled")


@user.command("enable")
@click.argument("name")
@with_installation
def user_enable(installation: Installation, name: str) -> None:
    """Enable a user again."""
    with installation.db.transaction() as session:
        changed = user_service.set_enabled(session, name, True)
    click.echo(f"User {changed.user_name!r} enabled")


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
    password = _ask_secret(f"New password for {target}")
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
        pin = _ask_secret(f"PIN for {target}")
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

    click.echo(sync_users_and_groups(installation, delete_users=delete_users))


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


# --- groups ------------------------------------------------------------------------------------


@main.group(cls=PrintsrvGroup)
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
    _table(rows, ("GROUP", "MEMBERS"))


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


@group_member.command("add")
@click.argument("group_name", metavar="GROUP")
@click.argument("user_name", metavar="USER")
@with_installation
def group_member_add(installation: Installation, group_name: str, user_name: str) -> None:
    """Add USER to GROUP."""
    with installation.db.transaction() as session:
        user_service.add_member(session, group_name, user_name)
    click.echo(f"User {user_name.strip().lower()!r} added to group {group_name.strip().lower()!r}")


@group_member.command("remove")
@click.argument("group_name", metavar="GROUP")
@click.argument("user_name", metavar="USER")
@with_installation
def group_member_remove(installation: Installation, group_name: str, user_name: str) -> None:
    """Take USER (a name or an alias) out of GROUP; their accounts are untouched."""
    with installation.db.transaction() as session:
        user_service.remove_member(session, group_name, user_name)
    click.echo(
        f"User {user_name.strip().lower()!r} removed from group {group_name.strip().lower()!r}"
    )


@group_member.command("list")
@click.argument("group_name", metavar="GROUP")
@with_installation
def group_member_list(installation: Installation, group_name: str) -> None:
    """List the members of GROUP."""
    with installation.db.read() as session:
        for name in user_service.list_members(session, group_name):
            click.echo(name)


# --- accounts and the ledger -------------------------------------------------------------------

ACCOUNT_TYPES = click.Choice(["USER", "GROUP", "SHARED"], case_sensitive=False)


def _credit_limit(account: Account) -> str:
    if account.credit_limit_policy == "INDIVIDUAL" and account.credit_limit is not None:
        return to_wire(account.credit_limit)
    return account.credit_limit_policy.lower()


@main.group(cls=PrintsrvGroup)
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
    _table(rows, ("TYPE", "NAME", "BALANCE", "CREDIT LIMIT", "DISABLED", "PARENT"))


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
    _table(
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


@main.group("financial", cls=PrintsrvGroup)
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


# --- printers and queues -----------------------------------------------------------------------


def _amount(value: str | None, option: str) -> Decimal | None:
    """A price from the command line ("0.10"); None when the option was not given."""
    if value is None:
        return None
    try:
        return money(value)
    except InvalidAmount as error:
        raise click.BadParameter(error.message, param_hint=option) from None


def _ipp_options(text: str | None) -> dict[str, str] | None:
    return None if text is None else queue_service.parse_ipp_options(text)


@main.group(cls=PrintsrvGroup)
def printer() -> None:
    """CUPS printers: synchronise them, show their capabilities, set prices and access."""


@printer.command("add")
@click.argument("name")
@click.option("--uri", required=True, help="Device URI, e.g. ipp://192.0.2.7/ipp/print.")
@click.option(
    "--ppd",
    "ppd_file",
    type=click.Path(exists=True, dir_okay=False),
    help="A PPD file on this machine for a driver queue, instead of IPP Everywhere.",
)
@click.option(
    "--model",
    help="A driver the CUPS server has (`lpinfo -m`), e.g. drv:///sample.drv/generic.ppd; "
    "default: everywhere.",
)
@click.option("--description", default="", help="What the printer is (printer-info).")
@click.option("--location", default="", help="Where it stands (printer-location).")
@with_installation
def printer_add(
    installation: Installation,
    name: str,
    uri: str,
    ppd_file: str | None,
    model: str | None,
    description: str,
    location: str,
) -> None:
    """Add printer NAME on the CUPS server (cups.server) and to printsrv's printers.

    Like `lpadmin -p NAME -E -v URI -m everywhere`: without --ppd or --model it is an IPP
    Everywhere queue, whose driver CUPS builds from what the printer at an ipp:// or
    ipps:// URI says about itself (so the printer must answer). With --ppd or --model any
    device URI CUPS has a backend for works (socket://, lpd://, file: when allowed).
    """
    from printsrv.printing.errors import CupsUnavailable

    if ppd_file is not None and model is not None:
        raise click.UsageError("--ppd and --model both choose the driver; give one")
    client = cups_client(cups_server(installation.config.snapshot()))
    try:
        added = printer_service.add_cups_printer(
            installation.db,
            client,
            name,
            uri,
            ppd_file=ppd_file,
            model=model,
            info=description,
            location=location,
        )
    except CupsUnavailable as error:
        raise click.ClickException(
            f"{error.message}. Is CUPS running there? `printsrv config set cups.server "
            "SOCKET-OR-HOST:PORT` points printsrv at the right one"
        ) from None
    state = "accepting jobs" if added.accepting else "not accepting jobs"
    click.echo(
        f"Printer {added.name!r} added on CUPS server {client.server}: "
        f"{added.make_and_model or 'no model'}, {added.state}, {state}"
    )


@printer.command("remove")
@click.argument("name")
@with_installation
def printer_remove(installation: Installation, name: str) -> None:
    """Delete printer NAME from the CUPS server (cupsd cancels its pending jobs) and mark
    it gone in printsrv, as `printer sync` does for a printer that left CUPS: the document
    log keeps it, and its prices and access lists return if a printer of that name is
    added again."""
    client = cups_client(cups_server(installation.config.snapshot()))
    result = printer_service.remove_cups_printer(installation.db, client, name)
    where = f"removed from CUPS server {client.server}" if result.on_cups else "was not on CUPS"
    click.echo(f"Printer {name!r} {where}; printsrv lists it as gone")
    if result.routed_queues:
        click.echo(
            f"Queues still routed to it: {', '.join(result.routed_queues)} "
            "(`printsrv queue set QUEUE --printer OTHER`, or `--no-printer` to hold)"
        )


@printer.command("sync")
@with_installation
def printer_sync(installation: Installation) -> None:
    """Read every printer of the CUPS server (cups.server, else $CUPS_SERVER) into printsrv."""
    client = cups_client(cups_server(installation.config.snapshot()))
    found = client.list_printers_sync()
    with installation.db.transaction() as session:
        result = printer_service.sync_printers(session, found)
    click.echo(f"{len(found)} printer(s) on CUPS server {client.server}")
    for label, names in (("added", result.added), ("no longer on CUPS", result.gone)):
        if names:
            click.echo(f"  {label}: {', '.join(names)}")


@printer.command("list")
@with_installation
def printer_list(installation: Installation) -> None:
    """List printers with their state and whether printing there costs."""
    with installation.db.read() as session:
        rows = [
            (
                p.name,
                p.state if p.present else "gone",
                "yes" if p.accepting else "no",
                "priced" if p.cost_model else "free",
                p.make_and_model,
            )
            for p in printer_service.list_printers(session)
        ]
    _table(rows, ("PRINTER", "STATE", "ACCEPTING", "COST", "MAKE AND MODEL"))


@printer.command("show")
@click.argument("name")
@with_installation
def printer_show(installation: Installation, name: str) -> None:
    """Show a printer's IPP capabilities and prices."""
    with installation.db.read() as session:
        row = printer_service.get_printer(session, name)
        info = printer_service.info_from_row(row)
        cost = printer_service.describe_cost(printer_service.cost_from_json(row.cost_model))
        synced = f"{row.synced_at:%Y-%m-%d %H:%M} UTC" + ("" if row.present else " (gone since)")
    low, high = info.copies_supported
    fields = [
        ("printer", info.name),
        ("state", f"{info.state}, {'accepting' if info.accepting else 'not accepting'} jobs"),
        ("message", info.state_message),
        ("model", row.make_and_model),
        ("location", row.location),
        ("synced", synced),
        ("copies", f"{low}-{high}"),
        ("sides", ", ".join(info.sides_supported)),
        ("color modes", ", ".join(info.print_color_mode_supported)),
        ("media", ", ".join(info.media_supported)),
        ("collate", ", ".join(info.sheet_collate_supported)),
        ("number-up", ", ".join(str(n) for n in info.number_up_supported)),
        ("page ranges", "yes" if info.page_ranges_supported else "no"),
        ("defaults", ", ".join(f"{k}={v}" for k, v in info.defaults)),
    ]
    for label, value in fields:
        click.echo(f"{label + ':':13} {value}")
    for index, line in enumerate(cost):
        click.echo(f"{'cost:' if index == 0 else '':13} {line}")


@printer.command("cost")
@click.argument("name")
@click.option("--per-side", help="Price of one printed side (one-sided, grayscale).")
@click.option("--per-side-color", help="Price of a colour side (default: --per-side).")
@click.option("--per-side-duplex", help="Price of a side on a two-sided sheet.")
@click.option("--per-side-duplex-color", help="Price of a colour side on a two-sided sheet.")
@click.option(
    "--media-costs",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON file of prices per media (see README), instead of the --per-side options.",
)
@with_installation
def printer_cost(
    installation: Installation,
    name: str,
    per_side: str | None,
    per_side_color: str | None,
    per_side_duplex: str | None,
    per_side_duplex_color: str | None,
    media_costs: Path | None,
) -> None:
    """Set the prices of printing on printer NAME: --per-side AMOUNT [...] or --media-costs."""
    extras = (per_side_color, per_side_duplex, per_side_duplex_color)
    if media_costs is not None:
        if per_side is not None or any(v is not None for v in extras):
            raise click.UsageError("--media-costs replaces the --per-side options; give one")
        try:
            data = json.loads(media_costs.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise click.BadParameter(f"not JSON: {error}", param_hint="--media-costs") from None
        model = printer_service.parse_media_costs(data)
    elif per_side is not None:
        base = _amount(per_side, "--per-side")
        assert base is not None
        model = CostModel.simple(
            base,
            per_side_color=_amount(per_side_color, "--per-side-color"),
            per_side_duplex=_amount(per_side_duplex, "--per-side-duplex"),
            per_side_duplex_color=_amount(per_side_duplex_color, "--per-side-duplex-color"),
        )
    else:
        raise click.UsageError("Give --per-side AMOUNT (and its variants) or --media-costs FILE")
    with installation.db.transaction() as session:
        printer_service.set_cost(session, name, model)
    for line in printer_service.describe_cost(model):
        click.echo(f"{name}: {line}")


@printer.command("access")
@click.argument("name")
@with_installation
def printer_access(installation: Installation, name: str) -> None:
    """List the groups allowed or denied on printer NAME (none: everyone may print)."""
    with installation.db.read() as session:
        entries = access_service.list_access(session, name)
    if not entries:
        click.echo(f"{name}: no access lists, everyone may print")
        return
    _table([(e.group, e.scope) for e in entries], ("GROUP", "SCOPE"))


def _grant(installation: Installation, name: str, group_name: str, scope: str) -> None:
    with installation.db.transaction() as session:
        previous = access_service.grant(session, name, group_name, scope)
    click.echo(f"{name}: {access_service.describe_grant(group_name, scope, previous)}")


@printer.command("allow")
@click.argument("name")
@click.argument("group_name", metavar="GROUP")
@with_installation
def printer_allow(installation: Installation, name: str, group_name: str) -> None:
    """Put GROUP on printer NAME's ALLOW list: then only allowed groups' members print there."""
    _grant(installation, name, group_name, "ALLOW")


@printer.command("deny")
@click.argument("name")
@click.argument("group_name", metavar="GROUP")
@with_installation
def printer_deny(installation: Installation, name: str, group_name: str) -> None:
    """Put GROUP on printer NAME's DENY list: its members may not print there."""
    _grant(installation, name, group_name, "DENY")


@printer.command("access-remove")
@click.argument("name")
@click.argument("group_name", metavar="GROUP")
@with_installation
def printer_access_remove(installation: Installation, name: str, group_name: str) -> None:
    """Take GROUP off printer NAME's ALLOW or DENY list."""
    with installation.db.transaction() as session:
        access_service.revoke(session, name, group_name)
    click.echo(f"{name}: group '{group_name}' removed from the access lists")


@main.group(cls=PrintsrvGroup)
def queue() -> None:
    """Print queues: the reserved webservice queue (held in the inbox) and named ones."""


def _queue_rows(queues: list[PrintQueue]) -> list[tuple[str, ...]]:
    return [
        (
            q.name,
            "yes" if q.enabled else "no",
            f"printer {q.printer_name}" if q.printer_name else "none (hold)",
            q.ipp_options if q.ipp_options != "{}" else "",
            q.ip_allowed or "(all)",
        )
        for q in queues
    ]


_QUEUE_HEADER = ("QUEUE", "ENABLED", "ROUTING", "IPP OPTIONS", "IP ALLOWED")


@queue.command("add")
@click.argument("name")
@click.option("--printer", "printer_name", help="Route documents to this CUPS printer.")
@click.option("--ipp-options", help='Routing IPP options as JSON, e.g. {"sides":"one-sided"}.')
@click.option("--ip-allowed", default="", help="CIDR set of allowed clients (void: all).")
@with_installation
def queue_add(
    installation: Installation,
    name: str,
    printer_name: str | None,
    ipp_options: str | None,
    ip_allowed: str,
) -> None:
    """Add queue NAME; without --printer its documents are held in the user's inbox."""
    with installation.db.transaction() as session:
        created = queue_service.add_queue(
            session,
            name,
            printer=printer_name,
            ipp_options=_ipp_options(ipp_options),
            ip_allowed=ip_allowed,
        )
        rows = _queue_rows([created])
    click.echo(f"Queue {rows[0][0]!r} added: routing {rows[0][2]}")


@queue.command("list")
@with_installation
def queue_list(installation: Installation) -> None:
    """List queues with their routing and allowlist."""
    with installation.db.read() as session:
        rows = _queue_rows(queue_service.list_queues(session))
    _table(rows, _QUEUE_HEADER)


@queue.command("show")
@click.argument("name")
@with_installation
def queue_show(installation: Installation, name: str) -> None:
    """Show one queue."""
    with installation.db.read() as session:
        (row,) = _queue_rows([queue_service.get_queue(session, name)])
    labels = ("queue", "enabled", "routing", "ipp options", "ip allowed")
    for label, value in zip(labels, row, strict=True):
        click.echo(f"{label + ':':12} {value}")


@queue.command("enable")
@click.argument("name")
@with_installation
def queue_enable(installation: Installation, name: str) -> None:
    """Enable a queue."""
    with installation.db.transaction() as session:
        changed = queue_service.set_enabled(session, name, True)
    click.echo(f"Queue {changed.name!r} enabled")


@queue.command("disable")
@click.argument("name")
@with_installation
def queue_disable(installation: Installation, name: str) -> None:
    """Disable a queue: it refuses documents (403) until enabled."""
    with installation.db.transaction() as session:
        changed = queue_service.set_enabled(session, name, False)
    click.echo(f"Queue {changed.name!r} disabled")


@queue.command("delete")
@click.argument("name")
@with_installation
def queue_delete(installation: Installation, name: str) -> None:
    """Delete queue NAME: uploads to it get 404 afterwards; the document log keeps the name.
    The reserved webservice queue cannot be deleted (disable it instead)."""
    with installation.db.transaction() as session:
        deleted = queue_service.delete_queue(session, name)
    click.echo(f"Queue {deleted!r} deleted")


@queue.command("set")
@click.argument("name")
@click.option("--printer", "printer_name", help="Route documents to this CUPS printer.")
@click.option("--no-printer", is_flag=True, help="Stop routing: hold documents in the inbox.")
@click.option("--ipp-options", help="Routing IPP options as JSON (replaces the old ones).")
@click.option("--ip-allowed", help='CIDR set of allowed clients ("" allows all).')
@with_installation
def queue_set(
    installation: Installation,
    name: str,
    printer_name: str | None,
    no_printer: bool,
    ipp_options: str | None,
    ip_allowed: str | None,
) -> None:
    """Change a queue's routing, routing options or allowlist."""
    if printer_name is not None and no_printer:
        raise click.UsageError("--printer and --no-printer contradict each other")
    changes: dict[str, Any] = {}
    if printer_name is not None or no_printer:
        changes["printer"] = None if no_printer else printer_name
    if ipp_options is not None:
        changes["ipp_options"] = _ipp_options(ipp_options)
    if ip_allowed is not None:
        changes["ip_allowed"] = ip_allowed
    if not changes:
        raise click.UsageError(
            "Nothing to change: give --printer, --no-printer, --ipp-options or --ip-allowed"
        )
    with installation.db.transaction() as session:
        (row,) = _queue_rows([queue_service.set_queue(session, name, **changes)])
    click.echo(f"Queue {row[0]!r}: routing {row[2]}, options {row[3] or '{}'}, allowed {row[4]}")


# --- system ------------------------------------------------------------------------------------


@main.group(cls=PrintsrvGroup)
def system() -> None:
    """The system's status as monitoring sees it."""


@system.command("status")
@with_installation
def system_status(installation: Installation) -> None:
    """Print READY, SETUP, MAINTENANCE or UNAVAILABLE (what JSON-RPC systemStatus answers)."""
    status = installation.monitor.status(installation.config.snapshot())
    click.echo(status.value)
    jobs = installation.monitor.running_job_kinds()
    if jobs:
        click.echo(f"running batch jobs: {', '.join(jobs)}")


@system.command("maintenance")
@click.argument("state", type=click.Choice(["on", "off"]))
@with_installation
def system_maintenance(installation: Installation, state: str) -> None:
    """Switch maintenance on or off; users are kept out while it is on."""
    with installation.db.transaction() as session:
        config_service.set_property(
            session,
            "system.maintenance",
            "Y" if state == "on" else "N",
            hasher=installation.hasher,
            actor="cli",
        )
    click.echo(f"maintenance {state}")


# --- backups -----------------------------------------------------------------------------------


@main.group(cls=PrintsrvGroup)
def backup() -> None:
    """Back up and restore an installation (database, stored PDFs, secret)."""


@backup.command("create")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Backup file (default: PRINTSRV_HOME/backups/printsrv-TIME.tar).",
)
@with_installation
def backup_create(installation: Installation, output: Path | None) -> None:
    """Make a consistent backup while the server runs (systemStatus: UNAVAILABLE meanwhile)."""
    from printsrv.operations.backup import create_backup

    info = create_backup(installation, output)
    click.echo(f"{info.path} ({info.backend}, {info.documents} stored files)")


@backup.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def backup_restore(file: Path) -> None:
    """Restore FILE into the empty home and database the environment names."""
    from printsrv.operations.backup import restore_backup

    _use_service_env_file()
    env = load_environment()
    _refuse_root_in_a_service_home(env.home)
    info = restore_backup(env, file)
    installation = _installation(create=True)  # migrations newer than the backup's apply now
    installation.db.dispose()
    click.echo(f"restored {info.backend} backup of {info.created} ({info.documents} stored files)")
