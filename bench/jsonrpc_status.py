"""systemStatus over JSON-RPC at 64 connections, with 1 and 2 workers, next to a bare endpoint.

    python -m bench.jsonrpc_status [--seconds 8]

Target (issue 4): at least 0.6 of the bare endpoint's requests per second, p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import PG_URL, SECRET, bare_server, print_table, printsrv_server, wrk_post

KEY = "bench-jsonrpc-key"
BODY = '{"jsonrpc":"2.0","id":"reference","method":"systemStatus"}'


def prepare(home: Path, database_url: str) -> None:
    """Migrate, create the admin, and open JSON-RPC to loopback with KEY."""
    env = {
        **os.environ,
        "PRINTSRV_HOME": str(home),
        "PRINTSRV_DATABASE_URL": database_url,
        "PRINTSRV_SECRET_KEY": SECRET,
    }
    for name, value in [
        ("api.jsonrpc.secret-key", KEY),
        ("api.jsonrpc.ext.ip-addresses-allowed", "127.0.0.1/32"),
        ("api.restful.auth.username", "admin"),
        ("api.restful.auth.password", "bench-admin"),
        ("system.maintenance", "N"),
    ]:
        subprocess.run(
            [sys.executable, "-m", "printsrv", "config", "set", name, value],
            env=env,
            check=True,
            capture_output=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--database-url", default=PG_URL)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-jsonrpc-"))
    prepare(home, args.database_url)
    rows = []
    for workers in (1, 2):
        # One worker: server on core 0, load on core 1. Two workers need both cores.
        server_cpus, load_cpus = ("0", "1") if workers == 1 else (None, None)
        with bare_server(workers=workers, cpus=server_cpus) as bare:
            base = wrk_post(
                f"http://127.0.0.1:{bare.port}/jsonrpc/v1",
                BODY,
                {"Content-Type": "application/json"},
                seconds=args.seconds,
                cpus=load_cpus,
            )
        with printsrv_server(home, args.database_url, workers=workers, cpus=server_cpus) as server:
            ours = wrk_post(
                f"http://127.0.0.1:{server.port}/jsonrpc/v1",
                BODY,
                {"Content-Type": "application/json", "X-Auth-Key": KEY},
                seconds=args.seconds,
                cpus=load_cpus,
            )
        rows += [
            (
                f"systemStatus req/s, {workers} worker(s)",
                f"{ours.requests_per_second:,.0f}",
                f"{base.requests_per_second:,.0f}",
                f"{ours.requests_per_second / base.requests_per_second:.2f}",
            ),
            (
                f"systemStatus p50 ms, {workers} worker(s)",
                f"{ours.p50_ms:.1f}",
                f"{base.p50_ms:.1f}",
                f"{ours.p50_ms / base.p50_ms:.2f}",
            ),
            (
                f"systemStatus p99 ms, {workers} worker(s)",
                f"{ours.p99_ms:.1f}",
                f"{base.p99_ms:.1f}",
                f"{ours.p99_ms / base.p99_ms:.2f}",
            ),
            (f"errors, {workers} worker(s)", str(ours.errors), str(base.errors), "-"),
        ]
    print_table("JSON-RPC systemStatus, wrk -t1 -c64 (target: ratio >= 0.6, p99 < 50 ms)", rows)


if __name__ == "__main__":
    main()
