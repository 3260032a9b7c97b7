"""Two machines running `printsrv quota run` at the same moment credit each member once.

Two real processes against this test's database (PostgreSQL when configured: there they
truly run at once and take turns on the allocation lock; SQLite serialises its writers).
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime

from sqlalchemy import func, select

from financial import Account, AccountTrx
from printsrv.accounts import quotas
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.platform.environment import Environment

MEMBERS = 150
DAYS = 30  # 2 .. 31 January


def test_two_processes_running_quota_run_at_once_credit_each_member_once_per_period(
    installation: Installation, process_env: Environment
) -> None:
    with installation.db.transaction() as session:
        users.add_group(session, "staff")
        for i in range(MEMBERS):
            users.add_user(session, f"member{i}")
            users.add_member(session, "staff", f"member{i}")
    quotas.set_clock(lambda: datetime(2025, 1, 1, 10, tzinfo=UTC))
    try:
        with installation.db.transaction() as session:
            terms = quotas.parse_terms("0.10", "daily", None)
            quotas.set_group_quota(session, "staff", terms, actor="t", time_zone="UTC")
    finally:
        quotas.set_clock(None)

    command = [sys.executable, "-m", "printsrv", "quota", "run", "--as-of", "2025-01-31T00:00Z"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs

    periods = [int(re.match(r"(\d+) period", output).group(1)) for output in outputs]  # type: ignore[union-attr]
    assert sum(periods) == DAYS, outputs
    with installation.db.read() as session:
        per_member = session.execute(
            select(func.count())
            .select_from(AccountTrx)
            .join(Account, Account.id == AccountTrx.account_id)
            .where(AccountTrx.trx_type == "QUOTA")
            .group_by(Account.id)
        ).scalars()
        assert sorted(set(per_member)) == [DAYS]
        total = session.scalar(select(func.count()).select_from(AccountTrx).where(
            AccountTrx.trx_type == "QUOTA"))  # fmt: skip
        assert total == MEMBERS * DAYS
    verified = subprocess.run(
        [sys.executable, "-m", "printsrv", "financial", "verify"], capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("ledger OK")
