"""Scheduled quotas: one period of a group's quota credited to 100,000 members.

    python -m bench.quota [--members 100000] [--rounds 2]

`quotas.allocate_due` for one daily period of a group with `members` members (each gets a
`quota_credit` row, a QUOTA ledger row and a balance change, through `financial.post_set`),
next to `psql` running one `INSERT INTO account_trx ... SELECT` of the same rows (same
columns and values, the balance after included, no balance update, in a transaction rolled
back), against the same database in the same run. The figure is wall time and members (=
ledger rows) per second; the ratio is how many times the baseline's time the allocation
takes. The rounds take turns (each round a new day, so each allocation has real work); the
best of each side counts. `financial verify` must be clean at the end.

The machine's cores are shared by Python and PostgreSQL: compare the ratio, not the times.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from bench.common import PG_URL, SECRET, Row, print_table, private_schema
from bench.financial import pg_command_env
from printsrv.accounts import quotas
from printsrv.migrations import upgrade_schema
from printsrv.operations.installation import Installation, open_installation
from printsrv.people import users
from printsrv.platform.environment import Environment

TITLE = "Quotas: one period for 100,000 members vs one INSERT ... SELECT in psql (PostgreSQL)"
SET_AT = datetime(2025, 1, 1, 10, tzinfo=UTC)


def prepare(installation: Installation, members: int) -> int:
    """Group `staff` with `members` users, each with a USER account; returns the group id."""
    with installation.db.transaction() as session:
        group = users.add_group(session, "staff")
        session.execute(
            text(
                "INSERT INTO users (user_name, full_name, email, enabled, created_at, "
                "updated_at, email_other, source) SELECT 'member' || n, '', '', true, now(), "
                "now(), '', 'internal' FROM generate_series(1, :members) AS n"
            ),
            {"members": members},
        )
        session.execute(
            text(
                "INSERT INTO account (account_type, name, balance, credit_limit_policy, "
                "disabled, created_at) SELECT 'USER', user_name, 0, 'NONE', false, now() "
                "FROM users WHERE user_name LIKE 'member%'"
            )
        )
        session.execute(
            text(
                "INSERT INTO user_group_member (group_id, user_id) SELECT :group, id FROM users "
                "WHERE user_name LIKE 'member%'"
            ),
            {"group": group.id},
        )
        session.execute(text("ANALYZE"))
        group_id = group.id
    quotas.set_clock(lambda: SET_AT)
    try:
        with installation.db.transaction() as session:
            terms = quotas.parse_terms("0.50", "daily", None)
            quotas.set_group_quota(session, "staff", terms, actor="bench", time_zone="UTC")
    finally:
        quotas.set_clock(None)
    return group_id


def baseline(url: str, group_id: int) -> tuple[float, int]:
    """psql: one INSERT ... SELECT of the same ledger rows, timed by psql, rolled back."""
    insert = (
        "INSERT INTO account_trx (account_id, trx_type, amount, balance_after, comment, "
        "actor_kind, actor_name, created_at, reference) SELECT a.id, 'QUOTA', 0.5, "
        "a.balance + 0.5, 'Quota of group staff for day 2025-01-02', 'system', 'quota', now(), "
        "'quota:staff:2025-01-02' FROM user_group_member m JOIN users u ON u.id = m.user_id "
        "JOIN account a ON a.account_type = 'USER' AND a.name = u.user_name "
        f"WHERE m.group_id = {int(group_id)} AND u.deleted_at IS NULL"
    )
    args, env = pg_command_env(url)
    out = subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", "\\timing on", "-c", "BEGIN",
         "-c", insert, "-c", "ROLLBACK", *args],
        capture_output=True, text=True, env=env, check=True, timeout=600,
    ).stdout  # fmt: skip
    found = re.search(r"INSERT 0 (\d+)\nTime: ([\d.]+) ms", out)
    if not found:
        raise RuntimeError(f"psql printed no timing: {out[-500:]}")
    return float(found.group(2)) / 1000, int(found.group(1))


def allocate(installation: Installation, day: int) -> tuple[float, int]:
    """One period (2 January + `day`): seconds and ledger rows written."""
    as_of = datetime(2025, 1, 2, 0, 0, 1, tzinfo=UTC) + timedelta(days=day)
    started = time.perf_counter()
    done = quotas.allocate_due(installation, as_of=as_of)
    seconds = time.perf_counter() - started
    if done.periods != 1:
        raise RuntimeError(f"expected one period, allocated {done.periods}")
    return seconds, done.credited


def figures(*, members: int = 100_000, rounds: int = 2) -> list[Row]:
    """The allocation next to psql's INSERT ... SELECT, best of `rounds` each."""
    if shutil.which("psql") is None:
        raise RuntimeError("psql is needed (Debian: postgresql-client)")
    with private_schema(PG_URL, "quota") as url:
        home = Path(tempfile.mkdtemp(prefix="bench-quota-"))
        env = Environment(home=home, database_url=url, secret_key=SECRET)
        installation = open_installation(env, create=True)
        try:
            upgrade_schema(installation.db)
            group_id = prepare(installation, members)
            ours, theirs = [], []
            for day in range(rounds):
                theirs.append(baseline(url, group_id))
                ours.append(allocate(installation, day))
            with installation.db.read() as session:
                from printsrv.accounts import service as accounting

                problems = accounting.verify_ledger(session)
            if problems:
                raise RuntimeError(f"ledger not clean after the allocation: {problems[:3]}")
        finally:
            installation.db.dispose()
            shutil.rmtree(home, ignore_errors=True)
    best, base = min(ours), min(theirs)
    if best[1] != members or base[1] != members:
        raise RuntimeError(f"rows written: ours {best[1]}, psql {base[1]}, expected {members}")
    return [
        (
            f"one period for {members:,} members, s",
            f"{best[0]:.2f}",
            f"{base[0]:.2f} (psql INSERT ... SELECT)",
            f"{best[0] / base[0]:.1f}",
        ),
        (
            "members credited per second",
            f"{members / best[0]:,.0f}",
            f"{members / base[0]:,.0f}",
            f"{base[0] / best[0]:.2f}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print_table(TITLE, figures(members=args.members, rounds=args.rounds))


if __name__ == "__main__":
    main()
