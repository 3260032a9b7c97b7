"""`printsrv job ...`: the asynchronous jobs of every user, read from the database."""

from __future__ import annotations

import time
from pathlib import Path

import click

from printsrv.cli.common import PrintsrvGroup, print_table, progress_reporter, with_installation
from printsrv.jobs import service
from printsrv.jobs.service import JobView
from printsrv.operations.installation import Installation

POLL_INTERVAL = 0.2


@click.group(cls=PrintsrvGroup)
def job() -> None:
    """List, show, cancel and wait for asynchronous jobs (POST /restful/v1/jobs)."""


def _when(view: JobView) -> str:
    return view.created_at.strftime("%Y-%m-%d %H:%M:%S")


def _outcome(view: JobView) -> str:
    if view.state == "done":
        return ", ".join(view.files) or "-"
    if view.error_code is not None:
        return f"error {view.error_code}: {view.message}"
    return f"{view.progress}%"


@job.command("list")
@click.option("--limit", default=50, show_default=True, help="Newest jobs shown.")
@with_installation
def job_list(installation: Installation, limit: int) -> None:
    """List the newest jobs, every owner's."""
    with installation.db.read() as session:
        views = service.list_jobs(session, limit=limit)
    rows = [(v.key, v.job_type, v.state, v.owner, _when(v), _outcome(v)) for v in views]
    print_table(rows, ("KEY", "TYPE", "STATE", "OWNER", "CREATED (UTC)", "RESULT"))


@job.command("show")
@click.argument("key")
@with_installation
def job_show(installation: Installation, key: str) -> None:
    """Show one job."""
    with installation.db.read() as session:
        view = service.read_job(session, key, None)
    for label, value in (
        ("key", view.key),
        ("type", view.job_type),
        ("state", view.state),
        ("progress", f"{view.progress}%"),
        ("owner", view.owner),
        ("attempts", str(view.attempt)),
        ("created", _when(view)),
        ("expires", view.expires_at.strftime("%Y-%m-%d %H:%M:%S") if view.expires_at else "-"),
        ("result", _outcome(view)),
    ):
        click.echo(f"{label + ':':10} {value}")


@job.command("cancel")
@click.argument("key")
@with_installation
def job_cancel(installation: Installation, key: str) -> None:
    """Cancel a queued or running job (its runner stops and stores nothing)."""
    ttl = installation.config.snapshot()["api.jobs.result-ttl-secs"]
    with installation.db.transaction() as session:
        cancelled = service.cancel_job(session, key, ttl_secs=ttl)
    click.echo(f"job {key} cancelled" if cancelled else f"job {key} had ended already")


@job.command("wait")
@click.argument("key")
@click.option(
    "--save",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write the result files into.",
)
@with_installation
def job_wait(installation: Installation, key: str, save: Path | None) -> None:
    """Wait for a job to end, with a progress bar (plain lines when not on a terminal)."""
    with progress_reporter(f"job {key}") as report:
        while True:
            with installation.db.read() as session:
                view = service.read_job(session, key, None)
            report(100 if view.state == "done" else view.progress)
            if view.end:
                break
            time.sleep(POLL_INTERVAL)
    if view.state != "done":
        raise click.ClickException(f"job {key} {view.state}: {_outcome(view)}")
    for name in view.files:
        if save is None:
            click.echo(name)
            continue
        save.mkdir(parents=True, exist_ok=True)
        with installation.db.read() as session:
            found = service.result_file(session, key, name, None)
        target = save / Path(name).name
        with target.open("wb") as out:
            for chunk in service.file_chunks(installation.db, found):
                out.write(chunk)
        click.echo(f"{target} ({found.size} bytes)")
