"""systemStatus over JSON-RPC at 64 connections with 1, 2 and 4 workers, next to a bare endpoint.

    python -m bench.jsonrpc_status [--seconds 5] [--rounds 3] [--workers 1,2,4]

Each side runs `rounds` times, taking turns with the other (a fresh server each time); the
rate is the best run's, the latencies the median run's (bench.common.combine).

Target (issues 4 and 7): at least 0.6 of the bare endpoint's requests per second, p99 under
50 ms. The rows for several workers are the scaling figures of issue 7: each worker count
is compared with the bare endpoint under the same worker count.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

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
    wrk_post,
)

KEY = "bench-jsonrpc-key"
BODY = '{"jsonrpc":"2.0","id":"reference","method":"systemStatus"}'
TITLE = (
    "JSON-RPC systemStatus, wrk -t1 -c64 (targets, issue 22: ratio >= 0.8, p99 < 20 ms; "
    "4 workers on 2 cores never below 2)"
)


def prepare(home: Path, database_url: str) -> None:
    """Set up an installation (`printsrv init`), then the admin, and open JSON-RPC to loopback
    with KEY."""
    env = {
        **os.environ,
        "PRINTSRV_HOME": str(home),
        "PRINTSRV_DATABASE_URL": database_url,
        "PRINTSRV_SECRET_KEY": SECRET,
    }
    # Only serve, init and restore may create an installation; config set refuses to.
    subprocess.run(
        [sys.executable, "-m", "printsrv", "init"], env=env, check=True, capture_output=True
    )
    for name, value in [
        ("api.jsonrpc.secret-key", KEY),
        ("api.jsonrpc.ext.ip-addresses-allowed", "127.0.0.1/32"),
        ("api.restful.auth.username", "admin"),
        ("api.restful.auth.password", "bench-admin-password"),
        ("system.maintenance", "N"),
    ]:
        subprocess.run(
            [sys.executable, "-m", "printsrv", "config", "set", name, value],
            env=env,
            check=True,
            capture_output=True,
        )


def measure_bare(count: int, cpus: tuple[str | None, str | None], seconds: int) -> Load:
    """One run of the bare endpoint under `count` workers; `cpus` = (server, load)."""
    with bare_server(workers=count, cpus=cpus[0]) as bare:
        return wrk_post(
            f"http://127.0.0.1:{bare.port}/jsonrpc/v1",
            BODY,
            {"Content-Type": "application/json"},
            seconds=seconds,
            cpus=cpus[1],
        )


def measure_printsrv(
    home: Path, url: str, count: int, cpus: tuple[str | None, str | None], seconds: int
) -> Load:
    """One run of printsrv's systemStatus under `count` workers; `cpus` = (server, load)."""
    with printsrv_server(home, url, workers=count, cpus=cpus[0]) as server:
        return wrk_post(
            f"http://127.0.0.1:{server.port}/jsonrpc/v1",
            BODY,
            {"Content-Type": "application/json", "X-Auth-Key": KEY},
            seconds=seconds,
            cpus=cpus[1],
        )


def figures(
    *,
    seconds: int = 5,
    rounds: int = 3,
    workers: tuple[int, ...] = (1, 2, 4),
    database_url: str = PG_URL,
) -> list[Row]:
    """systemStatus next to the bare endpoint per worker count, taking turns `rounds` times."""
    rows: list[Row] = []
    rates: dict[int, float] = {}
    with private_schema(database_url, "jsonrpc") as url:
        home = Path(tempfile.mkdtemp(prefix="bench-jsonrpc-"))
        prepare(home, url)
        for count in workers:
            # One worker: server on core 0, load on core 1. More workers need both cores.
            cpus = ("0", "1") if count == 1 else (None, None)
            ours, base = alternate(
                functools.partial(measure_printsrv, home, url, count, cpus, seconds),
                functools.partial(measure_bare, count, cpus, seconds),
                rounds=rounds,
            )
            rows += load_rows(
                f"systemStatus, {count} worker(s)", ours, base, target=">= 0.8, p99 < 20 ms"
            )
            rates[count] = ours.requests_per_second
    if 2 in rates and 4 in rates:
        rows.append(
            (
                "systemStatus, 4 workers vs 2 on 2 cores (never below)",
                f"{rates[4]:,.0f}",
                f"{rates[2]:,.0f} (2 workers)",
                f"{rates[4] / rates[2]:.2f}",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of each run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side, taking turns")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--database-url", default=PG_URL)
    args = parser.parse_args()
    counts = tuple(int(n) for n in args.workers.split(","))
    print_table(
        TITLE,
        figures(
            seconds=args.seconds,
            rounds=args.rounds,
            workers=counts,
            database_url=args.database_url,
        ),
    )


if __name__ == "__main__":
    main()
