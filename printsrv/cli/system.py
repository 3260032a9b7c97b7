"""`printsrv system ...`: the system's status and maintenance."""

from __future__ import annotations

import click

from printsrv.cli.common import PrintsrvGroup, with_installation
from printsrv.operations.installation import Installation
from printsrv.platform import properties as config_service


@click.group(cls=PrintsrvGroup)
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
