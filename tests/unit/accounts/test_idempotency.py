"""printsrv/accounts/idempotency.py: stored first answers, and their purge after the retention."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from support import set_config

from printsrv.accounts import idempotency
from printsrv.accounts.models import IdempotencyKey
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
