"""Versions read from a git source (reference, commit, when, last problem); push dates.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.db.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UTC_DATETIME = dockyard.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.add_column("tool_versions", sa.Column("source_reference", sa.String(255), nullable=True))
    op.add_column("tool_versions", sa.Column("source_commit", sa.String(64), nullable=True))
    op.add_column("tool_versions", sa.Column("source_checked_at", UTC_DATETIME, nullable=True))
    op.add_column("tool_versions", sa.Column("source_problem", sa.Text(), nullable=True))
    op.add_column("tool_versions", sa.Column("pushed_at", UTC_DATETIME, nullable=True))


def downgrade() -> None:
    for column in (
        "pushed_at",
        "source_problem",
        "source_checked_at",
        "source_commit",
        "source_reference",
    ):
        op.drop_column("tool_versions", column)
