"""`printsrv agent ...`: remote print agents (docs/agents.md).

`add`, `list`, `remove` and `cancel` run on the central server, against its database; `run` runs at
a remote site and needs no database at all: it talks to the central server over HTTP(S)
and to its own CUPS.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import click

from printsrv.agents import dispatch, registry
from printsrv.agents.client import TokenRefused
from printsrv.agents.runner import AgentSettings, run_agent
from printsrv.cli.common import PrintsrvGroup, print_table, with_installation
from printsrv.operations.installation import Installation
from printsrv.printing.context import DEFAULT_CUPS_SERVER


@click.group(cls=PrintsrvGroup)
def agent() -> None:
    """Remote print agents: add, list, remove, cancel a job, and run one at a site."""


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


@agent.command("cancel")
@click.argument("job_id", type=int)
@click.option("--reason", default="cancelled by an administrator", show_default=True)
@with_installation
def agent_cancel(installation: Installation, job_id: int, reason: str) -> None:
    """Cancel remote print job JOB_ID and refund it; the agent holding it, if any, cancels
    it on its CUPS at its next renewal or report."""
    with installation.db.transaction() as session:
        holder = dispatch.cancel_remote_job(session, job_id, reason=reason)
    told = f"; agent '{holder}' cancels it at its next call" if holder else ""
    click.echo(f"job {job_id} cancelled and refunded{told}")


@agent.command("run")
@click.option("--server", required=True, help="The central server, e.g. https://print.example.edu")
@click.option("--name", required=True, help="This agent's name (as `printsrv agent add` made it).")
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the agent's token; default: $PRINTSRV_AGENT_TOKEN.",
)
@click.option(
    "--cups",
    default=None,
    help="The site's CUPS server, host:port or a socket path; default: $CUPS_SERVER, "
    "else /run/cups/cups.sock.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("printsrv-agent"),
    show_default=True,
    help="Where the journal and the PDFs being printed are kept.",
)
@click.option(
    "--poll-secs",
    default=30,
    show_default=True,
    type=click.IntRange(1, 300),
    help="Longest wait of one long-poll (the server caps it at agents.poll-secs).",
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False),
    help="CA bundle to check the central server's certificate with.",
)
def agent_run(
    server: str,
    name: str,
    token_file: Path | None,
    cups: str | None,
    state_dir: Path,
    poll_secs: int,
    ca_file: str | None,
) -> None:
    """Run a print agent at a site: register its CUPS printers with the central server,
    fetch their jobs and print them. Needs no database."""
    if token_file is not None:
        token = token_file.read_text(encoding="utf-8").strip()
    else:
        token = os.environ.get("PRINTSRV_AGENT_TOKEN", "").strip()
    if not token:
        raise click.UsageError("Give the token: --token-file FILE, or PRINTSRV_AGENT_TOKEN")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s printsrv-agent: %(message)s"
    )
    settings = AgentSettings(
        server=server,
        name=name,
        token=token,
        cups=cups or os.environ.get("CUPS_SERVER") or DEFAULT_CUPS_SERVER,
        state_dir=state_dir,
        poll_secs=poll_secs,
        verify=ca_file or True,
    )
    try:
        asyncio.run(run_agent(settings))
    except TokenRefused as error:
        raise click.ClickException(f"the central server refused this agent: {error}") from None
    except KeyboardInterrupt:
        pass
