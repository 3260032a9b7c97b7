"""`printsrv backup ...`: backups, created and restored."""

from __future__ import annotations

from pathlib import Path

import click

from printsrv.cli.common import (
    PrintsrvGroup,
    open_cli_installation,
    progress_reporter,
    refuse_root_in_a_service_home,
    use_service_env_file,
    with_installation,
)
from printsrv.operations.installation import Installation
from printsrv.platform.environment import load_environment


@click.group(cls=PrintsrvGroup)
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

    with progress_reporter("backup") as report:
        info = create_backup(installation, output, progress=report)
    click.echo(f"{info.path} ({info.backend}, {info.documents} stored files)")


@backup.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def backup_restore(file: Path) -> None:
    """Restore FILE into the empty home and database the environment names."""
    from printsrv.operations.backup import restore_backup

    use_service_env_file()
    env = load_environment()
    refuse_root_in_a_service_home(env.home)
    info = restore_backup(env, file)
    installation = open_cli_installation(
        create=True
    )  # migrations newer than the backup's apply now
    installation.db.dispose()
    click.echo(f"restored {info.backend} backup of {info.created} ({info.documents} stored files)")
