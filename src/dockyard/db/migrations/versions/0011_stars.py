"""Stars: which user starred which tool, and each tool's count (kept with the stars, so that
sorting by them reads one indexed column).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tool_stars",
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "tool_id", sa.Integer, sa.ForeignKey("tools.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_tool_stars_tool_id", "tool_stars", ["tool_id"])
    # A plain ADD COLUMN on both databases: SQLite's batch mode would rebuild the table and
    # lose its expression index (ix_tools_host_lower).
    op.add_column("tools", sa.Column("stars", sa.Integer, nullable=False, server_default="0"))
    op.create_index("ix_tools_stars", "tools", ["stars"])


def downgrade() -> None:
    op.drop_index("ix_tools_stars", table_name="tools")
    op.drop_column("tools", "stars")  # SQLite 3.35+ drops a column in place
    op.drop_index("ix_tool_stars_tool_id", table_name="tool_stars")
    op.drop_table("tool_stars")
