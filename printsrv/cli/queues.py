"""`printsrv queue ...`: the webservice queue and named queues."""

from __future__ import annotations

from typing import Any

import click

from printsrv.cli.common import PrintsrvGroup, add_switches, print_listing, with_installation
from printsrv.operations.installation import Installation
from printsrv.printing import queues as queue_service
from printsrv.printing.models import PrintQueue


def _ipp_options(text: str | None) -> dict[str, str] | None:
    return None if text is None else queue_service.parse_ipp_options(text)


@click.group(cls=PrintsrvGroup)
def queue() -> None:
    """Print queues: the reserved webservice queue (held in the inbox) and named ones."""


def _queue_row(q: PrintQueue) -> tuple[str, ...]:
    return (
        q.name,
        "yes" if q.enabled else "no",
        f"printer {q.printer_name}" if q.printer_name else "none (hold)",
        q.ipp_options if q.ipp_options != "{}" else "",
        q.ip_allowed or "(all)",
    )


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
        row = _queue_row(created)
    click.echo(f"Queue {row[0]!r} added: routing {row[2]}")


@queue.command("list")
@with_installation
def queue_list(installation: Installation) -> None:
    """List queues with their routing and allowlist."""
    print_listing(installation, queue_service.list_queues, _queue_row, _QUEUE_HEADER)


@queue.command("show")
@click.argument("name")
@with_installation
def queue_show(installation: Installation, name: str) -> None:
    """Show one queue."""
    with installation.db.read() as session:
        row = _queue_row(queue_service.get_queue(session, name))
    labels = ("queue", "enabled", "routing", "ipp options", "ip allowed")
    for label, value in zip(labels, row, strict=True):
        click.echo(f"{label + ':':12} {value}")


add_switches(
    queue,
    "Queue",
    queue_service.set_enabled,
    lambda changed: changed.name,
    enable_help="Enable a queue.",
    disable_help="Disable a queue: it refuses documents (403) until enabled.",
)


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
        row = _queue_row(queue_service.set_queue(session, name, **changes))
    click.echo(f"Queue {row[0]!r}: routing {row[2]}, options {row[3] or '{}'}, allowed {row[4]}")
