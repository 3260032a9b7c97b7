"""`printsrv agent ...`: remote print agents (docs/agents.md).

`add`, `list` and `remove` run on the central server, against its database; `run` runs at
a remote site and needs no database at all: it talks to the central server over HTTP(S)
and to its own CUPS.
"""

from __future__ import annotations

import click

from printsrv.agents import registry
from printsrv.cli.common import PrintsrvGroup, print_table, with_installation
from printsrv.operations.installation import Installation


@click.group(cls=PrintsrvGroup)
def agent() -> None:
    """Remote print agents: add, list, remove, and run one at a site."""


@agent.command("add")
@click.argument("name")
@with_installation
def agent_add(installation: Installation, name: str) -> None:
    """Create an agent and print its token (shown this once; only a hash is kept)."""
    with installation.db.transaction() as session:
        token = registry.add_agent(session, name, hasher=installation.hasher)
    click.echo(f"agent '{name}' added; its token (shown only now):")
    click.echo(token)


def _when(moment: object) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}"


@agent.command("list")
@with_installation
def agent_list(installation: Installation) -> None:
    """List agents: last contact, online or not, printers, jobs in flight and waiting."""
    poll_secs = installation.config.snapshot()["agents.poll-secs"]
    with installation.db.read() as session:
        views = registry.list_agents(session, poll_secs=poll_secs)
    rows = [
        (
            v.name,
            "online" if v.online else "offline",
            _when(v.last_contact_at),
            str(v.jobs_in_flight),
            str(v.jobs_waiting),
            ", ".join(v.printers) or "-",
        )
        for v in views
    ]
    print_table(rows, ("AGENT", "STATUS", "LAST CONTACT (UTC)", "IN FLIGHT", "WAITING", "PRINTERS"))


@agent.command("remove")
@click.argument("name")
@with_installation
def agent_remove(installation: Installation, name: str) -> None:
    """Revoke an agent: its token stops working; its open jobs fail and are refunded."""
    with installation.db.transaction() as session:
        failed = registry.remove_agent(session, name)
    click.echo(f"agent '{name}' removed; {failed} open job(s) failed and refunded")
