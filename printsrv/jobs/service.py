"""Jobs in the database: create, claim with a lease, report progress, finish or fail, purge.

A job's life, all of it in its `async_job` row:

    queued ──claim──> running ──finish──> done ──TTL──> expired ──TTL──> (deleted)
                       │  ^ lease ran out: claimed again, from the start
                       └──fail──> failed            canceled (printsrv job cancel)

Claiming is one conditional UPDATE (queued, or running with a lease that ran out) that
raises `attempt`; every later write of the runner names its lease owner and attempt, so a
runner that lost its lease (its machine paused, another one took over) changes nothing:
`renew`, `finish` and `fail` return False for it. The result files go in with the state
change, in one transaction, so a job is never `done` without its files, nor are files ever
written for a job that another runner owns.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Final

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from printsrv.errors import InvalidInput, NotFound, PrintsrvError
from printsrv.jobs.models import Job, JobChunk, JobFile
from printsrv.platform.database import Database
from printsrv.platform.models import utcnow
from printsrv.platform.notifications import Topic, announce

__all__ = [
    "CHUNK_BYTES",
    "ERROR_CODES",
    "MAX_ATTEMPTS",
    "Claim",
    "JobGone",
    "JobKeyNotFound",
    "JobView",
    "Owner",
    "ResultFile",
    "cancel_job",
    "claim_jobs",
    "create_job",
    "fail_job",
    "file_chunks",
    "finish_job",
    "list_jobs",
    "purge_expired",
    "read_job",
    "release_job",
    "renew_lease",
    "result_file",
]

CHUNK_BYTES: Final = 1024 * 1024
# A job whose runner vanished this many times is given up (error -2) rather than claimed
# again: it is more likely to be what kills its runners than a victim of them.
MAX_ATTEMPTS: Final = 3

# The error codes of a job's answer (ONLYOFFICE Document Builder's; docs/jobs.md).
UNKNOWN: Final = -1
TIMEOUT: Final = -2
GENERATION_FAILED: Final = -3
INPUT_UNREADABLE: Final = -4
STORAGE_FAILED: Final = -6
INVALID_TOKEN: Final = -8
ERROR_CODES: Final = {
    UNKNOWN: "unknown error",
    TIMEOUT: "timeout",
    GENERATION_FAILED: "generation failed",
    INPUT_UNREADABLE: "input could not be read",
    STORAGE_FAILED: "result storage failed",
    INVALID_TOKEN: "invalid token",
}


class JobKeyNotFound(NotFound):
    """No job with this key, or one that belongs to someone else: the caller cannot tell."""


class JobGone(PrintsrvError):
    """The job's results were kept for `api.jobs.result-ttl-secs` and have been removed."""


@dataclass(frozen=True)
class Owner:
    """Who started a job, and so who may read it: the REST admin, or one user (by id)."""

    kind: str  # "admin" or "user"
    user_id: int | None = None
    name: str = ""

    @classmethod
    def admin(cls, name: str) -> Owner:
        return cls("admin", None, name)

    @classmethod
    def user(cls, user_id: int, name: str) -> Owner:
        return cls("user", user_id, name)

    def may_read(self, job: Job) -> bool:
        if job.owner_kind != self.kind:
            return False
        return self.kind == "admin" or job.owner_user_id == self.user_id


@dataclass(frozen=True)
class JobView:
    """What a poll, `printsrv job show` and `list` tell of a job."""

    key: str
    job_type: str
    state: str
    progress: int
    error_code: int | None
    message: str
    owner: str
    attempt: int
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None
    files: tuple[str, ...]

    @property
    def end(self) -> bool:
        return self.state not in ("queued", "running")


@dataclass(frozen=True)
class Claim:
    """A job a runner holds: its lease owner and attempt fence every write it makes."""

    key: str
    job_type: str
    argument: dict[str, Any]
    owner: Owner
    lease_owner: str
    attempt: int


@dataclass(frozen=True)
class ResultFile:
    """A result a job produced in a local file, to be stored under `name`."""

    name: str
    media_type: str
    path: Path


@dataclass(frozen=True)
class StoredFile:
    """A stored result file, as a download needs it."""

    id: int
    name: str
    media_type: str
    size: int
    chunks: int


def _view(session: Session, job: Job) -> JobView:
    files: tuple[str, ...] = ()
    if job.state == "done":
        files = tuple(
            session.scalars(
                select(JobFile.name).where(JobFile.job_key == job.key).order_by(JobFile.id)
            )
        )
    owner = job.owner_kind if job.owner_kind == "admin" else f"user {job.owner_name}"
    return JobView(
        key=job.key,
        job_type=job.job_type,
        state=job.state,
        progress=job.progress,
        error_code=job.error_code,
        message=job.message,
        owner=owner,
        attempt=job.attempt,
        created_at=job.created_at,
        finished_at=job.finished_at,
        expires_at=job.expires_at,
        files=files,
    )


# --- requests: create and read ---------------------------------------------------------------


# Letters and digits only: a key is typed on command lines (`printsrv job cancel KEY`), where
# one starting with "-" (as token_urlsafe's may) reads as an option, and pasted into URLs.
KEY_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = 24  # about 143 bits


def new_key() -> str:
    """A new job key: random, unguessable, safe on a command line and in a URL."""
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))


def create_job(
    session: Session, *, job_type: str, argument: dict[str, Any], owner: Owner
) -> JobView:
    """Queue a job of `job_type` with its (checked) `argument`; its key is new and random."""
    job = Job(
        key=new_key(),
        job_type=job_type,
        argument=json.dumps(argument, sort_keys=True, default=str),
        owner_kind=owner.kind,
        owner_user_id=owner.user_id,
        owner_name=owner.name[:255],
        state="queued",
        progress=0,
        message="",
        attempt=0,
        created_at=utcnow(),
    )
    session.add(job)
    session.flush()
    announce(session, Topic.JOBS)  # every server's runner: a job to claim
    return _view(session, job)


def _owned(session: Session, key: str, owner: Owner | None) -> Job:
    """The job `key` if `owner` may read it (None: the local admin at the CLI, who may read
    every job); JobKeyNotFound otherwise, the same for a missing key and someone else's."""
    if not isinstance(key, str) or not 0 < len(key) <= 40 or "\x00" in key:
        raise JobKeyNotFound("No such job")  # NUL: no key has it, PostgreSQL refuses it
    job = session.get(Job, key)
    if job is None or (owner is not None and not owner.may_read(job)):
        raise JobKeyNotFound(f"No job {key!r} of yours")
    return job


def read_job(session: Session, key: str, owner: Owner | None) -> JobView:
    """Where job `key` stands; JobKeyNotFound unless `owner` may read it; JobGone once its
    results have expired."""
    job = _owned(session, key, owner)
    if _expired(job):
        raise JobGone(f"The results of job {key!r} were removed when they expired")
    return _view(session, job)


def _expired(job: Job) -> bool:
    """Past its TTL: gone for every caller, whether or not the purge has run yet."""
    return job.state == "expired" or (job.expires_at is not None and job.expires_at <= utcnow())


def list_jobs(session: Session, *, limit: int = 100) -> list[JobView]:
    """The newest jobs, every owner's (for the CLI)."""
    jobs = session.scalars(select(Job).order_by(Job.created_at.desc()).limit(limit))
    return [_view(session, job) for job in jobs]


def cancel_job(session: Session, key: str, *, ttl_secs: int) -> bool:
    """Cancel a queued or running job; False when it had ended already. A runner holding it
    notices at its next lease renewal and stores nothing."""
    _owned(session, key, None)
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.key == key, Job.state.in_(("queued", "running")))
        .values(
            state="canceled",
            error_code=UNKNOWN,
            message="The job was cancelled",
            finished_at=now,
            expires_at=now + timedelta(seconds=ttl_secs),
            lease_owner=None,
            lease_until=None,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def result_file(session: Session, key: str, name: str, owner: Owner | None) -> StoredFile:
    """A result file of job `key` for `owner`: JobKeyNotFound (missing key, someone else's job,
    no such file), JobGone once it expired."""
    job = _owned(session, key, owner)
    if _expired(job):
        raise JobGone(f"The results of job {key!r} were removed when they expired")
    row = session.execute(
        select(JobFile.id, JobFile.name, JobFile.media_type, JobFile.size, JobFile.chunks).where(
            JobFile.job_key == key, JobFile.name == name
        )
    ).first()
    if row is None:
        raise JobKeyNotFound(f"Job {key!r} has no file {name!r}")
    return StoredFile(*row)


def file_chunks(db: Database, file: StoredFile) -> Iterator[bytes]:
    """The bytes of a stored file, one chunk per short read (nothing held open between)."""
    for seq in range(file.chunks):
        with db.read() as session:
            data = session.scalar(
                select(JobChunk.data).where(JobChunk.file_id == file.id, JobChunk.seq == seq)
            )
        if data is None:  # purged while being read
            return
        yield bytes(data)


# --- runners: claim, renew, finish, fail ----------------------------------------------------


def claim_jobs(db: Database, lease_owner: str, *, lease_secs: int, limit: int) -> list[Claim]:
    """Lease up to `limit` jobs to `lease_owner`: queued ones, and running ones whose lease
    ran out (their runner died: they start again from the beginning). A job that lost its
    runner MAX_ATTEMPTS times fails with TIMEOUT instead."""
    now = utcnow()
    claimable = or_(Job.state == "queued", (Job.state == "running") & (Job.lease_until < now))
    # Looked for in a read first: most rounds find nothing, and on SQLite a write
    # transaction takes the database's one write lock.
    with db.read() as session:
        if session.scalar(select(Job.key).where(claimable).limit(1)) is None:
            return []
    with db.transaction() as session:
        session.execute(
            update(Job)
            .where(Job.state == "running", Job.lease_until < now, Job.attempt >= MAX_ATTEMPTS)
            .values(
                state="failed",
                error_code=TIMEOUT,
                message=f"The job did not finish in {MAX_ATTEMPTS} runs of its lease",
                finished_at=now,
                lease_owner=None,
                lease_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        candidates = list(
            session.scalars(select(Job.key).where(claimable).order_by(Job.created_at).limit(limit))
        )
        if not candidates:
            return []
        rows = session.execute(
            update(Job)
            .where(Job.key.in_(candidates), claimable)
            .values(
                state="running",
                lease_owner=lease_owner,
                lease_until=now + timedelta(seconds=lease_secs),
                attempt=Job.attempt + 1,
                progress=0,
                started_at=now,
            )
            .returning(
                Job.key,
                Job.job_type,
                Job.argument,
                Job.owner_kind,
                Job.owner_user_id,
                Job.owner_name,
                Job.attempt,
                Job.created_at,
            )
            .execution_options(synchronize_session=False)
        ).all()
    rows = sorted(rows, key=lambda row: row.created_at)
    return [
        Claim(
            key=row.key,
            job_type=row.job_type,
            argument=json.loads(row.argument),
            owner=Owner(row.owner_kind, row.owner_user_id, row.owner_name),
            lease_owner=lease_owner,
            attempt=row.attempt,
        )
        for row in rows
    ]


def seconds_until_claimable(db: Database, *, at_most: float) -> float:
    """How long until a running job's lease runs out (its runner may have died), at most
    `at_most`; 0 when a job is claimable now."""
    now = utcnow()
    with db.read() as session:
        if session.scalar(select(Job.key).where(Job.state == "queued").limit(1)) is not None:
            return 0.0
        earliest = session.scalar(select(func.min(Job.lease_until)).where(Job.state == "running"))
    if earliest is None:
        return at_most
    return min(at_most, max(0.0, (earliest - now).total_seconds()))


def _held(claim: Claim) -> tuple[Any, ...]:
    return (
        Job.key == claim.key,
        Job.state == "running",
        Job.lease_owner == claim.lease_owner,
        Job.attempt == claim.attempt,
    )


def renew_lease(db: Database, claim: Claim, *, progress: int, lease_secs: int) -> bool:
    """Extend the lease and write the progress; False when the runner no longer holds the
    job (cancelled, or claimed by another runner after the lease ran out): stop then."""
    with db.transaction() as session:
        result = session.execute(
            update(Job)
            .where(*_held(claim))
            .values(
                progress=max(0, min(99, progress)),
                lease_until=utcnow() + timedelta(seconds=lease_secs),
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def finish_job(db: Database, claim: Claim, files: list[ResultFile], *, ttl_secs: int) -> bool:
    """Mark the job done and store its result files, in one transaction, if `claim` still
    holds it; False (and nothing written) otherwise."""
    now = utcnow()
    with db.transaction() as session:
        won = session.execute(
            update(Job)
            .where(*_held(claim))
            .values(
                state="done",
                progress=100,
                finished_at=now,
                expires_at=now + timedelta(seconds=ttl_secs),
                lease_owner=None,
                lease_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        if not won.rowcount:  # type: ignore[attr-defined]
            return False
        for result in files:
            with result.path.open("rb") as source:
                _store_file(session, claim.key, result, source)
    return True


def _store_file(session: Session, key: str, result: ResultFile, source: BinaryIO) -> None:
    row = JobFile(job_key=key, name=result.name, media_type=result.media_type, size=0, chunks=0)
    session.add(row)
    session.flush()
    seq = size = 0
    while chunk := source.read(CHUNK_BYTES):
        session.execute(JobChunk.__table__.insert().values(file_id=row.id, seq=seq, data=chunk))
        seq += 1
        size += len(chunk)
    row.size, row.chunks = size, seq
    session.flush()


def fail_job(db: Database, claim: Claim, code: int, message: str, *, ttl_secs: int) -> bool:
    """Mark the job failed with `code` (ERROR_CODES) if `claim` still holds it."""
    if code not in ERROR_CODES:
        raise InvalidInput(f"{code} is not a job error code")
    now = utcnow()
    with db.transaction() as session:
        result = session.execute(
            update(Job)
            .where(*_held(claim))
            .values(
                state="failed",
                error_code=code,
                message=message[:2000],
                finished_at=now,
                expires_at=now + timedelta(seconds=ttl_secs),
                lease_owner=None,
                lease_until=None,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def release_job(db: Database, claim: Claim) -> bool:
    """Hand a job back to the queue (a server shutting down): another runner takes it at
    once instead of after the lease. False when `claim` no longer held it."""
    with db.transaction() as session:
        result = session.execute(
            update(Job)
            .where(*_held(claim))
            .values(state="queued", progress=0, lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        announce(session, Topic.JOBS)
        return bool(result.rowcount)  # type: ignore[attr-defined]


def purge_expired(db: Database, *, ttl_secs: int) -> int:
    """Remove the files (and their chunks) of jobs past `expires_at`, marking them expired;
    delete job rows that have been expired a further `ttl_secs` (until then a late request
    is told 410, not 404). Returns how many jobs expired now."""
    now = utcnow()
    with db.transaction() as session:
        due = list(
            session.scalars(
                select(Job.key).where(Job.expires_at <= now, Job.state != "expired").limit(500)
            )
        )
        if due:
            files = select(JobFile.id).where(JobFile.job_key.in_(due))
            session.execute(delete(JobChunk).where(JobChunk.file_id.in_(files)))
            session.execute(delete(JobFile).where(JobFile.job_key.in_(due)))
            session.execute(
                update(Job)
                .where(Job.key.in_(due))
                .values(state="expired")
                .execution_options(synchronize_session=False)
            )
        forgotten = now - timedelta(seconds=ttl_secs)
        session.execute(delete(Job).where(Job.state == "expired", Job.expires_at <= forgotten))
    return len(due)


def count_chunks(session: Session) -> int:
    """How many result chunks are stored (tests and `printsrv job list` footers)."""
    return int(session.scalar(select(func.count()).select_from(JobChunk)) or 0)
