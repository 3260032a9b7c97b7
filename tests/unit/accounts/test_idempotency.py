"""printsrv/accounts/idempotency.py: stored first answers, and their purge after the retention."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from support import set_config

from printsrv.accounts import idempotency
from printsrv.accounts.models import IdempotencyKey
from printsrv.errors import Conflict
from printsrv.operations.installation import Installation
from printsrv.platform.models import utcnow

ANSWER = idempotency.Answer(200, '{"succes":true}')


def store(installation: Installation, key: str, *, age: timedelta) -> None:
    """A key answered `age` ago, as a finished request leaves it."""
    with installation.db.transaction() as session:
        assert idempotency.claim(session, caller="user:janet", key=key, fingerprint="f") is None
        idempotency.record(session, caller="user:janet", key=key, answer=ANSWER)
        session.get_one(IdempotencyKey, ("user:janet", key)).created_at = utcnow() - age


def stored_keys(installation: Installation) -> set[str]:
    with installation.db.read() as session:
        return set(session.scalars(select(IdempotencyKey.idem_key)))


def test_purge_removes_keys_past_the_retention_and_keeps_fresh_ones(
    installation: Installation,
) -> None:
    set_config(installation, {"financial.idempotency.retention-hours": "2"})
    store(installation, "expired", age=timedelta(hours=2, minutes=1))
    store(installation, "fresh", age=timedelta(hours=1, minutes=59))

    assert idempotency.purge_expired(installation) == 1

    assert stored_keys(installation) == {"fresh"}
    with installation.db.transaction() as session:
        replay = idempotency.claim(session, caller="user:janet", key="fresh", fingerprint="f")
        assert replay == ANSWER, "a fresh key still answers its retries"
        again = idempotency.claim(session, caller="user:janet", key="expired", fingerprint="g")
        assert again is None, "an expired key is free again"


def test_retention_defaults_to_a_day(installation: Installation) -> None:
    store(installation, "yesterday", age=timedelta(hours=24, seconds=5))
    store(installation, "today", age=timedelta(hours=23))

    assert idempotency.purge_expired(installation) == 1
    assert stored_keys(installation) == {"today"}


def test_a_claimed_key_answers_its_retries_and_refuses_another_request(
    installation: Installation,
) -> None:
    with installation.db.transaction() as session:
        assert idempotency.claim(session, caller="user:janet", key="k1", fingerprint="f") is None
        idempotency.record(session, caller="user:janet", key="k1", answer=ANSWER)
    with installation.db.transaction() as session:
        assert idempotency.claim(session, caller="user:janet", key="k1", fingerprint="f") == ANSWER
        with pytest.raises(Conflict, match="different request"):
            idempotency.claim(session, caller="user:janet", key="k1", fingerprint="other")
        assert idempotency.claim(session, caller="user:ann", key="k1", fingerprint="f") is None


def test_recording_an_unclaimed_key_is_a_programming_error(installation: Installation) -> None:
    with installation.db.transaction() as session, pytest.raises(RuntimeError, match="claimed"):
        idempotency.record(session, caller="user:janet", key="never", answer=ANSWER)


@pytest.mark.parametrize("first_commits", [True, False], ids=["commits", "rolls-back"])
def test_a_claim_racing_a_running_one_waits_for_its_outcome(
    installation: Installation, first_commits: bool
) -> None:
    """The second claim of one key waits for the transaction that claimed it: it gets that
    answer once it commits, or claims the key itself once it rolls back."""
    claimed, outcome = threading.Event(), {}

    def second() -> None:
        claimed.wait(10)
        with installation.db.transaction() as session:
            outcome["answer"] = idempotency.claim(
                session, caller="user:janet", key="race", fingerprint="f"
            )
            outcome["at"] = time.monotonic()

    racer = threading.Thread(target=second)
    racer.start()
    try:
        with installation.db.transaction() as session:
            assert (
                idempotency.claim(session, caller="user:janet", key="race", fingerprint="f") is None
            )
            claimed.set()
            time.sleep(0.3)  # the second claim is waiting meanwhile
            assert "answer" not in outcome
            idempotency.record(session, caller="user:janet", key="race", answer=ANSWER)
            finished = time.monotonic()
            if not first_commits:
                session.rollback()
    finally:
        racer.join(20)
    assert outcome["at"] >= finished
    assert outcome["answer"] == (ANSWER if first_commits else None)
