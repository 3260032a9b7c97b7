"""Money under concurrent writers and crashes, through `printsrv serve --workers 2` over HTTP.

Many threads send transfers (A->B and B->A at once) and admin adjustments, some retried
with their Idempotency-Key. Afterwards the ledger must say exactly what the answers said:
every balance equals its ledger, the total moved by exactly the adjustments, no transfer
took its sender below zero, and no request was lost or applied twice. Then the server is
killed with SIGKILL in the middle of a burst: no half transfer may remain, and retrying the
requests whose answer was lost applies each exactly once.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from support import ServeProcess, set_config, wait_until

import financial
from financial import AccountTrx
from printsrv.accounts import service as accounting
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.platform.environment import Environment

ADMIN = ("admin", "s3cret-admin")
PEOPLE = [f"user{n}" for n in range(6)]
START = Decimal("20.00")


@dataclass
class Outcome:
    """What one request asked for and what came back (None: no answer, the server died)."""

    kind: str  # "transfer" or "adjust"
    amount: Decimal
    status: int | None
    body: bytes | None = None


@pytest.fixture
def uuids(installation: Installation) -> dict[str, str]:
    """Six users with 20.00 each (user1 also known as alias "u1"), and the admin."""
    set_config(
        installation,
        {"api.restful.auth.username": ADMIN[0], "api.restful.auth.password": ADMIN[1]},
    )
    found = {}
    with installation.db.transaction() as session:
        for name in PEOPLE:
            users.add_user(session, name)
            found[name] = users.issue_uuid(session, name, hasher=installation.hasher)
            accounting.change_balance(
                session,
                account_type="USER",
                name=name,
                amount=START,
                adjust=False,
                comment="start",
                actor=accounting.admin_actor("setup"),
            )
        users.add_alias(session, "u1", "user1")
    return found


def serve(tmp_path: Path, name: str) -> ServeProcess:
    """`printsrv serve --workers 2` on this test's installation (PRINTSRV_* are set)."""
    return ServeProcess({}, "--workers", "2", "--no-access-log", log=tmp_path / name).start()


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants at once, as a power cut would."""
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            children = (task / "children").read_text().split() if task.exists() else []
            pending += [int(child) for child in children]
    for victim in pids:
        with contextlib.suppress(ProcessLookupError):  # it may have died with its parent
            os.kill(victim, signal.SIGKILL)


def rows_by_comment(installation: Installation) -> dict[str, list[AccountTrx]]:
    with installation.db.read() as session:
        found: dict[str, list[AccountTrx]] = {}
        for row in session.scalars(select(AccountTrx).where(AccountTrx.comment != "start")):
            found.setdefault(row.comment, []).append(row)
        return found


def total(installation: Installation) -> Decimal:
    with installation.db.read() as session:
        return session.scalar(select(func.sum(financial.Account.balance))) or Decimal(0)


def assert_ledger_is_whole(installation: Installation) -> None:
    with installation.db.read() as session:
        assert financial.verify(session) == []
        debits = session.scalars(
            select(AccountTrx.balance_after).where(
                AccountTrx.trx_type == "TRANSFER", AccountTrx.amount < 0
            )
        ).all()
    assert all(after >= 0 for after in debits), "a transfer took its sender below zero"


def transfer(
    client: httpx.Client,
    port: int,
    uuids: dict[str, str],
    sender: str,
    recipient: str,
    amount: Decimal,
    comment: str,
) -> httpx.Response:
    return client.post(
        f"http://127.0.0.1:{port}/restful/v1/financial/transfer",
        params={"name": recipient, "amount": f"{amount}", "comment": comment},
        auth=(sender, uuids[sender]),
        headers={"Idempotency-Key": comment},
    )


@pytest.mark.postgresql
def test_concurrent_transfers_and_adjustments_keep_the_books_exact(
    installation: Installation, process_env: Environment, uuids: dict[str, str], tmp_path: Path
) -> None:
    if installation.db.backend != "postgresql":
        pytest.skip("several workers writing at once: the PostgreSQL production set-up")
    before = total(installation)
    outcomes: dict[str, Outcome] = {}
    retries: dict[str, tuple[int, bytes, str | None]] = {}
    lock = threading.Lock()
    server = serve(tmp_path, "serve.log")

    def worker(number: int) -> None:
        rng = random.Random(number)
        with httpx.Client(timeout=60) as client:
            for step in range(40):
                comment = f"req-{number}-{step}"
                if rng.random() < 0.75:
                    # Pairs of threads push money between the same two people in opposite
                    # directions, the classic deadlock shape.
                    a, b = PEOPLE[number % 3], PEOPLE[3 + number % 3]
                    sender, recipient = (a, b) if number % 2 else (b, a)
                    amount = Decimal(rng.randint(1, 600)) / 100
                    recipient = "u1" if recipient == "user1" else recipient
                    answer = transfer(
                        client, server.port, uuids, sender, recipient, amount, comment
                    )
                    kind = "transfer"
                else:
                    amount = Decimal(rng.choice([-1, 1]) * rng.randint(1, 500)) / 100
                    answer = client.post(
                        f"http://127.0.0.1:{server.port}/restful/v1/financial/account/balance",
                        params={
                            "type": "USER",
                            "name": rng.choice(PEOPLE),
                            "amount": f"{amount}",
                            "adjust": "true",
                            "details": comment,
                        },
                        auth=ADMIN,
                        headers={"Idempotency-Key": comment},
                    )
                    kind = "adjust"
                with lock:
                    outcomes[comment] = Outcome(kind, amount, answer.status_code, answer.content)
                if step % 4 == 0:  # a client that timed out and tries again
                    again = client.send(answer.request)
                    with lock:
                        retries[comment] = (
                            again.status_code,
                            again.content,
                            again.headers.get("idempotent-replayed"),
                        )

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        server.stop()
    assert len(outcomes) == 12 * 40, "every request was answered"
    statuses = {o.status for o in outcomes.values()}
    assert statuses <= {200, 409}, statuses
    for comment, (status, body, replayed) in retries.items():
        first = outcomes[comment]
        assert (status, body, replayed) == (first.status, first.body, "true"), comment

    ledger = rows_by_comment(installation)
    adjusted = Decimal(0)
    applied = {"transfer": 0, "adjust": 0}
    for comment, outcome in outcomes.items():
        written = ledger.get(comment, [])
        if outcome.status != 200:
            assert b"sender-below-zero" in (outcome.body or b""), outcome
            assert written == [], f"{comment} was refused but written"
        elif outcome.kind == "transfer":
            assert sorted(r.amount for r in written) == [-outcome.amount, outcome.amount], comment
        else:
            assert [r.amount for r in written] == [outcome.amount], comment
            adjusted += outcome.amount
        applied[outcome.kind] += outcome.status == 200
    assert applied["transfer"] > 100 and applied["adjust"] > 50, applied
    assert total(installation) == before + adjusted
    assert_ledger_is_whole(installation)


def test_a_server_killed_mid_burst_leaves_no_half_transfer_and_retries_apply_once(
    installation: Installation, process_env: Environment, uuids: dict[str, str], tmp_path: Path
) -> None:
    with installation.db.transaction() as session:
        for name in PEOPLE:  # enough that no transfer is refused
            accounting.change_balance(
                session,
                account_type="USER",
                name=name,
                amount=Decimal("10000"),
                adjust=False,
                comment="start",
                actor=accounting.admin_actor("setup"),
            )
    before = total(installation)
    outcomes: dict[str, Outcome] = {}
    requests: dict[str, tuple[str, str, Decimal]] = {}
    lock = threading.Lock()
    stop = threading.Event()
    server = serve(tmp_path, "first.log")

    def burst(number: int) -> None:
        rng = random.Random(100 + number)
        with httpx.Client(timeout=10) as client:
            step = 0
            while not stop.is_set():
                comment = f"burst-{number}-{step}"
                sender, recipient = rng.sample(PEOPLE, 2)
                amount = Decimal(rng.randint(1, 900)) / 100
                with lock:
                    requests[comment] = (sender, recipient, amount)
                try:
                    answer = transfer(
                        client, server.port, uuids, sender, recipient, amount, comment
                    )
                    outcome = Outcome("transfer", amount, answer.status_code, answer.content)
                except httpx.HTTPError:
                    outcome = Outcome("transfer", amount, None)
                    stop.set()
                with lock:
                    outcomes[comment] = outcome
                step += 1

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(8)]
    try:
        for thread in threads:
            thread.start()
        wait_until(lambda: len(outcomes) >= 150, timeout=60)
        assert server.process is not None
        kill_tree(server.process.pid)
        stop.set()
        for thread in threads:
            thread.join(30)
    finally:
        server.stop()

    # Right after the crash: every transfer is whole or absent, and the books balance.
    lost = [c for c, o in outcomes.items() if o.status is None]
    assert lost, "the kill came in the middle of requests"
    assert {o.status for o in outcomes.values()} <= {200, None}
    ledger = rows_by_comment(installation)
    for comment, outcome in outcomes.items():
        written = len(ledger.get(comment, []))
        assert written in ((2,) if outcome.status == 200 else (0, 2)), (comment, written)
    assert_ledger_is_whole(installation)
    assert total(installation) == before

    # A finance script retries what it got no answer for, with the same keys.
    server = serve(tmp_path, "second.log")
    try:
        with httpx.Client(timeout=30) as client:
            for comment in lost:
                sender, recipient, amount = requests[comment]
                answer = transfer(client, server.port, uuids, sender, recipient, amount, comment)
                assert answer.status_code == 200, answer.text
    finally:
        server.stop()
    ledger = rows_by_comment(installation)
    for comment in outcomes:
        assert len(ledger[comment]) == 2, comment
    assert_ledger_is_whole(installation)
    assert total(installation) == before
