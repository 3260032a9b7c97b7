"""admin console: indexes for the user search

printsrv/operations/directory.py finds users whose name, full name, email or card number
starts with what the admin typed, in any case. On PostgreSQL a `text_pattern_ops` index
on each (lower-cased) column makes each prefix one index range whatever the database's
collation (bench/admin_search.py: 100,000 users). SQLite gets none: its reflection cannot
read an expression index, and there a search scans a small table.

Revision ID: 0021_admin2_user_search
Revises: 0004_system (it adds card_number)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_admin2_user_search"
down_revision = "0004_system"
branch_labels = ("admin2",)
depends_on = None

# (index, column): each on lower(column) (user names are lower case already; the same
# expression everywhere keeps the four alike).
INDEXES = (
    ("ix_users_search_user_name", "user_name"),
    ("ix_users_search_full_name", "full_name"),
    ("ix_users_search_email", "email"),
    ("ix_users_search_card_number", "card_number"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, column in INDEXES:
        label = f"lower_{column}"
        expression = sa.func.lower(sa.column(column)).label(label)
        op.create_index(name, "users", [expression], postgresql_ops={label: "text_pattern_ops"})


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _ in INDEXES:
        op.drop_index(name, table_name="users")
