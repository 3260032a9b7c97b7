"""guards: the fingerprint of the installation secret; document log and config changes
notified by the database

secret_fingerprint (printsrv/platform/models.py): one row, written by the first start, that
lets a machine with another installation secret refuse to start instead of answering 401 to
every credential (printsrv/operations/installation.py: check_secret).

On PostgreSQL, statement triggers on document and print_job (the print_job columns a page of
the log shows: printsrv/documents/log_cache.py SHOWN_JOB_COLUMNS) send the document log's
notification themselves, so every server empties its page cache after any committed write,
raw SQL and restores included, not only after writes made through printsrv's ORM. A
trigger on config_revision tells every server's config refresher that the config changed
(printsrv/platform/config_refresh.py), so it re-reads at once instead of at its next poll.
SQLite has no notifications and gets no triggers.

Revision ID: 0016_guards
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_guards"
down_revision = "0001"
branch_labels = ("guards",)
depends_on = ("0006_documents",)

# The columns of SHOWN_JOB_COLUMNS, as they were when this migration was written: a
# migration never follows later code.
_SHOWN_JOB_COLUMNS = (
    "document_id, printer_name, options, pages, sheets, cost, refund_trx_id, state, "
    "cups_job_id, cups_state, finished_at"
)
# The channel of log_cache.CHANNEL_SQL, from the schema of the table that changed (not the
# writer's search_path, which a psql session may have set otherwise).
_NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION printsrv_document_log_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('printsrv_doclog_' || left(md5(TG_TABLE_SCHEMA::text), 16), '');
    RETURN NULL;
END
$$
"""
_CONFIG_FUNCTION = """
CREATE OR REPLACE FUNCTION printsrv_config_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('printsrv_config_' || left(md5(TG_TABLE_SCHEMA::text), 16), '');
    RETURN NULL;
END
$$
"""
_CONFIG_TRIGGER = "config_revision_changed"
_TRIGGERS = {
    "document_log_changed": "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON document",
    "print_job_log_changed": "AFTER INSERT OR DELETE OR TRUNCATE ON print_job",
    "print_job_log_shown_changed": f"AFTER UPDATE OF {_SHOWN_JOB_COLUMNS} ON print_job",
}


def upgrade() -> None:
    op.create_table(
        "secret_fingerprint",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secret_fingerprint")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_NOTIFY_FUNCTION)
        for name, when in _TRIGGERS.items():
            op.execute(
                f"CREATE TRIGGER {name} {when} "
                "FOR EACH STATEMENT EXECUTE FUNCTION printsrv_document_log_changed()"
            )
        op.execute(_CONFIG_FUNCTION)
        op.execute(
            f"CREATE TRIGGER {_CONFIG_TRIGGER} "
            "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON config_revision "
            "FOR EACH STATEMENT EXECUTE FUNCTION printsrv_config_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {_CONFIG_TRIGGER} ON config_revision")
        op.execute("DROP FUNCTION IF EXISTS printsrv_config_changed()")
        for name, when in _TRIGGERS.items():
            table = when.rsplit(" ON ", 1)[1]
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS printsrv_document_log_changed()")
    op.drop_table("secret_fingerprint")
