"""idempotency: an index on idempotency_key.created_at for the purge of expired keys

Every server process purges expired keys once a minute (printsrv.accounts.idempotency.keep_purged);
without the index each purge scans the whole table.

Revision ID: 0009_idempotency_created_index
Revises: 0005_idempotency
"""

from __future__ import annotations

from alembic import op

revision = "0009_idempotency_created_index"
down_revision = "0005_idempotency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_idempotency_key_created_at", "idempotency_key", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_key_created_at", table_name="idempotency_key")
