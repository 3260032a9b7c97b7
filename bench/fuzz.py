"""A longer schemathesis run against a live printsrv: every /restful/v1 operation, round after
round with fresh seeds, until the minutes are up (docs/openapi.md).

    .venv/bin/python -m bench.fuzz [--minutes 10] [--examples 50] [--database URL]

Serves a fresh installation (SQLite in a temporary directory, or a private schema of
``--database``, dropped at the end) on loopback with the data tests/fuzzing.py seeds, and
prints the requests tried, the operations, the statuses seen and the failures found by kind
(with a curl line to reproduce each kind's first). The exit status is 1 when anything failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, SECRET, private_schema

sys.path.insert(0, str(ROOT / "tests"))

from fuzzing import FuzzReport, fuzz, load_schema, seed_world
from support import LiveServer

from printsrv.migrations import upgrade_schema
from printsrv.operations.installation import open_installation
from printsrv.platform.environment import Environment

TITLE = "schemathesis against /restful/v1: requests tried and failures found"


def run(minutes: float, examples: int, database_url: str | None = None) -> FuzzReport:
    """Fuzz every operation, `examples` requests per operation and mode a round, new seeds
    each round, until `minutes` have passed (at least one round)."""
    with (
        tempfile.TemporaryDirectory(prefix="printsrv-fuzz-") as tmp,
        private_schema(database_url or f"sqlite:///{tmp}/printsrv.db", "fuzz") as url,
    ):
        home = Path(tmp) / "home"
        installation = open_installation(
            Environment(home=home, database_url=url, secret_key=SECRET)
        )
        upgrade_schema(installation.db)
        server = LiveServer(installation).start()
        try:
            world = seed_world(installation, server.url)
            schema = load_schema(world)
            deadline = time.monotonic() + minutes * 60
            report = FuzzReport()
            round_number = 0
            while True:
                fuzz(
                    schema,
                    world,
                    examples=examples,
                    deadline=deadline if round_number else None,  # the first round is whole
                    report=report,
                    seed=round_number,
                )
                round_number += 1
                if time.monotonic() > deadline:
                    return report
        finally:
            server.stop()
            installation.db.dispose()


def print_report(report: FuzzReport, seconds: float) -> None:
    print(TITLE)
    print(f"  operations:        {report.operations}")
    print(f"  requests tried:    {report.requests} in {seconds:.0f} s")
    print(f"  failures:          {len(report.failures())}")
    kinds = report.kinds()
    for kind, count in sorted(kinds.items()):
        print(f"    {kind:<28} {count}")
    print("  statuses seen per operation:")
    for operation, statuses in sorted(report.seen.items()):
        print(f"    {operation:<40} {' '.join(str(s) for s in sorted(statuses))}")
    if report.failures():
        print(report.summary(limit=20))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--examples", type=int, default=50, help="per operation, mode, round")
    parser.add_argument("--database", default=None, help="a PostgreSQL URL (default: SQLite)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    report = run(args.minutes, args.examples, args.database)
    print_report(report, time.monotonic() - started)
    return 1 if report.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
