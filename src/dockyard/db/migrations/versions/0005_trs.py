"""Versions get a description (TRS 2.1 `ToolVersion.description`); the catalog generation.

`catalog_state` holds one row whose generation grows with every change readers can see;
the TRS response cache compares it instead of the data.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "tool_versions",
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
    )
    state = op.create_table(
        "catalog_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_state")),
    )
    op.bulk_insert(state, [{"id": 1, "generation": 0}])


def downgrade() -> None:
    op.drop_table("catalog_state")
    op.drop_column("tool_versions", "description")
