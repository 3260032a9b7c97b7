"""The job types: what each checks before a job is queued, and what it does when it runs.

`check` runs in the request's transaction: it refuses (InvalidInput naming the field,
NotFound, NotAllowed) before anything is written, and returns the argument to store.
`run` runs on a work thread of whichever server claimed the job; it reports progress
through its context (which raises JobStopped once the runner lost the job) and returns the
result files it wrote into the context's work directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from printsrv.accounts import reports as accounting_reports
from printsrv.accounts.service import settings_of
from printsrv.errors import InvalidInput, NotAllowed
from printsrv.jobs.service import Owner, ResultFile
from printsrv.operations.installation import Installation

__all__ = ["JOB_TYPES", "JobContext", "JobStopped", "JobType", "job_type"]


class JobStopped(Exception):
    """The runner no longer holds the job (cancelled, or taken over): stop, store nothing."""


@dataclass
class JobContext:
    """What a running job gets: the installation, who started it, a private directory for
    its result files, and `report(percent)` for its progress."""

    installation: Installation
    owner: Owner
    workdir: Path
    report: Callable[[int], None]


@dataclass(frozen=True)
class JobType:
    """One kind of job: its name in requests, who may start it, its check and its work."""

    name: str
    admin_only: bool
    check: Callable[[Session, Installation, Any, Owner], dict[str, Any]]
    run: Callable[[JobContext, dict[str, Any]], list[ResultFile]]


def _fields(argument: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if argument is None:
        return {}
    if not isinstance(argument, dict):
        raise InvalidInput("Field 'argument' must be a JSON object", reason="argument")
    unknown = sorted(set(argument) - allowed)
    if unknown:
        expected = ", ".join(sorted(allowed)) or "none"
        raise InvalidInput(
            f"Field 'argument.{unknown[0]}' is not known (expected: {expected})",
            reason=f"argument.{unknown[0]}",
        )
    return argument


# --- report.accounttrx -----------------------------------------------------------------------


def _check_report(
    session: Session, installation: Installation, argument: Any, owner: Owner
) -> dict[str, Any]:
    document = {} if argument is None else argument
    request = accounting_reports.ReportRequest.parse(document, where="argument")
    # The named account is looked up now, so a report of nobody is refused, not queued.
    accounting_reports.checked_selection(session, request.select)
    return dict(document)


def _run_report(context: JobContext, argument: dict[str, Any]) -> list[ResultFile]:
    request = accounting_reports.ReportRequest.parse(argument, where="argument")
    installation = context.installation
    pdf = request.media_type == "PDF"
    target = context.workdir / ("accounttrx.pdf" if pdf else "accounttrx.csv")
    with installation.db.read() as session, target.open("wb") as out:
        selection = accounting_reports.transaction_filter(session, **request.select)
        total = max(1, accounting_reports.count_report_rows(session, selection))
        context.report(0)
        if pdf:
            accounting_reports.pdf_report(
                session,
                selection,
                out,
                tz=request.tz,
                currency=settings_of(installation.config.snapshot()).currency,
                generated_at=datetime.now(UTC),
                on_rows=lambda done: context.report(done * 100 // total),
            )
        else:
            rows = -1  # the header line is not a row
            chunks = accounting_reports.csv_report(session, selection, tz=request.tz)
            try:
                for chunk in chunks:
                    out.write(chunk)
                    rows += chunk.count(b"\r\n")
                    context.report(rows * 100 // total)
            finally:
                getattr(chunks, "close", lambda: None)()
    media = "application/pdf" if pdf else "text/csv; charset=utf-8"
    return [ResultFile(target.name, media, target)]


# --- backup --------------------------------------------------------------------------------


def _check_backup(
    session: Session, installation: Installation, argument: Any, owner: Owner
) -> dict[str, Any]:
    return dict(_fields(argument, frozenset()))


def _run_backup(context: JobContext, argument: dict[str, Any]) -> list[ResultFile]:
    from printsrv.operations.backup import create_backup

    created = datetime.now(UTC)
    target = context.workdir / f"printsrv-{created:%Y%m%dT%H%M%SZ}.tar"
    info = create_backup(context.installation, target, progress=context.report)
    return [ResultFile(info.path.name, "application/x-tar", info.path)]


# --- users.sync ----------------------------------------------------------------------------


def _check_sync(
    session: Session, installation: Installation, argument: Any, owner: Owner
) -> dict[str, Any]:
    from printsrv.people.sources import ldap_in_use

    fields = _fields(argument, frozenset({"delete_users"}))
    delete_users = fields.get("delete_users", False)
    if not isinstance(delete_users, bool):
        raise InvalidInput(
            "Field 'argument.delete_users' must be true or false", reason="argument.delete_users"
        )
    if not ldap_in_use(installation.config.snapshot()):
        raise InvalidInput(
            "The user source is internal: set auth.method to ldap to sync", reason="auth.method"
        )
    return {"delete_users": delete_users}


def _run_sync(context: JobContext, argument: dict[str, Any]) -> list[ResultFile]:
    from printsrv.people.sync import sync_users_and_groups

    report = sync_users_and_groups(
        context.installation,
        delete_users=bool(argument.get("delete_users", False)),
        progress=context.report,
    )
    target = context.workdir / "sync.json"
    counts = {
        "added": report.added,
        "updated": report.updated,
        "deleted": report.deleted,
        "groups": report.groups,
    }
    target.write_text(json.dumps(counts, indent=2) + "\n")
    return [ResultFile(target.name, "application/json", target)]


JOB_TYPES: dict[str, JobType] = {
    t.name: t
    for t in (
        JobType("report.accounttrx", True, _check_report, _run_report),
        JobType("backup", True, _check_backup, _run_backup),
        JobType("users.sync", True, _check_sync, _run_sync),
    )
}


def job_type(name: Any) -> JobType:
    """The job type called `name`; InvalidInput naming the known ones otherwise."""
    if not isinstance(name, str) or name not in JOB_TYPES:
        shown = repr(name) if isinstance(name, str) else "missing"
        raise InvalidInput(
            f"Field 'type' is {shown}: not one of {', '.join(sorted(JOB_TYPES))}",
            reason="type",
        )
    return JOB_TYPES[name]


def check_caller(kind: JobType, owner: Owner) -> None:
    """NotAllowed when `owner` may not start a job of `kind`."""
    if kind.admin_only and owner.kind != "admin":
        raise NotAllowed(f"Jobs of type {kind.name!r} are for the admin only")
