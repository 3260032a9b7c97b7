"""`printsrv printer ...`: printers from CUPS, their prices and who may print on them."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import click

from financial.errors import InvalidAmount
from financial.money import money
from printsrv.agents import registry as agent_registry
from printsrv.cli.common import PrintsrvGroup, print_table, with_installation
from printsrv.operations.installation import Installation
from printsrv.printing import access as access_service
from printsrv.printing import printers as printer_service
from printsrv.printing.context import cups_client, cups_server
from printsrv.printing.costs import CostModel
from printsrv.printing.models import Printer


def _amount(value: str | None, option: str) -> Decimal | None:
    """A price from the command line ("0.10"); None when the option was not given."""
    if value is None:
        return None
    try:
        return money(value)
    except InvalidAmount as error:
        raise click.BadParameter(error.message, param_hint=option) from None


@click.group(cls=PrintsrvGroup)
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
    count, result = printer_service.sync_with_cups(installation.db, client)
    click.echo(f"{count} printer(s) on CUPS server {client.server}")
    for label, names in (("added", result.added), ("no longer on CUPS", result.gone)):
        if names:
            click.echo(f"  {label}: {', '.join(names)}")


def _printer_row(p: Printer, agents: dict[int, tuple[str, bool]]) -> tuple[str, ...]:
    state = p.state if p.present else "gone"
    accepting = "yes" if p.accepting else "no"
    where = "local CUPS"
    if p.agent_id is not None:
        name, online = agents.get(p.agent_id, ("?", False))
        where = f"agent {name} ({'online' if online else 'offline'})"
    cost = "priced" if p.cost_model else "free"
    return (p.name, state, accepting, cost, where, p.make_and_model)


@printer.command("list")
@with_installation
def printer_list(installation: Installation) -> None:
    """List printers with their state, whether printing there costs, and where they are
    (the central CUPS, or a print agent, online or not)."""
    header = ("PRINTER", "STATE", "ACCEPTING", "COST", "WHERE", "MAKE AND MODEL")
    poll_secs = installation.config.snapshot()["agents.poll-secs"]
    with installation.db.read() as session:
        agents = agent_registry.online_by_id(session, poll_secs=poll_secs)
        rows = [_printer_row(p, agents) for p in printer_service.list_printers(session)]
    print_table(rows, header)


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
        where = "local CUPS"
        if row.agent_id is not None:
            poll_secs = installation.config.snapshot()["agents.poll-secs"]
            agent_name, online = agent_registry.online_by_id(session, poll_secs=poll_secs).get(
                row.agent_id, ("?", False)
            )
            where = f"agent {agent_name} ({'online' if online else 'offline'})"
        markers = ", ".join(
            f"{m['name']} {m['type']} {m['level']}%" if m["level"] >= 0 else f"{m['name']} ?"
            for m in json.loads(row.markers or "[]")
        )
    low, high = info.copies_supported
    fields = [
        ("printer", info.name),
        ("state", f"{info.state}, {'accepting' if info.accepting else 'not accepting'} jobs"),
        ("message", info.state_message),
        ("model", row.make_and_model),
        ("location", row.location),
        ("synced", synced),
        ("where", where),
        ("markers", markers or "-"),
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
    print_table([(e.group, e.scope) for e in entries], ("GROUP", "SCOPE"))


def _access_list_command(verb: str, scope: str, help_text: str) -> None:
    """`printer allow|deny NAME GROUP`: put GROUP on NAME's ALLOW or DENY list."""

    def grant(installation: Installation, name: str, group_name: str) -> None:
        with installation.db.transaction() as session:
            previous = access_service.grant(session, name, group_name, scope)
        click.echo(f"{name}: {access_service.describe_grant(group_name, scope, previous)}")

    command = click.argument("group_name", metavar="GROUP")(with_installation(grant))
    printer.command(verb, help=help_text)(click.argument("name")(command))


_access_list_command(
    "allow",
    "ALLOW",
    "Put GROUP on printer NAME's ALLOW list: then only allowed groups' members print there.",
)
_access_list_command(
    "deny", "DENY", "Put GROUP on printer NAME's DENY list: its members may not print there."
)


@printer.command("access-remove")
@click.argument("name")
@click.argument("group_name", metavar="GROUP")
@with_installation
def printer_access_remove(installation: Installation, name: str, group_name: str) -> None:
    """Take GROUP off printer NAME's ALLOW or DENY list."""
    with installation.db.transaction() as session:
        access_service.revoke(session, name, group_name)
    click.echo(f"{name}: group '{group_name}' removed from the access lists")
