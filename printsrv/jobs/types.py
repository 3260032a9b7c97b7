"""The job types: what each checks before a job is queued, and what it does when it runs.

`check` runs in the request's transaction: it refuses (InvalidInput naming the field,
NotFound, NotAllowed) before anything is written, and returns the argument to store.
`run` runs on a work thread of whichever server claimed the job; it reports progress
through its context (which raises JobStopped once the runner lost the job) and returns the
result files it wrote into the context's work directory.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from printsrv.accounts import reports as accounting_reports
from printsrv.accounts.service import settings_of
from printsrv.errors import InvalidInput, NotAllowed, NotFound
from printsrv.jobs.service import Owner, ResultFile
from printsrv.operations.installation import Installation

__all__ = ["JOB_TYPES", "JobContext", "JobStopped", "JobTimedOut", "JobType", "job_type"]


class JobStopped(Exception):
    """The runner no longer holds the job (cancelled, or taken over): stop, store nothing."""


class JobTimedOut(Exception):
    """The work ran past its own time limit (a conversion's): the job answers -2."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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


# --- convert --------------------------------------------------------------------------------


def _whole(name: str, value: Any, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"Field 'argument.{name}' must be a whole number from {low} to {high}",
            reason=f"argument.{name}",
        )
    return value


def _document_of(session: Session, document_id: int, owner: Owner) -> Any:
    """The stored document, if `owner` may convert it: the admin any, a user their own; the
    same NotFound for a missing document and someone else's."""
    from printsrv.documents.models import Document

    document = session.get(Document, document_id)
    if document is None or (owner.kind == "user" and document.user_id != owner.user_id):
        raise NotFound(f"Document {document_id} does not exist")
    if not document.store:
        raise NotFound(f"The PDF of document {document_id} is no longer stored")
    return document


def _check_convert(
    session: Session, installation: Installation, argument: Any, owner: Owner
) -> dict[str, Any]:
    from printsrv.documents.convert_to import Target

    fields = _fields(argument, frozenset({"document", "format", "page", "width"}))
    if "document" not in fields:
        raise InvalidInput("Field 'argument.document' is missing", reason="argument.document")
    document_id = _whole("document", fields["document"], 1, 2**63 - 1)
    if not isinstance(fields.get("format"), str):
        raise InvalidInput(
            "Field 'argument.format' must be one of pdf, png, txt", reason="argument.format"
        )
    page = _whole("page", fields.get("page"), 1, 1_000_000)
    width = _whole("width", fields.get("width"), 1, 100_000)
    target = Target.parse(
        fields["format"], None if page is None else str(page), None if width is None else str(width)
    )
    _document_of(session, int(document_id or 0), owner)
    return {
        "document": document_id,
        "format": target.format,
        "page": target.page,
        "width": target.width,
    }


def _run_convert(context: JobContext, argument: dict[str, Any]) -> list[ResultFile]:
    from printsrv.documents.convert import ConversionFailed
    from printsrv.documents.convert_to import (
        FORMATS,
        ConvertSettings,
        Target,
        convert_file,
        result_name,
    )
    from printsrv.documents.store import PdfStore

    installation = context.installation
    target = Target(argument["format"], argument["page"], argument["width"])
    with installation.db.read() as session:
        document = _document_of(session, argument["document"], context.owner)
        title, sha256 = document.title, document.pdf_sha256
    source = PdfStore(installation.env.home).path_for(sha256)
    if not source.is_file():
        raise NotFound(f"The PDF of document {argument['document']} is no longer stored")
    name = title or f"document-{argument['document']}.pdf"
    context.report(10)
    limits = ConvertSettings.of(installation.config.snapshot()).limits
    try:
        made = convert_file(source, context.workdir, target, name=name, limits=limits)
    except ConversionFailed as error:
        if error.kind == "timeout":
            raise JobTimedOut(error.message) from None
        raise
    shown = result_name(name, target.format)
    if made.parent != context.workdir or made.name != shown:
        # convert_file answers the stored PDF itself for pdf -> pdf: copy, never move it.
        shutil.copyfile(made, context.workdir / shown)
    return [ResultFile(shown, FORMATS[target.format], context.workdir / shown)]


JOB_TYPES: dict[str, JobType] = {
    t.name: t
    for t in (
        JobType("report.accounttrx", True, _check_report, _run_report),
        JobType("backup", True, _check_backup, _run_backup),
        JobType("users.sync", True, _check_sync, _run_sync),
        JobType("convert", False, _check_convert, _run_convert),
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
