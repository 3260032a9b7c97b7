"""financial: accounts and the append-only ledger

Revision ID: 0002_financial
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import financial.schema

revision = "0002_financial"
down_revision = "0001"
branch_labels = ("financial",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_type", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column(
            "balance", financial.schema.MoneyType(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column(
            "credit_limit_policy", sa.String(length=10), server_default="NONE", nullable=False
        ),
        sa.Column("credit_limit", financial.schema.MoneyType(), nullable=True),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", financial.schema.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "(credit_limit_policy = 'INDIVIDUAL') = (credit_limit IS NOT NULL)",
            name=op.f("ck_account_credit_limit_matches_policy"),
        ),
        sa.CheckConstraint(
            "account_type IN ('USER', 'GROUP', 'SHARED')", name=op.f("ck_account_account_type")
        ),
        sa.CheckConstraint(
            "credit_limit_policy IN ('NONE', 'DEFAULT', 'INDIVIDUAL')",
            name=op.f("ck_account_credit_limit_policy"),
        ),
        sa.CheckConstraint("name <> ''", name=op.f("ck_account_name_not_empty")),
        sa.CheckConstraint(
            "parent_id IS NULL OR account_type = 'SHARED'",
            name=op.f("ck_account_parent_only_shared"),
        ),
        sa.CheckConstraint(
            "credit_limit IS NULL OR credit_limit >= 0",
            name=op.f("ck_account_credit_limit_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["account.id"], name=op.f("fk_account_parent_id_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
        sa.UniqueConstraint("account_type", "name", name=op.f("uq_account_account_type")),
    )
    op.create_table(
        "account_trx",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("trx_type", sa.String(length=10), nullable=False),
        sa.Column("amount", financial.schema.MoneyType(), nullable=False),
        sa.Column("balance_after", financial.schema.MoneyType(), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("actor_kind", sa.String(length=8), nullable=False),
        sa.Column("actor_name", sa.String(length=255), nullable=False),
        sa.Column("created_at", financial.schema.UTCDateTime(), nullable=False),
        sa.Column("twin_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "reversal_of_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("document_id", sa.BigInteger(), nullable=True),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "actor_kind IN ('admin', 'user', 'system')", name=op.f("ck_account_trx_actor_kind")
        ),
        sa.CheckConstraint(
            "trx_type IN ('ADJUST', 'DEPOSIT', 'GATEWAY', 'INITIAL', 'PDF_OUT', 'PRINT_IN', 'PRINT_OUT', 'PURCHASE', 'TRANSFER', 'VOUCHER')",
            name=op.f("ck_account_trx_trx_type"),
        ),
        sa.CheckConstraint(
            "twin_id IS NULL OR trx_type = 'TRANSFER'",
            name=op.f("ck_account_trx_twin_only_transfer"),
        ),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_account_trx_amount_not_zero")),
        sa.CheckConstraint(
            "reversal_of_id IS NULL OR reversal_of_id <> id",
            name=op.f("ck_account_trx_reversal_not_self"),
        ),
        sa.CheckConstraint(
            "twin_id IS NULL OR twin_id <> id", name=op.f("ck_account_trx_twin_not_self")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_account_trx_account_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["reversal_of_id"],
            ["account_trx.id"],
            name=op.f("fk_account_trx_reversal_of_id_account_trx"),
        ),
        sa.ForeignKeyConstraint(
            ["twin_id"], ["account_trx.id"], name=op.f("fk_account_trx_twin_id_account_trx")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_trx")),
        sa.UniqueConstraint("reversal_of_id", name=op.f("uq_account_trx_reversal_of_id")),
        sa.UniqueConstraint("twin_id", name=op.f("uq_account_trx_twin_id")),
    )
    with op.batch_alter_table("account_trx", schema=None) as batch_op:
        batch_op.create_index(
            "ix_account_trx_account_id_created_at", ["account_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_account_trx_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_account_trx_trx_type", ["trx_type"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("account_trx", schema=None) as batch_op:
        batch_op.drop_index("ix_account_trx_trx_type")
        batch_op.drop_index("ix_account_trx_created_at")
        batch_op.drop_index("ix_account_trx_account_id_created_at")

    op.drop_table("account_trx")
    op.drop_table("account")
