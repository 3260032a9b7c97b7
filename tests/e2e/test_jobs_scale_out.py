"""Two `printsrv serve` processes on one PostgreSQL: the one running a job is killed (-9),
the other runs it again from the start once the lease ran out, and either answers polls."""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text
from support import ServeProcess, empty_postgresql, set_config, wait_until

import financial
from printsrv.jobs.models import Job
from printsrv.operations.installation import Installation
from printsrv.people import users

pytestmark = pytest.mark.skipif(
    not os.environ.get("PRINTSRV_TEST_DATABASE_URL"), reason="needs PostgreSQL"
)
ADMIN = ("admin", "admin-password-long")
LEASE_SECS = 3
ROWS = 20_000


@pytest.fixture(params=["postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """PostgreSQL only: SQLite is one file on one machine."""
    url = request.getfixturevalue("postgresql_schema_url")
    empty_postgresql(url)
    return url


@pytest.fixture
def two_servers(installation: Installation, tmp_path: Path) -> Iterator[list[ServeProcess]]:
    set_config(
        installation,
        {
            "api.restful.auth.username": ADMIN[0],
            "api.restful.auth.password": ADMIN[1],
            "api.jobs.lease-secs": str(LEASE_SECS),
        },
    )
    with installation.db.transaction() as session:
        users.add_user(session, "rijk")
        account = financial.get_account(session, "USER", "rijk")
        session.execute(
            text(
                "INSERT INTO account_trx (account_id, trx_type, amount, balance_after, comment, "
                "actor_kind, actor_name, created_at) SELECT :id, 'ADJUST', 1, n, 'row ' || n, "
                "'admin', 'admin', now() FROM generate_series(1, :rows) AS n"
            ),
            {"id": account.id, "rows": ROWS},
        )
    env = {
        "PRINTSRV_HOME": str(installation.env.home),
        "PRINTSRV_DATABASE_URL": installation.env.database_url,
        "PRINTSRV_SECRET_KEY": installation.env.secret_key or "",
    }
    servers = [
        ServeProcess(env, log=tmp_path / "a.log").start(),
        ServeProcess(env, log=tmp_path / "b.log").start(),
    ]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_a_job_whose_server_is_killed_is_finished_by_the_other(
    two_servers: list[ServeProcess], installation: Installation
) -> None:
    bases = [f"http://127.0.0.1:{server.port}/restful/v1" for server in two_servers]
    argument = {"select": {"account_name": "rijk"}, "media_type": "PDF"}
    first = httpx.post(
        f"{bases[0]}/jobs",
        json={"async": True, "type": "report.accounttrx", "argument": argument},
        auth=ADMIN,
    )
    assert first.status_code == 200, first.text
    key = first.json()["key"]

    def running() -> Job | None:
        with installation.db.read() as session:
            job = session.scalar(select(Job).where(Job.key == key))
        return job if job is not None and job.state == "running" and job.progress > 0 else None

    job = wait_until(running, timeout=60, interval=0.05)
    assert job.lease_owner is not None
    pid = int(job.lease_owner.split(":")[1])
    (victim,) = [s for s in two_servers if s.process and s.process.pid == pid]
    (survivor,) = [s for s in two_servers if s is not victim]
    assert victim.process is not None
    victim.process.kill()  # SIGKILL: no shutdown, no hand-back; only the lease runs out
    victim.process.wait(10)
    killed_at = time.monotonic()
    other = f"http://127.0.0.1:{survivor.port}/restful/v1"

    def ended() -> dict | None:
        answer = httpx.get(f"{other}/jobs/{key}", auth=ADMIN, timeout=10).json()
        return answer if answer["end"] else None

    final = wait_until(ended, timeout=120, interval=0.2)
    took = time.monotonic() - killed_at
    assert "urls" in final, final
    assert took >= LEASE_SECS - 1, "the other server waited for the lease to run out"
    with installation.db.read() as session:
        done = session.scalar(select(Job).where(Job.key == key))
        assert done is not None
        assert (done.state, done.attempt) == ("done", 2)
    pdf = httpx.get(final["urls"]["accounttrx.pdf"], auth=ADMIN, timeout=60)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    # The CSV of the same selection, for comparison of the row count, through the survivor.
    sync = httpx.post(
        f"{other}/reports/accounttrx",
        json={**argument, "media_type": "CSV"},
        auth=ADMIN,
        timeout=60,
    )
    assert len(list(csv.reader(io.StringIO(sync.text, newline="")))) == ROWS + 1
