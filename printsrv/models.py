"""printsrv's tables (the accounting tables live in `financial.schema`).

Times are stored in UTC; user and group names are stored lower-case, so that look-ups are
case-insensitive on both back-ends without collation tricks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from financial.schema import MoneyType

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as an aware UTC datetime.

    SQLite keeps no offset; PostgreSQL's `timestamptz` does. Normalising here gives both
    back-ends the same behaviour.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone-aware time")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ConfigProperty(Base):
    """A config property's stored value (secrets as keyed hashes)."""

    __tablename__ = "config_property"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="")


class ConfigRevision(Base):
    """One row whose token changes with every config write.

    Running servers poll this single row to learn that their cached config is stale.
    A random token rather than a counter still changes if the table is emptied.
    """

    __tablename__ = "config_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    token: Mapped[str] = mapped_column(String(36))


class User(Base):
    """A person who prints, from the internal user source (or synchronised from LDAP)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_name: Mapped[str] = mapped_column(String(100), unique=True)
    full_name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    uuid_hash: Mapped[str | None] = mapped_column(String(100), default=None)
    uuid_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Card and ID numbers identify a person at a printer's card reader or keypad.
    card_number: Mapped[str | None] = mapped_column(String(100), unique=True, default=None)
    id_number: Mapped[str | None] = mapped_column(String(100), unique=True, default=None)
    pin_hash: Mapped[str | None] = mapped_column(String(100), default=None)
    email_other: Mapped[str] = mapped_column(Text, default="")  # one address a line
    # A deleted user can no longer log in or print; the row stays for the history.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Where the user comes from: "internal" (made here) or "ldap" (synchronised).
    source: Mapped[str] = mapped_column(String(20), default="internal")

    aliases: Mapped[list[UserAlias]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="UserAlias.alias"
    )
    groups: Mapped[list[UserGroup]] = relationship(
        secondary="user_group_member", back_populates="members", order_by="UserGroup.name"
    )

    def __repr__(self) -> str:
        return f"User({self.user_name!r}, enabled={self.enabled})"


class UserAlias(Base):
    """Another name under which a user is known (e.g. a student number), mapped on input."""

    __tablename__ = "user_alias"

    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="aliases")


class UserGroup(Base):
    """A named group of users (a class, a department)."""

    __tablename__ = "user_group"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Defaults for members' new USER accounts (printsrv.people.group_defaults); NULL: none set.
    initial_credit: Mapped[Decimal | None] = mapped_column(MoneyType())
    credit_limit_policy: Mapped[str | None] = mapped_column(String(10))
    credit_limit: Mapped[Decimal | None] = mapped_column(MoneyType())

    members: Mapped[list[User]] = relationship(
        secondary="user_group_member", back_populates="groups", order_by="User.user_name"
    )


class UserGroupMember(Base):
    """Membership of one user in one group."""

    __tablename__ = "user_group_member"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class BatchJob(Base):
    """A batch job (backup, user sync, database clean-up) while it runs, on any machine.

    `systemStatus` reports UNAVAILABLE while a row with a recent heartbeat exists; a job
    that died without removing its row stops counting once its heartbeat is old.
    """

    __tablename__ = "batch_job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- web login: spent one-time tokens, web sessions, login throttling ------------------------
# (printsrv.people.tokens and printsrv.web; migration 0003_web_login, branch "web")


class SpentLoginToken(Base):
    """A one-time login token that has logged someone in, so it is refused from now on.

    Keyed by the SHA-256 of the token's bytes: the primary key makes a second use fail on
    every worker and machine, even when two of them try at the same moment.
    """

    __tablename__ = "spent_login_token"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(100))
    spent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Past this moment no configuration can make the token valid again; then the row goes.
    purge_after: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class WebSession(Base):
    """A person logged in to the web app; the cookie holds the id, the row its SHA-256.

    Deleting the row logs the person out everywhere at once.
    """

    __tablename__ = "web_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    login_method: Mapped[str] = mapped_column(String(20))
    client_address: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    user: Mapped[User] = relationship()


class LoginThrottle(Base):
    """Failed web logins in the current window, per user name ("user:...") or address ("addr:...").

    A fixed window: the first failure after the window has passed starts a new one.
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


# --- documents and printing: the document log, queues, printers, print jobs ------------------
# (printsrv.documents.log and printsrv.printing; migration 0006_documents, branch "documents")

# Document ids are BIGINT like account_trx.document_id, which points at them; SQLite needs
# INTEGER for a primary key that takes the row id.
_DOC_ID = BigInteger().with_variant(Integer(), "sqlite")

DOCUMENT_TYPES = ("in", "pdf", "print", "ticket")
JOB_STATES = ("queued", "submitted", "completed", "canceled", "aborted", "failed")


class Document(Base):
    """One entry of the document log: a document that came in (`in`) or went out (`print`).

    The PDF itself lives in the content-addressed store under PRINTSRV_HOME, named by
    `pdf_sha256`; `store` says whether it is still kept (retention clears it, the row
    stays). A `print` entry points at the `in` entry it printed (`source_id`); the caller's
    `ext_id` is kept on the `in` entry, unique per user.
    """

    __tablename__ = "document"
    __table_args__ = (
        UniqueConstraint("user_id", "ext_id"),
        CheckConstraint("doc_type IN ('in', 'pdf', 'print', 'ticket')", name="doc_type"),
    )

    id: Mapped[int] = mapped_column(_DOC_ID, primary_key=True)
    doc_type: Mapped[str] = mapped_column(String(10))
    source_id: Mapped[int | None] = mapped_column(
        _DOC_ID, ForeignKey("document.id"), index=True, default=None
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    ext_id: Mapped[str | None] = mapped_column(String(255), default=None)
    title: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    store: Mapped[bool] = mapped_column(Boolean, default=True)
    pdf_sha256: Mapped[str] = mapped_column(String(64), index=True)
    pdf_bytes: Mapped[int] = mapped_column(BigInteger)
    pages: Mapped[int] = mapped_column(Integer)
    # What came in, before conversion: the format found by sniffing, its size and digest.
    source_type: Mapped[str] = mapped_column(String(100), default="")
    source_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    source_sha256: Mapped[str] = mapped_column(String(64), default="")
    client_address: Mapped[str] = mapped_column(String(64), default="")
    queue_name: Mapped[str] = mapped_column(String(100), default="")
    ipp_options: Mapped[str] = mapped_column(Text, default="{}")  # JSON, as the caller asked
    # Colour detection of the PDF (printsrv.documents.convert.colour): per page "C" (colour) or "G"
    # (grey), and the counts shown in the log; NULL when it was not or could not be detected.
    page_colors: Mapped[str | None] = mapped_column(Text, default=None)
    pages_color: Mapped[int | None] = mapped_column(Integer, default=None)
    pages_grayscale: Mapped[int | None] = mapped_column(Integer, default=None)

    user: Mapped[User] = relationship()
    source: Mapped[Document | None] = relationship(remote_side=[id])


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
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(_DOC_ID, ForeignKey("document.id"), unique=True)
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

    document: Mapped[Document] = relationship()


# --- idempotency: the first answer to a money-changing POST, per caller and key ----------------
# (printsrv.accounts.idempotency; migration 0005_idempotency, branch "idempotency")


class IdempotencyKey(Base):
    """The first answer to a POST that carried an `Idempotency-Key` header.

    The primary key (caller, key) is inserted in the same transaction as the money change,
    so of two concurrent requests with one key only one can commit: the other waits on the
    key, then finds the stored answer and returns it. `status_code` and `body` are NULL
    only inside that first transaction, never in a committed row.
    """

    __tablename__ = "idempotency_key"

    caller: Mapped[str] = mapped_column(String(120), primary_key=True)
    idem_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of method, path, parameters
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    body: Mapped[str | None] = mapped_column(Text, default=None)
    # Indexed: every server process purges the expired keys once a minute.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
