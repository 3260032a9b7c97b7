"""jobs: asynchronous jobs polled by key, their result files and the files' bytes

Tables of printsrv.jobs (see printsrv/jobs/models.py): async_job (one row per job, with the
lease of the runner holding it), async_job_file and async_job_chunk (result files, stored in
the database in chunks so that any machine of an installation can serve them).

Revision ID: 0011_jobs
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_jobs"
down_revision = "0001"
branch_labels = ("jobs",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "async_job",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("job_type", sa.String(length=40), nullable=False),
        sa.Column("argument", sa.Text(), nullable=False),
        sa.Column("owner_kind", sa.String(length=10), nullable=False),
        sa.Column("owner_user_id", sa.Integer(), nullable=True),
        sa.Column("owner_name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("owner_kind IN ('admin', 'user')", name=op.f("ck_async_job_owner_kind")),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'done', 'failed', 'canceled', 'expired')",
            name=op.f("ck_async_job_state"),
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_async_job")),
    )
    op.create_index(op.f("ix_async_job_expires_at"), "async_job", ["expires_at"], unique=False)
    op.create_index(
        "ix_async_job_state_lease_until", "async_job", ["state", "lease_until"], unique=False
    )
    op.create_table(
        "async_job_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_key", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_key"],
            ["async_job.key"],
            name=op.f("fk_async_job_file_job_key_async_job"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_async_job_file")),
        sa.UniqueConstraint("job_key", "name", name=op.f("uq_async_job_file_job_key")),
    )
    op.create_table(
        "async_job_chunk",
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["async_job_file.id"],
            name=op.f("fk_async_job_chunk_file_id_async_job_file"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("file_id", "seq", name=op.f("pk_async_job_chunk")),
    )


def downgrade() -> None:
    op.drop_table("async_job_chunk")
    op.drop_table("async_job_file")
    op.drop_index("ix_async_job_state_lease_until", table_name="async_job")
    op.drop_index(op.f("ix_async_job_expires_at"), table_name="async_job")
    op.drop_table("async_job")
