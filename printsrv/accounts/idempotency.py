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

A print cannot keep to that protocol as it stands: its charge commits before CUPS is asked,
and only CUPS' answer decides the response (``printing`` or ``failed``). `KeyGuard` runs such
a service: it looks the key up before any work (a retry is answered without converting
anything again), the service claims the key in the transaction that logs and charges and
stores a provisional answer with it, and once CUPS has answered the stored answer is
replaced by the final one. A refusal (4xx) is stored in a short transaction of its own, so
it is replayed like the money endpoints' refusals are. The money services, whose answer is
known when their transaction commits, keep to the protocol itself through `once`; both
take the adapter's half of the request as a `KeyedRequest`.

Keys are kept for `financial.idempotency.retention-hours`: every server process runs
`keep_purged` (from the app's lifespan), which deletes older keys once a minute, in a
short transaction of its own, off the request path. A retry after that is a new request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from printsrv.accounts.models import IdempotencyKey
from printsrv.errors import Conflict, DatabaseUnavailable, InvalidInput, PrintsrvError
from printsrv.platform.models import utcnow
from printsrv.platform.threads import in_thread

if TYPE_CHECKING:
    from printsrv.operations.installation import Installation
    from printsrv.platform.database import Database

T = TypeVar("T")

__all__ = [
    "MAX_KEY_LENGTH",
    "PURGE_EVERY",
    "Answer",
    "Answered",
    "KeyGuard",
    "KeyedRequest",
    "Reply",
    "amend",
    "check_key",
    "claim",
    "fingerprint",
    "keep_purged",
    "once",
    "purge",
    "purge_expired",
    "record",
    "stored_answer",
    "user_caller",
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

    One statement for a new key: ``INSERT ... ON CONFLICT DO NOTHING RETURNING``. On
    PostgreSQL an insert of a key that a running transaction has claimed waits for it: if
    that one commits, nothing is inserted and its answer is read (a new snapshot: READ
    COMMITTED); if it rolls back, this insert claims the key.
    """
    session.flush()
    connection = session.connection()
    values = {"caller": caller, "idem_key": key, "fingerprint": fingerprint, "created_at": utcnow()}
    for _ in range(2):
        if connection.execute(_claiming(connection.dialect.name), values).first() is not None:
            return None
        row = connection.execute(_STORED, {"caller": caller, "idem_key": key}).first()
        if row is not None:
            break
        # The key was purged between the two statements: claim it again.
    else:  # pragma: no cover - a purge would have to win the race twice
        raise Conflict(f"Idempotency-Key {key!r} is still being processed")
    stored_fingerprint, status_code, body = row
    if stored_fingerprint != fingerprint:
        raise Conflict(
            f"Idempotency-Key {key!r} was already used for a different request",
            reason="Idempotency-Key",
        )
    if status_code is None or body is None:  # pragma: no cover - never committed so
        raise Conflict(f"Idempotency-Key {key!r} is still being processed")
    return Answer(status_code, body)


_KEYS = IdempotencyKey.__table__
_STORED = select(_KEYS.c.fingerprint, _KEYS.c.status_code, _KEYS.c.body).where(
    _KEYS.c.caller == bindparam("caller"), _KEYS.c.idem_key == bindparam("idem_key")
)
_RECORD = (
    update(_KEYS)
    .where(_KEYS.c.caller == bindparam("key_caller"), _KEYS.c.idem_key == bindparam("key_name"))
    .values(status_code=bindparam("status_code"), body=bindparam("body"))
)


@cache
def _claiming(dialect: str) -> Any:
    """``INSERT INTO idempotency_key ... ON CONFLICT (caller, idem_key) DO NOTHING
    RETURNING caller`` for `dialect` (both back-ends have the clause), built once."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(_KEYS)
        .values(
            caller=bindparam("caller"),
            idem_key=bindparam("idem_key"),
            fingerprint=bindparam("fingerprint"),
            created_at=bindparam("created_at"),
        )
        .on_conflict_do_nothing(index_elements=[_KEYS.c.caller, _KEYS.c.idem_key])
        .returning(_KEYS.c.caller)
    )


def record(session: Session, *, caller: str, key: str, answer: Answer) -> None:
    """Store the answer for a key claimed in this transaction."""
    result = session.connection().execute(
        _RECORD,
        {
            "key_caller": caller,
            "key_name": key,
            "status_code": answer.status_code,
            "body": answer.body,
        },
    )
    if result.rowcount != 1:
        raise RuntimeError(f"Idempotency-Key {key!r} was not claimed in this transaction")


def stored_answer(session: Session, *, caller: str, key: str, fingerprint: str) -> Answer | None:
    """The answer committed for (caller, key), or None; reads only, claims nothing.

    Raises Conflict, as `claim` does, when the key was used for a different request. A key
    claimed by a transaction still running is invisible here: `claim` decides that race.
    """
    row = session.get(IdempotencyKey, (caller, key))
    if row is None:
        return None
    if row.fingerprint != fingerprint:
        raise Conflict(
            f"Idempotency-Key {key!r} was already used for a different request",
            reason="Idempotency-Key",
        )
    if row.status_code is None or row.body is None:  # pragma: no cover - never committed so
        return None
    return Answer(row.status_code, row.body)


def amend(session: Session, *, caller: str, key: str, fingerprint: str, answer: Answer) -> None:
    """Replace the committed answer of a key with the final one (see `KeyGuard`)."""
    session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.caller == caller,
            IdempotencyKey.idem_key == key,
            IdempotencyKey.fingerprint == fingerprint,
        )
        .values(status_code=answer.status_code, body=answer.body)
        .execution_options(synchronize_session=False)
    )


def user_caller(user_name: str) -> str:
    """The scope of a REST user's keys: one for all their POSTs (money and prints alike), so
    a key reused across endpoints is a 409, not a second change."""
    return f"user:{user_name}"


@dataclass(frozen=True)
class Reply:
    """What a request with an Idempotency-Key gets: the answer, and whether it is a replay."""

    answer: Answer
    replayed: bool


class Answered(Exception):
    """Raised by `KeyGuard.claim` inside a service's transaction when the key already has an
    answer (a retry that raced the first request): the transaction rolls back, the service
    stops, and `KeyGuard.run` returns that answer."""

    def __init__(self, answer: Answer) -> None:
        super().__init__("Idempotency-Key already answered")
        self.answer = answer


@dataclass(frozen=True)
class KeyedRequest(Generic[T]):
    """An adapter's half of an idempotent request: the key, what the request asks for, and
    how the adapter's protocol renders a result or a refusal (the stored answer is the bytes
    it sends).

    Attributes:
        key: the checked Idempotency-Key (`check_key`).
        fingerprint: a digest of the request (`fingerprint`), so the key cannot be reused
            for another one.
        render: the answer to a result of the service.
        refusal: the answer to a refusal, or None for an error that must not be stored
            (the server's own, 5xx: a retry runs again).
    """

    key: str
    fingerprint: str
    render: Callable[[T], Answer]
    refusal: Callable[[PrintsrvError], Answer | None]

    def guard(self, db: Database, *, caller: str) -> KeyGuard[T]:
        """The service's half, for the caller the key belongs to."""
        return KeyGuard(self, db, caller)


def once(
    session: Session, request: KeyedRequest[T], *, caller: str, work: Callable[[Session], T]
) -> Reply:
    """``work(session)`` at most once per (caller, key), in the caller's transaction, for a
    change whose answer is known when its transaction commits (the money services).

    The key is checked (InvalidInput) and claimed first: a retry gets the stored answer,
    replayed, and the same key for another request is a Conflict. ``work`` then runs in a
    savepoint, and its answer, or that of its refusal, is recorded with the change, so the
    two commit together: a refused change leaves only its answer. An error the request
    does not store (its ``refusal`` is None: the server's own, 5xx) propagates, and the
    whole transaction, the claim with it, rolls back, so a retry runs again.
    """
    check_key(request.key)
    key = {"caller": caller, "key": request.key}
    stored = claim(session, **key, fingerprint=request.fingerprint)
    if stored is not None:
        return Reply(stored, replayed=True)
    try:
        with session.begin_nested():
            answer = request.render(work(session))
    except PrintsrvError as error:
        refusal = request.refusal(error)
        if refusal is None:
            raise
        answer = refusal
    record(session, **key, answer=answer)
    return Reply(answer, replayed=False)


class KeyGuard(Generic[T]):
    """Runs a service at most once per (caller, key) when its change commits before its final
    answer is known (a print: CUPS answers after the charge commits).

    ``run(work)`` answers a retry from the database before any work. Otherwise ``work``
    must call ``claim(session)`` first and ``record(session, result)`` last in the
    transaction that makes the change; ``run`` then stores the final answer if it differs
    from the recorded one. A refusal is stored in a transaction of its own. Two requests
    with one key at once: the second's ``claim`` waits for the first's transaction (or
    SQLite's write lock) and raises `Answered`, so only one changes anything.
    """

    def __init__(self, request: KeyedRequest[T], db: Database, caller: str) -> None:
        self.request = request
        self.db = db
        self.caller = caller
        self.recorded: Answer | None = None

    def __repr__(self) -> str:
        return f"KeyGuard(caller={self.caller!r}, key={self.request.key!r})"

    def _key(self) -> dict[str, str]:
        return {"caller": self.caller, "key": self.request.key}

    def claim(self, session: Session) -> None:
        """Claim the key in the service's transaction; raise `Answered` if it has an answer."""
        stored = claim(session, **self._key(), fingerprint=self.request.fingerprint)
        if stored is not None:
            raise Answered(stored)

    def record(self, session: Session, result: T) -> None:
        """Store the answer to ``result`` with the change (before the transaction commits)."""
        answer = self.request.render(result)
        record(session, **self._key(), answer=answer)
        self.recorded = answer

    def record_refusal(self, session: Session, error: PrintsrvError) -> None:
        """Store the answer to ``error`` with the change that refusing made (a refused print
        is logged): ``run`` then answers with it, and a retry finds it and logs nothing.
        An error that is not stored (``KeyedRequest.refusal`` is None) records nothing."""
        answer = self.request.refusal(error)
        if answer is not None:
            record(session, **self._key(), answer=answer)
            self.recorded = answer

    async def run(self, work: Callable[[KeyGuard[T]], Awaitable[T]]) -> Reply:
        """The stored answer for a retry, else ``work(self)``'s answer, stored."""
        stored = await self.db.run(self._stored)
        if stored is not None:
            return Reply(stored, replayed=True)
        try:
            result = await work(self)
        except Answered as answered:
            return Reply(answered.answer, replayed=True)
        except PrintsrvError as error:
            answer = self.request.refusal(error)
            if answer is not None and answer == self.recorded:
                return Reply(answer, replayed=False)  # stored with its change (a logged refusal)
            if answer is None or self.recorded is not None:
                # A server error is not stored; nor is anything after the change committed
                # (its key already holds an answer).
                raise
            return await self.db.run(self._store_alone, answer)
        final = self.request.render(result)
        if self.recorded is None:
            # The work changed nothing in a transaction of its own: store its answer now.
            return await self.db.run(self._store_alone, final)
        if final != self.recorded:
            await self.db.run(self._amend, final)
        return Reply(final, replayed=False)

    def _stored(self) -> Answer | None:
        with self.db.read() as session:
            return stored_answer(session, **self._key(), fingerprint=self.request.fingerprint)

    def _store_alone(self, answer: Answer) -> Reply:
        with self.db.transaction() as session:
            stored = claim(session, **self._key(), fingerprint=self.request.fingerprint)
            if stored is not None:
                return Reply(stored, replayed=True)  # another request with the key won
            record(session, **self._key(), answer=answer)
            return Reply(answer, replayed=False)

    def _amend(self, answer: Answer) -> None:
        with self.db.transaction() as session:
            amend(session, **self._key(), fingerprint=self.request.fingerprint, answer=answer)


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
            purged = await in_thread(purge_expired, installation)
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
