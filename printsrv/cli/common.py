"""What every command shares: errors as one line, the installation the environment names,
tables and secrets at the terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.orm import Session

from printsrv.errors import PrintsrvError
from printsrv.migrations import upgrade_schema
from printsrv.operations.installation import (
    FirstAdmin,
    Installation,
    check_secret,
    open_installation,
)
from printsrv.platform.environment import load_environment, with_env_file

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class PrintsrvGroup(click.Group):
    """A click group that turns service errors into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PrintsrvError as error:
            raise click.ClickException(error.message) from None


def use_service_env_file() -> None:
    """Take the variables of the service's environment file that the environment lacks.

    When PRINTSRV_HOME is not set and /etc/printsrv/printsrv.env (or PRINTSRV_ENV_FILE)
    exists, the command works on the service's installation with the service's settings
    (database, secret, CUPS server), as if run by the unit itself.
    """
    for key, value in with_env_file().items():
        if not os.environ.get(key):
            os.environ[key] = value


def open_cli_installation(*, create: bool = False) -> Installation:
    """The installation the environment names, opened and migrated.

    Its installation secret must be the one the database was set up with (WrongSecret
    otherwise); `serve`, `init` and `backup restore` record it in a database that has none.
    Only `serve`, `init` and `backup restore` pass create=True. Every other command
    refuses with NotInstalled (naming the home and database it looked at) when they were
    never set up, and creates nothing: a command run from another directory must not
    quietly start a second, empty installation that the running server never sees.
    """
    use_service_env_file()
    env = load_environment()
    refuse_root_in_a_service_home(env.home)
    installation = open_installation(env, create=create)
    try:
        upgrade_schema(installation.db)
        # Before anything reads or writes a stored credential: with another machine's
        # secret, every one of them would quietly fail to match.
        check_secret(installation, adopt=create)
    except BaseException:
        installation.db.dispose()
        raise
    return installation


def refuse_root_in_a_service_home(home: Path) -> None:
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


def announce_first_admin(first: FirstAdmin) -> None:
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
        installation = open_cli_installation()
        try:
            return func(installation, *args, **kwargs)
        finally:
            installation.db.dispose()

    return wrapper  # type: ignore[return-value]


def print_listing(
    installation: Installation,
    items: Callable[[Session], Iterable[T]],
    row: Callable[[T], tuple[str, ...]],
    header: tuple[str, ...],
) -> None:
    """A table of what `items` reads, one `row` per item (made in the same read, so lazy
    relationships such as a user's aliases still load)."""
    with installation.db.read() as session:
        rows = [row(item) for item in items(session)]
    print_table(rows, header)


def add_switches(
    group: click.Group,
    noun: str,
    set_enabled: Callable[[Session, str, bool], T],
    name_of: Callable[[T], str],
    *,
    enable_help: str,
    disable_help: str,
) -> None:
    """Add `enable NAME` and `disable NAME` to `group`: one call of `set_enabled` each, then
    "<noun> '<name>' enabled" (or disabled) with the name `name_of` reads off the result."""

    def switch_to(enabled: bool) -> Callable[[Installation, str], None]:
        def switch(installation: Installation, name: str) -> None:
            with installation.db.transaction() as session:
                changed = name_of(set_enabled(session, name, enabled))
            click.echo(f"{noun} {changed!r} {'enabled' if enabled else 'disabled'}")

        return switch

    for verb, enabled, help_text in (
        ("enable", True, enable_help),
        ("disable", False, disable_help),
    ):
        command = with_installation(switch_to(enabled))
        group.command(verb, help=help_text)(click.argument("name")(command))


def print_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


def ask_secret(prompt: str) -> str:
    """A secret typed twice at a hidden prompt, or one line piped on standard input.

    Piping keeps a secret out of the shell history and lets scripts (and the README's quick
    start) set one; a terminal gets the confirmation instead, so a typo is caught.
    """
    if sys.stdin.isatty():
        return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


@contextmanager
def progress_reporter(label: str) -> Iterator[Callable[[int], None]]:
    """A `report(percent)` for long work: a progress bar on a terminal, else a plain line
    per tenth done (a log or a pipe gets no control characters). Both go to stderr, so
    stdout holds only the command's result."""
    if sys.stderr.isatty():
        with click.progressbar(length=100, label=label, file=sys.stderr) as bar:
            shown = 0

            def advance(percent: int) -> None:
                nonlocal shown
                if percent > shown:
                    bar.update(percent - shown)
                    shown = percent

            yield advance
        return
    last = -1

    def line(percent: int) -> None:
        nonlocal last
        if percent // 10 > last // 10 or (percent == 100 and last != 100):
            click.echo(f"{label}: {percent}%", err=True)
            last = percent

    yield line
