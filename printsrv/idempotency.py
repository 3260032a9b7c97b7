"""Idempotency keys: a retried POST gets the first answer and changes nothing again.

A finance script that times out cannot know whether its POST was applied. If it sends an
`Idempotency-Key` header, printsrv keeps the first answer under (caller, key) and hands it
back to every retry. The protocol is:

    with db.transaction() as session:
        stored = claim(session, caller=..., key=..., fingerprint=...)
        if stored is not None:
            return stored                      # a retry: nothing is applied again
        answer = <apply the change in this same transaction>
        record(session, caller=..., key=..., answer=answer)

`claim` inserts the key row before the change is made, in the same transaction. On
PostgreSQL a concurrent request with the same key blocks on that primary key until the
first transaction ends, then sees the stored answer; on SQLite writers are serialised by
BEGIN IMMEDIATE. Either way two requests with one key never both apply, and if the first
transaction rolls back (a crash, a lost database) its key goes with it, so the retry runs.

Keys are kept for `financial.idempotency.retention-hours`: every server process runs
`keep_purged` (from the app's lifespan), which deletes older keys once a minute, in a
short transaction of its own, off the request path. A retry after that is a new request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from printsrv.errors import Conflict, DatabaseUnavailable, InvalidInput
from printsrv.models import IdempotencyKey, utcnow

if TYPE_CHECKING:
    from printsrv.installation import Installation

__all__ = [
    "MAX_KEY_LENGTH",
    "PURGE_EVERY",
    "Answer",
    "check_key",
    "claim",
    "fingerprint",
    "keep_purged",
    "purge",
    "purge_expired",
    "record",
]

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 255
PURGE_EVERY = 60.0  # seconds between two purges in one server process


@dataclass(frozen=True)
class Answer:
    """A rendered answer as it was sent: HTTP status and body (UTF-8 text)."""

    status_code: int
    body: str


def check_key(key: str) -> str:
    """Return `key` if it is 1-255 visible ASCII characters; InvalidInput otherwise."""
    if not key or len(key) > MAX_KEY_LENGTH or not all(33 <= ord(c) <= 126 for c in key):
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters "
            "(a UUID is a good choice)",
            reason="Idempotency-Key",
        )
    return key


def fingerprint(method: str, path: str, parameters: Iterable[tuple[str, str]]) -> str:
    """A digest of what a request asks for, so one key cannot be reused for another request.

    Parameters are sorted, so their order in the URL does not matter.
    """
    digest = hashlib.sha256(f"{method.upper()} {path}".encode())
    for name, value in sorted(parameters):
        digest.update(b"\x00" + name.encode() + b"\x01" + value.encode())
    return digest.hexdigest()


def claim(session: Session, *, caller: str, key: str, fingerprint: str) -> Answer | None:
    """Reserve `key` for `caller` in this transaction; or return the answer already stored.

    Returns None when the key is new: the caller applies its change and calls `record`
    before the transaction commits. Raises Conflict when the key was used for a different
    request (another fingerprint).
    """
    row = session.get(IdempotencyKey, (caller, key))
    if row is None:
        try:
            with session.begin_nested():
                session.add(IdempotencyKey(caller=caller, idem_key=key, fingerprint=fingerprint))
            return None
        except IntegrityError:
            # A concurrent request with the same key committed first (PostgreSQL makes this
            # insert wait for it): its answer is the one to give.
            row = session.get(IdempotencyKey, (caller, key), populate_existing=True)
            if row is None:  # pragma: no cover - the conflicting row is committed and visible
                raise
    if row.fingerprint != fingerprint:
        raise Conflict(
            f"Idempotency-Key {key!r} was already used for a different request",
            reason="Idempotency-Key",
        )
    if row.status_code is None or row.body is None:  # pragma: no cover - never committed so
        raise Conflict(f"Idempotency-Key {key!r} is still being processed")
    return Answer(row.status_code, row.body)


def record(session: Session, *, caller: str, key: str, answer: Answer) -> None:
    """Store the answer for a key claimed in this transaction."""
    row = session.get(IdempotencyKey, (caller, key))
    if row is None:
        raise RuntimeError(f"Idempotency-Key {key!r} was not claimed in this transaction")
    row.status_code = answer.status_code
    row.body = answer.body
    session.flush()


def purge(session: Session, *, older_than: datetime) -> int:
    """Delete the keys (and their answers) stored before `older_than`; return how many."""
    result = session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.created_at < older_than)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def purge_expired(installation: Installation) -> int:
    """Purge the keys older than `financial.idempotency.retention-hours`; return how many."""
    hours = installation.config.snapshot()["financial.idempotency.retention-hours"]
    with installation.db.transaction() as session:
        return purge(session, older_than=utcnow() - timedelta(hours=int(hours)))


async def keep_purged(installation: Installation, interval: float = PURGE_EVERY) -> None:
    """Purge expired keys every `interval` seconds until cancelled (the app's lifespan).

    A failed round (the database away) is tried again next time; the keys wait.
    """
    failing = False
    while True:
        try:
            purged = await asyncio.to_thread(purge_expired, installation)
            if purged:
                log.debug("purged %d expired idempotency key(s)", purged)
            failing = False
        except DatabaseUnavailable:
            failing = True  # the config refresher already says so in the log
        except Exception:
            # The loop must outlive any one failure, or keys would pile up unnoticed.
            if not failing:
                log.exception("purging expired idempotency keys failed; retrying")
            failing = True
        await asyncio.sleep(interval)
