"""Prints a rule refused or held: the ``ruled_print`` rows and what a user sees of them.

``printing.intake`` writes a row when a rule refuses a print (``refused``) or holds it for
approval (``waiting``); ``printing.approval`` moves a waiting row to ``approved`` or
``denied``. Functions here take the caller's session and never commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from printsrv.errors import Conflict
from printsrv.printing.models import RuledPrint

__all__ = [
    "STATUS_TEXT",
    "RuledView",
    "is_waiting",
    "latest_ruled",
    "layers_of",
    "record_ruled",
]

# How a ruled print's state is shown to its user (web page and GET /user/documents).
STATUS_TEXT: Final = {
    "refused": "refused",
    "waiting": "waiting for approval",
    "approved": "approved",
    "denied": "denied",
}


@dataclass(frozen=True)
class RuledView:
    """A ruled print as its user and the admin see it.

    Attributes:
        document_id: the uploaded document.
        state: refused, waiting, approved or denied.
        rules: the names of the rules that refused or held it.
        message: what the rule told the user.
        printer: where it was to print.
        cost: the price when it was held (charged only on approval, at the price then).
        comment: the approver's comment ("" when none).
        created: when the rule decided; decided: when it was approved or denied (or None).
        print_document_id: the print an approval made, else None.
    """

    document_id: int
    state: str
    rules: tuple[str, ...]
    message: str
    printer: str
    cost: Decimal
    comment: str
    created: datetime
    decided: datetime | None
    print_document_id: int | None

    @property
    def status(self) -> str:
        """The state as a person reads it ("waiting for approval")."""
        return STATUS_TEXT[self.state]

    @classmethod
    def of(cls, row: RuledPrint) -> RuledView:
        """The view of a stored row."""
        return cls(
            row.document_id,
            row.state,
            tuple(n for n in row.rules.split(",") if n),
            row.message,
            row.printer_name,
            row.cost,
            row.comment,
            row.created_at,
            row.decided_at,
            row.print_document_id,
        )


def record_ruled(
    session: Session,
    *,
    document_id: int,
    user_id: int,
    printer: str,
    state: str,
    rules: Sequence[str],
    message: str,
    layers: tuple[dict[str, str], dict[str, str]],
    cost: Decimal,
) -> RuledPrint:
    """Write a refused or waiting print; Conflict when the document already waits.

    The partial unique index on waiting rows decides a race between two holds of one
    document; the loser's transaction keeps going through the savepoint.
    """
    routing, requested = layers
    row = RuledPrint(
        document_id=document_id,
        user_id=user_id,
        printer_name=printer,
        state=state,
        rules=",".join(rules),
        message=message[:2000],
        layers=json.dumps({"routing": routing, "requested": requested}, sort_keys=True),
        cost=cost,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise Conflict(f"Document {document_id} is already waiting for approval") from exc
    return row


def layers_of(row: RuledPrint) -> tuple[dict[str, str], dict[str, str]]:
    """The routing and requested options a held print was judged with (changes made)."""
    data = json.loads(row.layers or "{}")
    return dict(data.get("routing", {})), dict(data.get("requested", {}))


def is_waiting(session: Session, document_id: int) -> bool:
    """Whether the document has a print waiting for approval."""
    found = session.scalar(
        select(RuledPrint.id).where(
            RuledPrint.document_id == document_id, RuledPrint.state == "waiting"
        )
    )
    return found is not None


def latest_ruled(session: Session, document_ids: Iterable[int]) -> dict[int, RuledView]:
    """The newest ruled print of each of these documents (documents without one are left out)."""
    ids = list(document_ids)
    if not ids:
        return {}
    newest = (
        select(func.max(RuledPrint.id))
        .where(RuledPrint.document_id.in_(ids))
        .group_by(RuledPrint.document_id)
    )
    rows = session.scalars(select(RuledPrint).where(RuledPrint.id.in_(newest)))
    return {row.document_id: RuledView.of(row) for row in rows}
