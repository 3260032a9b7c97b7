"""An idle server's CPU: what its background work costs when nobody asks anything.

    python -m bench.idle [--seconds 30] [--database-url URL]

A printsrv server with one worker on PostgreSQL and nothing to do (no requests, no jobs)
still follows changes other processes make: the config, what systemStatus reads, new print
jobs and asynchronous jobs, the document log's cache. This measures the CPU time its
process tree uses over `--seconds`, next to a bare Starlette app under the same uvicorn
settings in the same run (bench/bare_app.py: what uvicorn itself costs while idle).
Target (issue 22): below 0.5% of one core.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import (
    PG_URL,
    SECRET,
    Row,
    Server,
    bare_server,
    print_table,
    printsrv_server,
    private_schema,
)
from printsrv.migrations import upgrade_schema
from printsrv.operations.installation import open_installation
from printsrv.platform import properties as config
from printsrv.platform.environment import Environment

TITLE = "An idle server's CPU, % of one core, 1 worker on PostgreSQL (target < 0.5%)"
ADMIN_PASSWORD = "bench-idle-password"
SETTLE_SECONDS = 5.0  # start-up work (first reads, printer sync) is not idleness


def process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its children (uvicorn's worker), in seconds."""
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    total = 0
    for one in [pid, *map(int, children)]:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # ended meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def idle_percent(server: Server, seconds: float) -> float:
    assert server.process is not None
    time.sleep(SETTLE_SECONDS)
    before, started = process_tree_cpu_seconds(server.process.pid), time.monotonic()
    time.sleep(seconds)
    used = process_tree_cpu_seconds(server.process.pid) - before
    return used / (time.monotonic() - started) * 100


def prepare(home: Path, url: str) -> None:
    """Migrate and set the admin's password: a configured installation (status READY)."""
    installation = open_installation(Environment(home=home, database_url=url, secret_key=SECRET))
    upgrade_schema(installation.db)
    with installation.db.transaction() as session:
        config.set_property(
            session,
            "api.restful.auth.password",
            ADMIN_PASSWORD,
            hasher=installation.hasher,
            actor="bench",
        )
    installation.db.dispose()


def figures(*, seconds: float = 30.0, database_url: str = PG_URL) -> list[Row]:
    home = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    try:
        with private_schema(database_url, "idle") as url:
            prepare(home, url)
            with printsrv_server(home, url) as server:
                ours = idle_percent(server, seconds)
        with bare_server() as server:
            bare = idle_percent(server, seconds)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return [("idle worker CPU, % of a core (< 0.5)", f"{ours:.2f}", f"{bare:.2f}", "-")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to watch")
    parser.add_argument("--database-url", default=PG_URL)
    args = parser.parse_args()
    print_table(TITLE, figures(seconds=args.seconds, database_url=args.database_url))


if __name__ == "__main__":
    main()
