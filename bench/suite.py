"""Every benchmark of the project, one after the other, in one table.

    bench/run [--quick] [--only NAME,...]

NAME: jsonrpc, documents, tokens, money, printing, convert, idle, jobs, quotas, agents,
dashboard.

Each figure stands next to its baseline measured in the same run (a bare Starlette endpoint
under the same uvicorn settings, pgbench, psql \\copy, psql INSERT ... SELECT, lp) and the
ratio between them. The targets of the issues are named in the figure's label. --quick
shortens every phase (for a smoke run; the figures are noisier). A benchmark that fails is
reported in the table and the others still run; the exit status is non-zero when any failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from bench import (
    admin_dashboard,
    admin_search,
    agents,
    convert_to,
    financial,
    idle,
    jobs,
    jsonrpc_status,
    printing,
    quota,
    rest_documents,
    xmlrpc_tokens,
)
from bench.common import ROOT, Row, print_table


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    run: Callable[[bool], list[Row]]


BENCHMARKS = [
    Benchmark(
        "jsonrpc",
        jsonrpc_status.TITLE + "; scaling with 1, 2, 4 workers",
        lambda quick: jsonrpc_status.figures(seconds=3 if quick else 5, rounds=1 if quick else 3),
    ),
    Benchmark(
        "documents",
        rest_documents.TITLE,
        lambda quick: rest_documents.figures(seconds=3 if quick else 5, rounds=1 if quick else 3),
    ),
    Benchmark(
        "tokens",
        xmlrpc_tokens.TITLE,
        lambda quick: xmlrpc_tokens.figures(seconds=4 if quick else 8),
    ),
    Benchmark(
        "money",
        financial.TITLE,
        lambda quick: financial.figures(
            seconds=5 if quick else 10, csv_rows=100_000 if quick else 1_000_000
        ),
    ),
    Benchmark(
        "printing",
        printing.TITLE,
        lambda quick: printing.figures(jobs=120 if quick else 400, skip_big=quick),
    ),
    Benchmark(
        "convert",
        convert_to.TITLE,
        lambda quick: convert_to.figures(seconds=2 if quick else 5, rounds=1 if quick else 3),
    ),
    Benchmark("idle", idle.TITLE, lambda quick: idle.figures(seconds=10 if quick else 30)),
    Benchmark(
        "jobs",
        jobs.TITLE,
        lambda quick: jobs.figures(
            seconds=3 if quick else 5, rounds=1 if quick else 3, rows=20_000 if quick else 100_000
        ),
    ),
    Benchmark(
        "quotas",
        quota.TITLE,
        lambda quick: quota.figures(members=20_000 if quick else 100_000, rounds=1 if quick else 2),
    ),
    Benchmark(
        "agents",
        agents.TITLE,
        lambda quick: agents.figures(
            jobs=20 if quick else 60,
            rounds=1 if quick else 3,
            agents=50 if quick else 200,
            idle_secs=5 if quick else 10,
        ),
    ),
    Benchmark(
        "dashboard",
        admin_dashboard.TITLE,
        lambda quick: admin_dashboard.figures(
            ledger=100_000 if quick else 1_000_000,
            documents=10_000 if quick else 100_000,
            rounds=3 if quick else 5,
        ),
    ),
    Benchmark(
        "admin-search",
        admin_search.TITLE,
        lambda quick: admin_search.figures(users=100_000, requests=120 if quick else 400),
    ),
]


def machine() -> str:
    """What the figures were measured on: cores, load before the run, the commit."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}, commit {commit or 'unknown'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases (a smoke run)")
    names = [b.name for b in BENCHMARKS]
    parser.add_argument("--only", default=",".join(names), help=f"some of {', '.join(names)}")
    args = parser.parse_args()
    chosen = args.only.split(",")
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    print(f"bench/run on {machine()}", flush=True)
    rows: list[Row] = []
    failed = []
    for benchmark in (b for b in BENCHMARKS if b.name in chosen):
        started = time.monotonic()
        print(f"\n== {benchmark.name}: {benchmark.title}", flush=True)
        try:
            found = benchmark.run(args.quick)
        except Exception as error:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(benchmark.name)
            found = [("FAILED", f"{type(error).__name__}: {error}"[:80], "-", "-")]
        print_table(f"{benchmark.title} ({time.monotonic() - started:.0f} s)", found)
        rows += [(f"[{benchmark.name}]", "", "", ""), *found]
    print_table(f"All figures ({machine()})", rows)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
