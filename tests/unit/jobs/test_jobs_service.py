"""printsrv.jobs.service on SQLite and PostgreSQL: create, claim with a lease, progress,
finish, fail, lease expiry and re-run, fencing of a runner that lost its lease, TTL purge,
ownership of keys."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from printsrv.jobs import service
from printsrv.jobs.models import Job, JobChunk, JobFile
from printsrv.jobs.service import Claim, JobGone, JobKeyNotFound, Owner, ResultFile
from printsrv.operations.installation import Installation
from printsrv.platform.models import utcnow

ADMIN = Owner.admin("admin")
ALICE = Owner.user(1, "alice")
BOB = Owner.user(2, "bob")
LEASE = 300


def create(installation: Installation, owner: Owner = ADMIN, **argument: object) -> str:
    with installation.db.transaction() as session:
        view = service.create_job(
            session, job_type="report.accounttrx", argument=dict(argument), owner=owner
        )
    assert view.state == "queued" and not view.end and view.progress == 0
    return view.key


def claim_one(installation: Installation, runner: str) -> Claim:
    claims = service.claim_jobs(installation.db, runner, lease_secs=LEASE, limit=5)
    assert len(claims) == 1, claims
    return claims[0]


def view(installation: Installation, key: str, owner: Owner | None = ADMIN) -> service.JobView:
    with installation.db.read() as session:
        return service.read_job(session, key, owner)


def expire_lease(installation: Installation, key: str) -> None:
    with installation.db.transaction() as session:
        session.execute(
            update(Job).where(Job.key == key).values(lease_until=utcnow() - timedelta(seconds=1))
        )


def counts(installation: Installation) -> tuple[int, int, int]:
    with installation.db.read() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(table)) or 0
            for table in (Job, JobFile, JobChunk)
        )


def result(tmp_path: Path, name: str, data: bytes) -> ResultFile:
    path = tmp_path / name
    path.write_bytes(data)
    return ResultFile(name, "application/octet-stream", path)


def test_a_created_job_is_claimed_once_and_runs_under_a_lease(installation: Installation) -> None:
    key = create(installation, media_type="CSV")
    claim = claim_one(installation, "runner-a")
    assert (claim.key, claim.attempt, claim.argument) == (key, 1, {"media_type": "CSV"})
    assert claim.owner == ADMIN
    # Held: nobody else gets it.
    assert service.claim_jobs(installation.db, "runner-b", lease_secs=LEASE, limit=5) == []
    assert view(installation, key).state == "running"


def test_progress_is_written_with_each_renewal(installation: Installation) -> None:
    key = create(installation)
    claim = claim_one(installation, "runner-a")
    assert service.renew_lease(installation.db, claim, progress=42, lease_secs=LEASE)
    assert view(installation, key).progress == 42
    # 100 is only ever written by finishing.
    assert service.renew_lease(installation.db, claim, progress=100, lease_secs=LEASE)
    assert view(installation, key).progress == 99


def test_finishing_stores_the_files_in_chunks(installation: Installation, tmp_path: Path) -> None:
    key = create(installation)
    claim = claim_one(installation, "runner-a")
    big = bytes(range(256)) * (service.CHUNK_BYTES // 256 * 2 + 3)  # two chunks and a bit
    files = [result(tmp_path, "big.bin", big), result(tmp_path, "small.txt", b"hello")]
    assert service.finish_job(installation.db, claim, files, ttl_secs=60)
    done = view(installation, key)
    assert (done.state, done.end, done.progress, done.files) == (
        "done",
        True,
        100,
        ("big.bin", "small.txt"),
    )
    with installation.db.read() as session:
        stored = service.result_file(session, key, "big.bin", ADMIN)
    assert (stored.size, stored.chunks) == (len(big), 3)
    assert b"".join(service.file_chunks(installation.db, stored)) == big


def test_a_failure_is_kept_with_its_code(installation: Installation) -> None:
    key = create(installation)
    claim = claim_one(installation, "runner-a")
    assert service.fail_job(
        installation.db, claim, service.GENERATION_FAILED, "it broke", ttl_secs=60
    )
    failed = view(installation, key)
    assert (failed.state, failed.end, failed.error_code, failed.message) == (
        "failed",
        True,
        -3,
        "it broke",
    )


def test_a_lost_lease_runs_again_from_the_start_and_the_old_runner_writes_nothing(
    installation: Installation, tmp_path: Path
) -> None:
    key = create(installation)
    first = claim_one(installation, "runner-a")
    assert service.renew_lease(installation.db, first, progress=70, lease_secs=LEASE)
    expire_lease(installation, key)  # runner-a's machine stopped renewing
    second = claim_one(installation, "runner-b")
    assert (second.key, second.attempt) == (key, 2)
    assert view(installation, key).progress == 0, "a job taken over starts from the beginning"
    # runner-a comes back: every write of its is refused, nothing is stored.
    assert not service.renew_lease(installation.db, first, progress=90, lease_secs=LEASE)
    assert not service.finish_job(
        installation.db, first, [result(tmp_path, "a.txt", b"stale")], ttl_secs=60
    )
    assert not service.fail_job(installation.db, first, service.UNKNOWN, "x", ttl_secs=60)
    assert counts(installation) == (1, 0, 0)
    assert view(installation, key).state == "running"
    assert service.finish_job(
        installation.db, second, [result(tmp_path, "b.txt", b"fresh")], ttl_secs=60
    )
    assert view(installation, key).files == ("b.txt",)


def test_a_job_that_keeps_losing_its_runner_fails_with_timeout(
    installation: Installation,
) -> None:
    key = create(installation)
    for attempt in range(1, service.MAX_ATTEMPTS + 1):
        assert claim_one(installation, f"runner-{attempt}").attempt == attempt
        expire_lease(installation, key)
    assert service.claim_jobs(installation.db, "runner-x", lease_secs=LEASE, limit=5) == []
    failed = view(installation, key)
    assert (failed.state, failed.error_code) == ("failed", service.TIMEOUT)


def test_a_cancelled_job_stops_its_runner(installation: Installation, tmp_path: Path) -> None:
    key = create(installation)
    claim = claim_one(installation, "runner-a")
    with installation.db.transaction() as session:
        assert service.cancel_job(session, key, ttl_secs=60)
    assert not service.renew_lease(installation.db, claim, progress=10, lease_secs=LEASE)
    assert not service.finish_job(
        installation.db, claim, [result(tmp_path, "x", b"x")], ttl_secs=60
    )
    cancelled = view(installation, key)
    assert (cancelled.state, cancelled.error_code) == ("canceled", service.UNKNOWN)


def test_released_jobs_are_claimed_again_at_once(installation: Installation) -> None:
    key = create(installation)
    claim = claim_one(installation, "runner-a")
    assert service.release_job(installation.db, claim)
    assert claim_one(installation, "runner-b").key == key


def test_the_purge_removes_expired_files_then_the_rows(
    installation: Installation, tmp_path: Path
) -> None:
    kept, gone = create(installation), create(installation)
    for key, ttl in ((kept, 3600), (gone, 1)):
        claims = service.claim_jobs(installation.db, "runner-a", lease_secs=LEASE, limit=1)
        assert claims[0].key == key
        data = b"x" * (service.CHUNK_BYTES + 1)
        assert service.finish_job(
            installation.db, claims[0], [result(tmp_path, "r.bin", data)], ttl_secs=ttl
        )
    assert counts(installation) == (2, 2, 4)
    with installation.db.transaction() as session:
        session.execute(
            update(Job).where(Job.key == gone).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        # Past its TTL, a file is gone (410) even before the purge has run.
        with pytest.raises(JobGone):
            service.result_file(session, gone, "r.bin", ADMIN)
    assert service.purge_expired(installation.db, ttl_secs=3600) == 1
    assert counts(installation) == (2, 1, 2), "the expired job's file and chunks are removed"
    with pytest.raises(JobGone):
        view(installation, gone)
    assert view(installation, kept).files == ("r.bin",)
    # A TTL later the row itself goes; the key is then unknown.
    with installation.db.transaction() as session:
        session.execute(
            update(Job).where(Job.key == gone).values(expires_at=utcnow() - timedelta(hours=2))
        )
    service.purge_expired(installation.db, ttl_secs=3600)
    assert counts(installation) == (1, 1, 2)
    with pytest.raises(JobKeyNotFound):
        view(installation, gone)


def test_a_key_opens_only_its_owners_job(installation: Installation, tmp_path: Path) -> None:
    admins, alices = create(installation, ADMIN), create(installation, ALICE)
    assert view(installation, admins, ADMIN).key == admins
    assert view(installation, alices, ALICE).key == alices
    answers = []
    for key, stranger in ((alices, BOB), (alices, ADMIN), (admins, ALICE), ("no-such-key", ALICE)):
        with pytest.raises(JobKeyNotFound) as refused:
            view(installation, key, stranger)
        answers.append(type(refused.value))
    assert set(answers) == {JobKeyNotFound}
    # The CLI (no owner) reads every job.
    assert view(installation, alices, None).key == alices
    claim = service.claim_jobs(installation.db, "r", lease_secs=LEASE, limit=5)
    for held in claim:
        service.finish_job(installation.db, held, [result(tmp_path, "f", b"1")], ttl_secs=60)
    with installation.db.read() as session, pytest.raises(JobKeyNotFound):
        service.result_file(session, alices, "f", BOB)


def test_keys_are_safe_on_a_command_line_and_in_a_url() -> None:
    """A key starting with "-" was read as an option by `printsrv job cancel KEY`."""
    keys = {service.new_key() for _ in range(2000)}
    assert len(keys) == 2000
    assert all(len(key) == 24 and key.isalnum() and key.isascii() for key in keys)
