"""The admin's list of prints waiting for approval (printsrv.printing.approval.list_waiting)
on each back-end: only waiting prints, the longest waiting first, every field from one query,
and a decided print leaves it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, update
from sqlalchemy.engine import Engine

from printsrv.documents.models import Document
from printsrv.errors import InvalidInput
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.printing import approval
from printsrv.printing.models import RuledPrint
from printsrv.printing.ruled import record_ruled

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def held(
    installation: Installation,
    user: str,
    title: str,
    *,
    state: str = "waiting",
    at: datetime = T0,
    queue: str = "lab",
    rules: tuple[str, ...] = ("big-jobs",),
    ext_id: str | None = None,
) -> int:
    """An uploaded document a rule held (or refused) at ``at``; its id."""
    with installation.db.transaction() as session:
        owner = users.get_user(session, user)
        doc = Document(
            doc_type="pdf", user_id=owner.id, title=title, pdf_sha256="0" * 64, pdf_bytes=1,
            pages=len(title), queue_name=queue, ext_id=ext_id,
        )  # fmt: skip
        session.add(doc)
        session.flush()
        row = record_ruled(
            session, document_id=doc.id, user_id=owner.id, printer="capture", state=state,
            rules=rules, message="Big job", layers=({}, {}), cost=Decimal("0.10") * len(title),
        )  # fmt: skip
        session.flush()
        session.execute(update(RuledPrint).where(RuledPrint.id == row.id).values(created_at=at))
        return doc.id


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_only_waiting_prints_are_listed_oldest_first_with_every_field(
    installation: Installation,
) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "ann")
        users.add_user(session, "ben")
    late = held(installation, "ann", "late.pdf", at=T0 + timedelta(hours=2))
    early = held(installation, "ben", "early-thesis.pdf", at=T0, queue="hall",
                 rules=("big-jobs", "colour-hold"), ext_id="lms-7")  # fmt: skip
    held(installation, "ann", "refused.pdf", state="refused", at=T0 - timedelta(hours=1))
    denied = held(installation, "ben", "denied.pdf", at=T0 - timedelta(hours=3))
    approval.deny_document(installation, str(denied), admin="test", comment="no")

    with installation.db.read() as session, statements(installation.db.engine) as seen:
        waiting = approval.list_waiting(session, limit=10)
    assert len([s for s in seen if s.lstrip().upper().startswith("SELECT")]) == 1
    assert [w.ref for w in waiting] == [str(early), str(late)]
    first = waiting[0]
    assert (first.user, first.title, first.pages, first.printer, first.queue) == (
        "ben", "early-thesis.pdf", 16, "capture", "hall",
    )  # fmt: skip
    assert first.cost == Decimal("1.60")
    assert first.rules == ("big-jobs", "colour-hold")
    assert first.ext_id == "lms-7" and first.message == "Big job"
    assert first.waiting_since == T0
    assert waiting[1].rules == ("big-jobs",) and waiting[1].queue == "lab"


def test_pages_of_the_list_and_a_decided_print_leaving_it(installation: Installation) -> None:
    with installation.db.transaction() as session:
        users.add_user(session, "ann")
    ids = [held(installation, "ann", f"d{i}.pdf", at=T0) for i in range(3)]  # one instant
    with installation.db.read() as session:
        pages = [
            [w.ref for w in approval.list_waiting(session, limit=2, offset=offset)]
            for offset in (0, 2, 4)
        ]
    assert pages == [[str(ids[0]), str(ids[1])], [str(ids[2])], []]
    approval.deny_document(installation, str(ids[1]), admin="test")
    with installation.db.read() as session:
        assert [w.ref for w in approval.list_waiting(session)] == [str(ids[0]), str(ids[2])]


@pytest.mark.parametrize(
    ("limit", "offset", "named"),
    [(0, 0, "limit"), (1001, 0, "limit"), (1, -1, "offset"), (1, 2**31, "offset")],
)
def test_a_limit_or_offset_out_of_range_is_refused_naming_it(
    installation: Installation, limit: int, offset: int, named: str
) -> None:
    with installation.db.read() as session, pytest.raises(InvalidInput) as raised:
        approval.list_waiting(session, limit=limit, offset=offset)
    assert raised.value.reason == named
    assert named in str(raised.value)
