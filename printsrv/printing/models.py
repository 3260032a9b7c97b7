"""Printing's tables: queues, printers, who may print on them, print jobs (`printsrv.printing`;
migration 0006_documents, branch "documents"; 0008_printer_access), print rules and the
prints they refused or held (0013_print_rules). Value types read from
CUPS are in `printsrv.printing.types`. Columns for remote printers and their jobs come with
0015_agents (branch "agents").
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from financial.schema import MoneyType
from printsrv.documents.models import DOCUMENT_ID, Document
from printsrv.platform.models import Base, UTCDateTime, utcnow

JOB_STATES = ("queued", "submitted", "completed", "canceled", "aborted", "failed")


class PrintQueue(Base):
    """A queue documents are sent to: the reserved `webservice`, or a named one.

    `printer_name` set means IPP routing to that CUPS printer with `ipp_options` (JSON);
    None means documents are held in the user's inbox. `ip_allowed` is a CIDR set; void
    allows every address.
    """

    __tablename__ = "print_queue"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    reserved: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    ip_allowed: Mapped[str] = mapped_column(Text, default="")
    printer_name: Mapped[str | None] = mapped_column(String(255), default=None)
    ipp_options: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Printer(Base):
    """A CUPS printer as last synchronised, with its IPP capabilities and its prices.

    `capabilities` is the JSON form of `printing.PrinterInfo`; `cost_model` the JSON form
    of `printing.CostModel` (None: printing there is free). `present` turns false when the
    printer disappears from the CUPS server; the row stays for the history.
    """

    __tablename__ = "printer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    present: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(20), default="unknown")
    state_message: Mapped[str] = mapped_column(Text, default="")
    accepting: Mapped[bool] = mapped_column(Boolean, default=False)
    info: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(Text, default="")
    make_and_model: Mapped[str] = mapped_column(Text, default="")
    capabilities: Mapped[str] = mapped_column(Text, default="{}")
    cost_model: Mapped[str | None] = mapped_column(Text, default=None)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set for a remote printer (printsrv.agents): the agent that registered it. Agents are
    # never deleted (only revoked), so no foreign key is needed to keep the name valid.
    agent_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    markers: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")


class PrinterGroupAccess(Base):
    """A group on a printer's ALLOW or DENY list (printsrv.printing.access has the rules).

    The primary key puts a group on at most one of a printer's two lists. Both foreign keys
    cascade, so deleting a group or a printer leaves no entry behind.
    (Migration 0008_printer_access, branch "printer_access".)
    """

    __tablename__ = "printer_group_access"
    __table_args__ = (CheckConstraint("scope IN ('ALLOW', 'DENY')", name="scope"),)

    printer_id: Mapped[int] = mapped_column(
        ForeignKey("printer.id", ondelete="CASCADE"), primary_key=True
    )
    # Indexed for the cascade when a group is deleted (the key starts with printer_id).
    group_id: Mapped[int] = mapped_column(
        ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    scope: Mapped[str] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PrintJob(Base):
    """A print job from submission until CUPS says it is final; the tracker's work list.

    `state`: queued (charged, not yet in CUPS), submitted (CUPS has it as `cups_job_id`),
    then completed, canceled, aborted or failed. Moving to a final state is one conditional
    UPDATE (`WHERE state IN (queued, submitted)`), so only one worker ever does it, and the
    refund of `charge_trx_id` (`refund_trx_id`) is written in that same transaction.
    `lease_owner`/`lease_until` mark which tracker is looking at the job right now.
    """

    __tablename__ = "print_job"
    __table_args__ = (
        CheckConstraint(
            "state IN ('queued', 'submitted', 'completed', 'canceled', 'aborted', 'failed')",
            name="state",
        ),
        Index("ix_print_job_state_next_poll_at", "state", "next_poll_at"),
        Index("ix_print_job_agent_id_state", "agent_id", "state"),
        # The admin dashboard's figures (printsrv.operations.dashboard, migration
        # 0020_admin_dashboard): completed jobs by the time they finished, with the columns
        # the sums need, so a month of them is one index range; and the failures, few.
        Index(
            "ix_print_job_completed",
            "finished_at",
            "pages",
            "printer_name",
            "user_id",
            postgresql_where=text("state = 'completed'"),
            sqlite_where=text("state = 'completed'"),
        ),
        Index(
            "ix_print_job_failed",
            "finished_at",
            postgresql_where=text("state IN ('failed', 'aborted', 'canceled')"),
            sqlite_where=text("state IN ('failed', 'aborted', 'canceled')"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(DOCUMENT_ID, ForeignKey("document.id"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    printer_name: Mapped[str] = mapped_column(String(255))
    options: Mapped[str] = mapped_column(Text, default="{}")  # merged and validated (JSON)
    pages: Mapped[int] = mapped_column(Integer)
    sides: Mapped[int] = mapped_column(Integer)
    sheets: Mapped[int] = mapped_column(Integer)
    cost: Mapped[Decimal] = mapped_column(MoneyType())
    charge_trx_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    refund_trx_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    state: Mapped[str] = mapped_column(String(10), default="queued")
    cups_job_id: Mapped[int | None] = mapped_column(Integer, default=None)
    cups_state: Mapped[str] = mapped_column(String(12), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    next_poll_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    poll_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Remote jobs (printsrv.agents): the agent that prints it. Such a job is never looked at
    # by the tracker; `lease_owner`/`lease_until` are then the agent's claim, `attempts`
    # counts the claims, `impressions` is what the agent's CUPS reported.
    agent_id: Mapped[int | None] = mapped_column(Integer, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    impressions: Mapped[int | None] = mapped_column(Integer, default=None)

    document: Mapped[Document] = relationship()


RULE_SCOPES = ("all", "printer", "queue", "group")
RULE_CONDITIONS = ("pages", "copies", "sheets", "color", "type")
RULE_ACTIONS = ("refuse", "hold", "grayscale", "duplex")
RULED_STATES = ("refused", "waiting", "approved", "denied")


class PrintRule(Base):
    """A print rule (printsrv.printing.rules): where it applies, what it looks for, what it does.

    ``scope_kind`` all/printer/queue/group with ``scope_name`` ("" for all);
    ``condition_kind`` pages/copies/sheets (``condition_value`` the threshold N of ``>N``),
    color (no value) or type (a MIME type, ``image/*`` allowed); ``action`` refuse, hold,
    grayscale or duplex. (Migration 0013_print_rules, branch "print_rules".)
    """

    __tablename__ = "print_rule"
    __table_args__ = (
        CheckConstraint("scope_kind IN ('all', 'printer', 'queue', 'group')", name="scope_kind"),
        CheckConstraint(
            "condition_kind IN ('pages', 'copies', 'sheets', 'color', 'type')",
            name="condition_kind",
        ),
        CheckConstraint("action IN ('refuse', 'hold', 'grayscale', 'duplex')", name="action"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    scope_kind: Mapped[str] = mapped_column(String(10))
    scope_name: Mapped[str] = mapped_column(String(255), default="")
    condition_kind: Mapped[str] = mapped_column(String(10))
    condition_value: Mapped[str] = mapped_column(String(255), default="")
    action: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RuledPrint(Base):
    """A print a rule refused or held (printsrv.printing.approval), and what became of it.

    ``state``: refused (final), waiting (held for approval, nothing charged), approved (the
    print ``print_document_id`` was made and charged) or denied. ``rules`` names the rules
    that decided it (comma-separated); ``layers`` is the JSON of the queue's routing options
    and the requested options after the rules' changes, so an approval prints and prices
    exactly what was held. A partial unique index keeps at most one waiting print per
    document; leaving ``waiting`` is one conditional UPDATE, so an approval happens once.
    """

    __tablename__ = "ruled_print"
    __table_args__ = (
        CheckConstraint("state IN ('refused', 'waiting', 'approved', 'denied')", name="state"),
        Index(
            "ux_ruled_print_waiting_document",
            "document_id",
            unique=True,
            sqlite_where=text("state = 'waiting'"),
            postgresql_where=text("state = 'waiting'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(DOCUMENT_ID, ForeignKey("document.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    printer_name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(10))
    rules: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[str] = mapped_column(Text, default="")
    layers: Mapped[str] = mapped_column(Text, default="{}")
    cost: Mapped[Decimal] = mapped_column(MoneyType())
    comment: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str] = mapped_column(String(255), default="")
    print_document_id: Mapped[int | None] = mapped_column(DOCUMENT_ID, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
