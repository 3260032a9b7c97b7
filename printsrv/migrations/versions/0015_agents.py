"""agents: remote print agents, their printers and their jobs

Table of printsrv.agents (see printsrv/agents/models.py): agent. A remote printer is a
printer row with agent_id set (and its marker levels), a remote job a print_job row with
agent_id set, its claims counted in attempts and the pages its CUPS printed in impressions.
It changes the printer and print_job tables, so it grows off the documents branch.

Revision ID: 0015_agents
Revises: 0006_documents
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_agents"
down_revision = "0006_documents"
branch_labels = ("agents",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_digest", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_contact_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_address", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent")),
        sa.UniqueConstraint("name", name=op.f("uq_agent_name")),
    )
    op.add_column("printer", sa.Column("agent_id", sa.Integer(), nullable=True))
    op.add_column("printer", sa.Column("markers", sa.Text(), nullable=False, server_default="[]"))
    op.create_index(op.f("ix_printer_agent_id"), "printer", ["agent_id"], unique=False)
    op.add_column("print_job", sa.Column("agent_id", sa.Integer(), nullable=True))
    op.add_column(
        "print_job", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("print_job", sa.Column("impressions", sa.Integer(), nullable=True))
    op.create_index("ix_print_job_agent_id_state", "print_job", ["agent_id", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_print_job_agent_id_state", table_name="print_job")
    with op.batch_alter_table("print_job") as batch:
        batch.drop_column("impressions")
        batch.drop_column("attempts")
        batch.drop_column("agent_id")
    op.drop_index(op.f("ix_printer_agent_id"), table_name="printer")
    with op.batch_alter_table("printer") as batch:
        batch.drop_column("markers")
        batch.drop_column("agent_id")
    op.drop_table("agent")
