"""`printsrv quota run`: allocate the scheduled quotas that are due."""

from __future__ import annotations

import click

from financial import to_wire
from printsrv.accounts import quotas
from printsrv.cli.common import PrintsrvGroup, with_installation
from printsrv.operations.installation import Installation


@click.group(cls=PrintsrvGroup)
def quota() -> None:
    """Scheduled group quotas (set them with `printsrv group quota`)."""


@quota.command("run")
@click.option(
    "--as-of",
    metavar="ISO-TIMESTAMP",
    help="Allocate what is due at this moment (back-fill); without an offset it is read in "
    "system.time-zone. Default: now.",
)
@with_installation
def quota_run(installation: Installation, as_of: str | None) -> None:
    """Credit every member of every group with a quota for each period that has started
    and is not credited yet. The server does this by itself shortly after each boundary;
    running it again changes nothing."""
    snapshot = installation.config.snapshot()
    zone = snapshot["system.time-zone"]
    moment = quotas.parse_as_of(as_of, time_zone=zone, name="--as-of") if as_of else None
    done = quotas.allocate_due(installation, as_of=moment)
    currency = snapshot["financial.currency-code"]
    click.echo(
        f"{done.periods} period(s) allocated: {done.credited} credit(s), "
        f"{to_wire(done.total)} {currency} in all, {done.skipped} skipped at max-accumulation"
    )
    if done.next_boundary is not None:
        click.echo(f"next period starts {quotas.local_time(done.next_boundary, zone)} {zone}")
