"""quotas: scheduled group quotas, the record of every credit, and the QUOTA ledger row type

Tables of printsrv.accounts.quotas (see printsrv/accounts/models.py): group_quota (a
group's amount, period and max-accumulation) and quota_credit (one row per group, period
and member: what makes a credit exactly-once). account_trx's trx_type CHECK gains QUOTA.

On SQLite a CHECK constraint cannot be altered with ALTER TABLE, and copying account_trx
to a new table (Alembic's batch mode) fails once its rows point at each other (transfer
twins, reversals): the copy must be made with foreign keys off, which cannot be switched
inside the migration's transaction. SQLite documents a second way for changes that leave
the stored rows valid, such as a CHECK that allows more: rewrite the table's CREATE
statement in sqlite_schema (writable_schema) and bump schema_version
(https://sqlite.org/lang_altertable.html, "making other kinds of table schema changes").
It is also instant, where a copy would rewrite the whole ledger. Downgrading refuses while
QUOTA rows exist.

Revision ID: 0012_quotas
Revises: 0002_financial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import financial.schema

revision = "0012_quotas"
down_revision = "0002_financial"
branch_labels = ("quotas",)
depends_on = None

_TYPES = [
    "ADJUST",
    "DEPOSIT",
    "GATEWAY",
    "INITIAL",
    "PDF_OUT",
    "PRINT_IN",
    "PRINT_OUT",
    "PURCHASE",
    "TRANSFER",
    "VOUCHER",
]

_WITH_QUOTA = sorted([*_TYPES, "QUOTA"])


def _condition(types: list[str]) -> str:
    return "trx_type IN ({})".format(", ".join(f"'{t}'" for t in types))


def _set_trx_types(old: list[str], new: list[str]) -> None:
    name = op.f("ck_account_trx_trx_type")
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(name, "account_trx", type_="check")
        op.create_check_constraint(name, "account_trx", _condition(new))
        return
    if old != new and len(new) < len(old):
        unknown = bind.execute(
            # The condition is built from this module's constants, never from input.
            sa.text("SELECT count(*) FROM account_trx WHERE NOT (" + _condition(new) + ")")  # noqa: S608
        ).scalar_one()
        if unknown:
            raise RuntimeError(f"{unknown} ledger rows have a type outside {', '.join(new)}")
    created = bind.execute(
        sa.text("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'account_trx'")
    ).scalar_one()
    before = f"CONSTRAINT {name} CHECK ({_condition(old)})"
    if before not in created:
        raise RuntimeError(f"account_trx has no CHECK {before!r} to replace")
    version = bind.execute(sa.text("PRAGMA schema_version")).scalar_one()
    bind.execute(sa.text("PRAGMA writable_schema = ON"))
    bind.execute(
        sa.text(
            "UPDATE sqlite_schema SET sql = :sql WHERE type = 'table' AND name = 'account_trx'"
        ),
        {"sql": created.replace(before, f"CONSTRAINT {name} CHECK ({_condition(new)})")},
    )
    bind.execute(sa.text(f"PRAGMA schema_version = {int(version) + 1}"))
    bind.execute(sa.text("PRAGMA writable_schema = OFF"))


def upgrade() -> None:
    op.create_table(
        "group_quota",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("amount", financial.schema.MoneyType(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("max_accumulation", financial.schema.MoneyType(), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(length=255), nullable=False),
        sa.Column("credited_through", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_group_quota_amount_positive")),
        sa.CheckConstraint(
            "period IN ('daily', 'weekly', 'monthly')", name=op.f("ck_group_quota_period")
        ),
        sa.CheckConstraint(
            "max_accumulation IS NULL OR max_accumulation >= amount",
            name=op.f("ck_group_quota_max_accumulation_not_below_amount"),
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["user_group.id"],
            name=op.f("fk_group_quota_group_id_user_group"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", name=op.f("pk_group_quota")),
    )
    op.create_table(
        "quota_credit",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("amount", financial.schema.MoneyType(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "group_id", "period_start", "user_id", name=op.f("pk_quota_credit")
        ),
    )
    _set_trx_types(_TYPES, _WITH_QUOTA)


def downgrade() -> None:
    _set_trx_types(_WITH_QUOTA, _TYPES)
    op.drop_table("quota_credit")
    op.drop_table("group_quota")
