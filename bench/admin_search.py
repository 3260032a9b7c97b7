"""The admin console's user search over 100,000 users: p99 of the page, next to its query.

    python -m bench.admin_search [--users 100000] [--requests 400]

A PostgreSQL schema of its own gets `users` users with full names, email addresses and
card numbers. `printsrv serve` (one worker) then answers GET /admin/people?q=... for a
logged-in REST admin, one request at a time, the queries taking turns: a user name, the
start of a full name, of an email address, of a card number (in another case), a prefix
that many users share, and none (the first page of all). The figure is the page's p99 as a
client sees it (HTTP, session check, the query, the template). The baseline, in the same
run and with the same queries, is the search itself (`printsrv.operations.directory
.search_users`, its own read transaction) called in this process.

Target (issue 20): p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
from sqlalchemy import text

from bench.admin_dashboard import ADMIN, PASSWORD, log_in
from bench.common import PG_URL, SECRET, Row, print_table, printsrv_server, private_schema
from printsrv.migrations import upgrade_schema
from printsrv.operations import directory
from printsrv.operations.installation import Installation, open_installation
from printsrv.platform import properties
from printsrv.platform.environment import Environment

TITLE = "Admin user search: GET /admin/people?q=... over 100,000 users vs the search alone"

FIRST = ("Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo")
LAST = ("Smith", "Jones", "Brown", "Taylor", "Wilson", "Evans")
SEED = [
    """INSERT INTO users (user_name, full_name, email, card_number, enabled, created_at,
           updated_at, email_other, source)
       SELECT 'user' || n,
              (CAST(:first AS text[]))[1 + n % 8] || ' '
                || (CAST(:last AS text[]))[1 + n % 6] || '-' || n,
              'mail' || n || '@school.example',
              'C' || lpad(to_hex(n * 7919), 10, '0'),
              true, now(), now(), '', 'internal'
       FROM generate_series(1, :users) AS n""",
    "ANALYZE users",
]


def queries(users: int) -> list[str]:
    """The searches that take turns (see the module's docstring)."""
    middle = users // 2
    return [
        f"user{middle}",
        f"{FIRST[middle % 8]} {LAST[middle % 6]}-{middle // 10}".upper(),
        f"mail{users // 3}@",
        f"c{middle * 7919:010x}"[:8],
        "grace",
        "",
    ]


def seed(installation: Installation, *, users: int) -> None:
    """The users, and the REST admin's name and password."""
    with installation.db.transaction() as session:
        session.execute(
            text(SEED[0]),
            {"users": users, "first": list(FIRST), "last": list(LAST)},
        )
        for name, value in (
            ("api.restful.auth.username", ADMIN),
            ("api.restful.auth.password", PASSWORD),
        ):
            properties.set_property(session, name, value, hasher=installation.hasher)
    with installation.db.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text(SEED[1]))


def p99(samples: list[float]) -> float:
    """The 99th percentile (nearest rank), in ms."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)] * 1000


def figures(*, users: int = 100_000, requests: int = 400) -> list[Row]:
    """The page's and the search's p99 and median over `requests` turns each."""
    searches = queries(users)
    with private_schema(PG_URL, "admin_search") as url:
        home = Path(tempfile.mkdtemp(prefix="bench-search-"))
        env = Environment(home=home, database_url=url, secret_key=SECRET)
        installation = open_installation(env, create=True)
        try:
            upgrade_schema(installation.db)
            seed(installation, users=users)
            with (
                printsrv_server(home, url) as server,
                httpx.Client(follow_redirects=False, timeout=60) as client,
            ):
                base = f"http://127.0.0.1:{server.port}"
                log_in(client, base)
                for query in searches:  # warm-up, and each search finds someone
                    answer = client.get(f"{base}/admin/people?q={quote(query)}")
                    if answer.status_code != 200 or "/admin/people/users/" not in answer.text:
                        raise RuntimeError(f"search {query!r}: {answer.status_code}")
                    directory.search_users(installation, query)
                ours, theirs = [], []
                for turn in range(requests):
                    query = searches[turn % len(searches)]
                    started = time.perf_counter()
                    directory.search_users(installation, query)
                    theirs.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    answer = client.get(f"{base}/admin/people?q={quote(query)}")
                    ours.append(time.perf_counter() - started)
                    if answer.status_code != 200:
                        raise RuntimeError(f"search {query!r}: {answer.status_code}")
        finally:
            installation.db.dispose()
            shutil.rmtree(home, ignore_errors=True)
    return [
        (
            f"GET /admin/people?q=..., {users:,} users, p99 ms (< 50)",
            f"{p99(ours):.1f}",
            f"{p99(theirs):.1f} (the search alone)",
            f"{p99(ours) / p99(theirs):.2f}",
        ),
        (
            "the same, median ms",
            f"{statistics.median(ours) * 1000:.1f}",
            f"{statistics.median(theirs) * 1000:.1f} (the search alone)",
            f"{statistics.median(ours) / statistics.median(theirs):.2f}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    print_table(TITLE, figures(users=args.users, requests=args.requests))


if __name__ == "__main__":
    main()
