"""Asynchronous jobs: polls next to a bare endpoint, the server's answers while a big job
runs, and how long a job takes to finish when the server running it is killed.

    python -m bench.jobs [--seconds 5] [--rounds 3] [--rows 100000] [--part poll,busy,kill]

(a) `GET /restful/v1/jobs/{key}` of a finished job as the admin, wrk -t1 -c64, next to the
    bare endpoint (bench/bare_app.py) answering the same bytes. Target: ratio >= 0.5.
(b) JSON-RPC `systemStatus` at 64 connections while a `report.accounttrx` PDF job of
    `rows` rows runs in the same server process, next to the same server idle. Targets:
    p99 < 50 ms and a rate at least 0.8 of idle. The job's own time is shown beside.
(c) Two servers on one PostgreSQL, `api.jobs.lease-secs` 3: the server running a PDF job of
    the first day's rows (28,799) is killed (-9) once the job is under way; the figure is the
    time from the request to the job's end on the other, next to the same job on one server
    left alone.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, text

import financial
from bench import jsonrpc_status
from bench.common import (
    PG_URL,
    SECRET,
    Load,
    Row,
    alternate,
    bare_server,
    load_rows,
    print_table,
    printsrv_server,
    private_schema,
    wrk,
    wrk_post,
)
from printsrv.jobs.models import Job
from printsrv.migrations import upgrade_schema
from printsrv.operations.installation import open_installation
from printsrv.people import users
from printsrv.platform import properties as config
from printsrv.platform.environment import Environment

ADMIN = ("admin", "bench-admin-pw")
HEADERS = {"Authorization": "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()}
TITLE = (
    "Jobs: GET /jobs/{key} vs bare (target >= 0.5); systemStatus while a PDF job runs vs "
    "idle (targets p99 < 50 ms, rate >= 0.8); kill -9 of the running server"
)
KILL_LEASE_SECS = 3
FIRST_DAY_ROWS = 86_400 // 3 - 1


def prepare(home: Path, url: str, rows: int) -> None:
    """Migrate, open JSON-RPC and the REST admin, and give user `rijk` `rows` ledger rows."""
    installation = open_installation(Environment(home=home, database_url=url, secret_key=SECRET))
    upgrade_schema(installation.db)
    with installation.db.transaction() as session:
        for name, value in (
            ("api.jsonrpc.secret-key", jsonrpc_status.KEY),
            ("api.jsonrpc.ext.ip-addresses-allowed", "127.0.0.1/32"),
            ("api.restful.auth.username", ADMIN[0]),
            ("api.restful.auth.password", ADMIN[1]),
            ("api.jobs.lease-secs", str(KILL_LEASE_SECS)),
        ):
            config.set_property(session, name, value, hasher=installation.hasher, actor="bench")
        users.add_user(session, "rijk")
        account = financial.get_account(session, "USER", "rijk")
        session.execute(
            text(
                "INSERT INTO account_trx (account_id, trx_type, amount, balance_after, comment, "
                "actor_kind, actor_name, created_at) SELECT :id, 'PRINT_OUT', -0.05, -0.05 * n, "
                "'print job ' || n || ': report-' || n || '.pdf', 'system', 'printing', "
                "timestamptz '2023-01-01 00:00:00+00' + n * interval '3 seconds' "
                "FROM generate_series(1, :rows) AS n"
            ),
            {"id": account.id, "rows": rows},
        )
    installation.db.dispose()


def pdf_job(*, first_day: bool = False) -> dict[str, Any]:
    """A PDF report job of rijk's rows; `first_day`: only those of 2023-01-01 (the rows are
    3 s apart from its start, so at most FIRST_DAY_ROWS of them)."""
    select_part: dict[str, Any] = {"account_name": "rijk"}
    if first_day:
        select_part["date_to"] = {"ccyy": 2023, "mm": 1, "dd": 1, "zzz": "Z"}
    return {
        "async": True,
        "type": "report.accounttrx",
        "argument": {"select": select_part, "media_type": "PDF"},
    }


def start(base: str, body: dict[str, Any]) -> str:
    answer = httpx.post(f"{base}/restful/v1/jobs", json=body, auth=ADMIN, timeout=60)
    answer.raise_for_status()
    return str(answer.json()["key"])


def wait_end(base: str, key: str, timeout: float = 900) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{base}/restful/v1/jobs/{key}", auth=ADMIN, timeout=30).json()
        if answer["end"]:
            if "urls" not in answer:
                raise RuntimeError(f"job {key} failed: {answer}")
            return dict(answer)
        time.sleep(0.1)
    raise RuntimeError(f"job {key} did not end in {timeout} s")


# --- (a) polls -------------------------------------------------------------------------------


def poll_figures(home: Path, url: str, seconds: int, rounds: int) -> list[Row]:
    with printsrv_server(home, url) as server:
        base = f"http://127.0.0.1:{server.port}"
        small = {"async": False, "type": "report.accounttrx", "argument": {"select": {"text": "x"}}}
        done = httpx.post(f"{base}/restful/v1/jobs", json=small, auth=ADMIN, timeout=60)
        done.raise_for_status()
        key = done.json()["key"]
        body = httpx.get(f"{base}/restful/v1/jobs/{key}", auth=ADMIN).content
    path = f"/restful/v1/jobs/{key}"
    work = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    try:
        answer = work / "job.json"
        answer.write_bytes(body)

        def ours() -> Load:
            with printsrv_server(home, url, cpus="0") as server:
                return wrk(f"http://127.0.0.1:{server.port}{path}", headers=HEADERS,
                           seconds=seconds, cpus="1")  # fmt: skip

        def bare() -> Load:
            with bare_server(cpus="0", env={"BENCH_BARE_JOB_FILE": str(answer)}) as server:
                return wrk(f"http://127.0.0.1:{server.port}{path}", headers=HEADERS,
                           seconds=seconds, cpus="1")  # fmt: skip

        mine, base_load = alternate(ours, bare, rounds=rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return load_rows("GET /jobs/{key}", mine, base_load, target=">= 0.5")


# --- (b) the server while a job runs ---------------------------------------------------------


def status_load(port: int, seconds: int) -> Load:
    return wrk_post(
        f"http://127.0.0.1:{port}/jsonrpc/v1",
        jsonrpc_status.BODY,
        {"Content-Type": "application/json", "X-Auth-Key": jsonrpc_status.KEY},
        seconds=seconds,
        cpus="1",
    )


def busy_figures(home: Path, url: str, seconds: int, rows: int) -> list[Row]:
    with printsrv_server(home, url, cpus="0") as server:
        base = f"http://127.0.0.1:{server.port}"
        idle = status_load(server.port, seconds)
        started = time.monotonic()
        key = start(base, pdf_job())
        busy = status_load(server.port, seconds)
        still_running = not httpx.get(f"{base}/restful/v1/jobs/{key}", auth=ADMIN).json()["end"]
        wait_end(base, key)
        took = time.monotonic() - started
    note = "" if still_running else " (the job ended before the load did!)"
    target = "rate >= 0.8 of idle, p99 < 50 ms"
    return [
        *load_rows(f"systemStatus during a {rows:,}-row PDF job{note}", busy, idle, target=target),
        (f"the {rows:,}-row PDF job itself, s", f"{took:.1f}", "-", "-"),
    ]


# --- (c) kill -9 -----------------------------------------------------------------------------


def _holder(url: str, key: str) -> tuple[int, int] | None:
    """(pid of the runner, progress) once the job is under way, else None."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                select(Job.lease_owner, Job.progress, Job.state).where(Job.key == key)
            ).first()
    finally:
        engine.dispose()
    if row is None or row.state != "running" or not row.lease_owner or row.progress < 5:
        return None
    return int(row.lease_owner.split(":")[1]), row.progress


def kill_figures(home: Path, url: str, rows: int) -> list[Row]:
    body = pdf_job(first_day=True)
    with printsrv_server(home, url) as alone:
        base = f"http://127.0.0.1:{alone.port}"
        started = time.monotonic()
        wait_end(base, start(base, body))
        undisturbed = time.monotonic() - started
    with printsrv_server(home, url) as first, printsrv_server(home, url) as second:
        bases = {s.process.pid: (s, f"http://127.0.0.1:{s.port}") for s in (first, second)}  # type: ignore[union-attr]
        started = time.monotonic()
        key = start(bases[first.process.pid][1], body)  # type: ignore[union-attr]
        while (held := _holder(url, key)) is None:
            if time.monotonic() - started > 300:
                raise RuntimeError("the job never got under way")
            time.sleep(0.05)
        pid, progress = held
        victim, _ = bases[pid]
        assert victim.process is not None
        victim.process.kill()
        victim.process.wait()
        (survivor_base,) = [b for p, (_, b) in bases.items() if p != pid]
        killed_after = time.monotonic() - started
        wait_end(survivor_base, key)
        took = time.monotonic() - started
    return [
        (
            f"{rows:,}-row PDF job, its server killed -9 at {progress}% "
            f"({killed_after:.1f} s; lease {KILL_LEASE_SECS} s), s to finish",
            f"{took:.1f}",
            f"{undisturbed:.1f}",
            f"{took / undisturbed:.2f}",
        )
    ]


def figures(
    *,
    seconds: int = 5,
    rounds: int = 3,
    rows: int = 100_000,
    parts: str = "poll,busy,kill",
    database_url: str = PG_URL,
) -> list[Row]:
    """Every part asked for, in one schema of its own."""
    chosen = set(parts.split(","))
    result: list[Row] = []
    home = Path(tempfile.mkdtemp(prefix="bench-jobs-home-"))
    try:
        with private_schema(database_url, "jobs") as url:
            prepare(home, url, rows)
            if "poll" in chosen:
                result += poll_figures(home, url, seconds, rounds)
            if "busy" in chosen:
                result += busy_figures(home, url, seconds, rows)
            if "kill" in chosen:
                result += kill_figures(home, url, min(rows, FIRST_DAY_ROWS))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="poll runs of each side")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the big PDF job")
    parser.add_argument("--part", default="poll,busy,kill")
    parser.add_argument("--database-url", default=PG_URL)
    args = parser.parse_args()
    rows = figures(
        seconds=args.seconds,
        rounds=args.rounds,
        rows=args.rows,
        parts=args.part,
        database_url=args.database_url,
    )
    print_table(TITLE, rows)


if __name__ == "__main__":
    main()
