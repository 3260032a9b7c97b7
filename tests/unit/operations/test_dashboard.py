"""The dashboard's figures (printsrv.operations.dashboard) on each back-end: UTC days,
charges less refunds, the top lists, failures with reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import update

import financial
from financial.schema import AccountTrx
from printsrv.documents.models import Document
from printsrv.operations.dashboard import dashboard_figures
from printsrv.operations.installation import Installation
from printsrv.people import users
from printsrv.printing.charging import charge_print, refund_print
from printsrv.printing.models import PrintJob

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def give_credit(installation: Installation, user_name: str, amount: str, comment: str) -> None:
    with installation.db.transaction() as session:
        account = financial.get_or_create_user_account(session, user_name)
        financial.adjust_balance(
            session,
            account=account,
            amount=Decimal(amount),
            comment=comment,
            actor=financial.Actor("admin", "test"),
            trx_type=financial.TrxType.DEPOSIT,
        )


def printed(
    installation: Installation,
    user: str,
    printer: str,
    pages: int,
    at: datetime,
    *,
    state: str = "completed",
    refund: bool = False,
    message: str = "",
) -> None:
    """A print job finished at `at`, charged 0.10 a page through printing's own charge
    (and refunded when asked); the ledger rows dated `at` too."""
    with installation.db.transaction() as session:
        owner = users.get_user(session, user)
        doc = Document(
            doc_type="print", user_id=owner.id, title="t.pdf", pdf_sha256="0" * 64,
            pdf_bytes=1, pages=pages,
        )  # fmt: skip
        session.add(doc)
        session.flush()
        cost = Decimal("0.10") * pages
        job = PrintJob(
            document_id=doc.id, user_id=owner.id, printer_name=printer, pages=pages,
            sides=pages, sheets=pages, cost=cost, state=state, message=message,
            created_at=at, finished_at=at,
        )  # fmt: skip
        session.add(job)
        charge = charge_print(
            session, user_name=user, amount=cost, document_id=doc.id, comment="print",
            default_credit_limit=Decimal(0),
        )  # fmt: skip
        ids = [charge.id]
        if refund:
            ids.append(refund_print(session, charge_trx_id=charge.id, reason=message).id)
        session.execute(update(AccountTrx).where(AccountTrx.id.in_(ids)).values(created_at=at))


def test_days_are_utc_days_and_money_is_charges_less_refunds(installation: Installation) -> None:
    with installation.db.transaction() as session:
        for name in ("ann", "ben"):
            users.add_user(session, name)
        users.add_group(session, "staff")
        users.add_member(session, "staff", "ann")
    give_credit(installation, "ann", "50", "credit")
    give_credit(installation, "ben", "50", "credit")
    midnight = datetime(2026, 12, 4, tzinfo=UTC)
    printed(installation, "ann", "hall", 3, midnight - timedelta(seconds=1))  # 3 Dec
    printed(installation, "ann", "hall", 5, midnight)  # 4 Dec
    printed(installation, "ben", "lab", 2, midnight + timedelta(hours=1))
    printed(
        installation, "ben", "lab", 7, midnight + timedelta(hours=2), state="aborted",
        refund=True, message="Paper jam",
    )  # fmt: skip
    printed(installation, "ben", "lab", 9, NOW - timedelta(days=30))  # before the 30 days

    with installation.db.read() as session:
        board = dashboard_figures(session, days=30, now=NOW)

    assert len(board.days) == 30
    assert board.days[0].day.isoformat() == "2026-11-05"
    by_day = {d.day.isoformat(): (d.pages, d.spent) for d in board.days}
    assert by_day["2026-12-03"] == (3, Decimal("0.30"))
    # The aborted job's pages do not count, and its charge is refunded: nothing spent.
    assert by_day["2026-12-04"] == (5 + 2, Decimal("0.70"))
    assert board.total_pages == 10 and board.total_spent == Decimal("1.00")
    assert board.top_printers == [("hall", 8), ("lab", 2)]
    assert board.top_groups == [("staff", 8)]
    [failure] = board.failures
    assert (failure.state, failure.message, failure.printer) == ("aborted", "Paper jam", "lab")
    assert failure.at == midnight + timedelta(hours=2)
    assert board.in_flight == []
