"""Balances stay right under concurrent writers on real databases.

PostgreSQL: row locks taken in ascending id order, so transfers A->B and B->A running at
once never deadlock. SQLite: writers are serialised by BEGIN IMMEDIATE (fewer iterations).
Each operation is its own transaction in its own session, as one request would be.
"""

from __future__ import annotations

import random
import threading
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from financial.accounts import Actor, create_account
from financial.checks import verify
from financial.errors import ReversalRefused, TransferRefused
from financial.ledger import TransferPolicy, adjust_balance, charge, reverse, transfer
from financial.schema import Account, AccountTrx

ADMIN = Actor("admin", "admin")
POLICY = TransferPolicy(enabled=True)
START = Decimal(5)


def _run_threads(count: int, work: object) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def runner(index: int) -> None:
        try:
            barrier.wait()
            work(index)  # type: ignore[operator]
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a writer hung (deadlock?)"
    return errors


def test_concurrent_transfers_and_adjustments_keep_every_invariant(
    engine: Engine, backend: str
) -> None:
    threads, iterations = (8, 60) if backend == "postgresql" else (4, 15)
    with Session(engine) as session, session.begin():
        accounts = [create_account(session, account_type="USER", name=n) for n in "abcd"]
        for account in accounts:
            adjust_balance(session, account=account, amount=START, comment="", actor=ADMIN)
        ids = [account.id for account in accounts]
    adjusted = [Decimal(0)] * threads
    transfers = [0] * threads
    refused = [0] * threads

    def work(index: int) -> None:
        rng = random.Random(index)
        for _ in range(iterations):
            first, second = rng.sample(ids, 2)
            with Session(engine) as session, session.begin():
                sender = session.get(Account, first)
                recipient = session.get(Account, second)
                assert sender is not None and recipient is not None
                if rng.random() < 0.2:
                    amount = Decimal(rng.randint(1, 100)) / 100
                    adjust_balance(session, account=sender, amount=amount, comment="", actor=ADMIN)
                    adjusted[index] += amount
                    continue
                try:
                    transfer(
                        session,
                        sender=sender,
                        recipient=recipient,
                        amount=Decimal(rng.randint(50, 300)) / 100,
                        comment="",
                        actor=ADMIN,
                        policy=POLICY,
                    )
                    transfers[index] += 1
                except TransferRefused as refusal:
                    assert refusal.rule == "sender-below-zero"
                    refused[index] += 1

    errors = _run_threads(threads, work)
    assert errors == []
    with Session(engine) as session:
        assert verify(session) == []
        balances = session.scalars(select(Account.balance)).all()
        assert all(balance >= 0 for balance in balances)
        assert sum(balances) == START * len(ids) + sum(adjusted)
        legs = session.scalar(
            select(func.count()).select_from(AccountTrx).where(AccountTrx.trx_type == "TRANSFER")
        )
        assert legs == 2 * sum(transfers)
    assert sum(transfers) > 0
    assert sum(refused) > 0, "the test should also exercise the below-zero refusal"


def test_concurrent_refunds_of_one_charge_apply_once(engine: Engine, backend: str) -> None:
    with Session(engine) as session, session.begin():
        alice = create_account(session, account_type="USER", name="alice")
        adjust_balance(session, account=alice, amount="5", comment="", actor=ADMIN)
        job_id = charge(
            session,
            account=alice,
            amount="2",
            comment="job",
            actor=ADMIN,
            default_credit_limit=Decimal(0),
        ).id
    outcomes: list[str] = []

    def work(_: int) -> None:
        with Session(engine) as session, session.begin():
            job = session.get(AccountTrx, job_id)
            assert job is not None
            try:
                reverse(session, trx=job, comment="cancelled", actor=ADMIN)
                outcomes.append("refunded")
            except ReversalRefused as refusal:
                outcomes.append(refusal.rule)

    assert _run_threads(6, work) == []
    assert sorted(outcomes) == ["already-reversed"] * 5 + ["refunded"]
    with Session(engine) as session:
        assert session.scalar(select(Account.balance)) == 5
        assert verify(session) == []


@pytest.mark.parametrize("rounds", [20])
def test_opposite_transfers_at_once_do_not_deadlock(
    engine: Engine, backend: str, rounds: int
) -> None:
    with Session(engine) as session, session.begin():
        a = create_account(session, account_type="USER", name="a")
        b = create_account(session, account_type="USER", name="b")
        for account in (a, b):
            adjust_balance(session, account=account, amount="1000", comment="", actor=ADMIN)
        pair = (a.id, b.id)

    def work(index: int) -> None:
        source, target = pair if index % 2 == 0 else pair[::-1]
        for _ in range(rounds):
            with Session(engine) as session, session.begin():
                transfer(
                    session,
                    sender=session.get(Account, source),
                    recipient=session.get(Account, target),
                    amount="1",
                    comment="",
                    actor=ADMIN,
                    policy=POLICY,
                )

    assert _run_threads(4, work) == []
    with Session(engine) as session:
        assert sorted(session.scalars(select(Account.balance))) == [1000, 1000]
        assert verify(session) == []
