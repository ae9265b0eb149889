"""Refresh from registries: tag digests and their history, per-tag problems, credentials.

Columns are added with plain ALTER TABLE (no batch rebuild), so the SQLite search triggers
on `tools` stay in place.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.db.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UTC_DATETIME = dockyard.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tool_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tool_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["tool_id"],
            ["tools.id"],
            name=op.f("fk_tool_credentials_tool_id_tools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_credentials")),
        sa.UniqueConstraint("tool_id", name=op.f("uq_tool_credentials_tool_id")),
    )
    op.create_table(
        "version_digest_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=140), nullable=False),
        sa.Column("since", UTC_DATETIME, nullable=True),
        sa.Column("replaced_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["tool_versions.id"],
            name=op.f("fk_version_digest_history_version_id_tool_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_version_digest_history")),
    )
    op.create_index(
        op.f("ix_version_digest_history_version_id"), "version_digest_history", ["version_id"]
    )
    op.add_column(
        "tool_versions",
        sa.Column("from_registry", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("tool_versions", sa.Column("digest", sa.String(length=140), nullable=True))
    op.add_column("tool_versions", sa.Column("media_type", sa.String(length=120), nullable=True))
    op.add_column("tool_versions", sa.Column("digest_changed_at", UTC_DATETIME, nullable=True))
    op.add_column("tool_versions", sa.Column("checked_at", UTC_DATETIME, nullable=True))
    op.add_column("tool_versions", sa.Column("problem", sa.Text(), nullable=True))
    op.add_column("tool_versions", sa.Column("problem_code", sa.String(length=40), nullable=True))
    op.add_column("tools", sa.Column("tag_pattern", sa.String(length=500), nullable=True))
    op.add_column("tools", sa.Column("refreshed_at", UTC_DATETIME, nullable=True))
    op.add_column("tools", sa.Column("refresh_status", sa.String(length=16), nullable=True))
    op.add_column("tools", sa.Column("refresh_message", sa.Text(), nullable=True))


def downgrade() -> None:
    for column in ("refresh_message", "refresh_status", "refreshed_at", "tag_pattern"):
        op.drop_column("tools", column)
    for column in (
        "problem_code",
        "problem",
        "checked_at",
        "digest_changed_at",
        "media_type",
        "digest",
        "from_registry",
    ):
        op.drop_column("tool_versions", column)
    op.drop_index(op.f("ix_version_digest_history_version_id"), "version_digest_history")
    op.drop_table("version_digest_history")
    op.drop_table("tool_credentials")
