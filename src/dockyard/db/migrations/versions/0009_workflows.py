"""Workflows from git: entries, maintainers, versions (branches and tags), files and images.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.db.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UTC_DATETIME = dockyard.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("path", sa.String(800), nullable=False),
        sa.Column("git_url", sa.String(1024), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("descriptor_type", sa.String(16), nullable=False),
        sa.Column("primary_descriptor_path", sa.String(1024), nullable=False),
        sa.Column("test_parameter_files", sa.JSON(), nullable=False),
        sa.Column("from_dockstore_yml", sa.Boolean(), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("published_at", UTC_DATETIME, nullable=True),
        sa.Column("refreshed_at", UTC_DATETIME, nullable=True),
        sa.Column("refresh_status", sa.String(16), nullable=True),
        sa.Column("refresh_message", sa.Text(), nullable=True),
        sa.Column("next_refresh_at", UTC_DATETIME, nullable=True),
        sa.Column("webhook_secret", sa.Text(), nullable=True),
    )
    op.create_index("ix_workflows_updated_at", "workflows", ["updated_at"])
    op.create_index("ix_workflows_next_refresh_at", "workflows", ["next_refresh_at"])
    op.create_index("uq_workflows_path_lower", "workflows", [sa.text("lower(path)")], unique=True)
    op.create_table(
        "workflow_maintainers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "workflow_id",
            sa.Integer(),
            sa.ForeignKey("workflows.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("added_at", UTC_DATETIME, nullable=False),
        sa.UniqueConstraint("workflow_id", "user_id"),
    )
    op.create_index("ix_workflow_maintainers_user_id", "workflow_maintainers", ["user_id"])
    op.create_table(
        "workflow_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "workflow_id",
            sa.Integer(),
            sa.ForeignKey("workflows.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("reference_type", sa.String(8), nullable=False),
        sa.Column("commit", sa.String(64), nullable=True),
        sa.Column("primary_descriptor_path", sa.String(1024), nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("frozen", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("frozen_at", UTC_DATETIME, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("checked_at", UTC_DATETIME, nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("tools", sa.JSON(), nullable=False),
        sa.UniqueConstraint("workflow_id", "name"),
    )
    op.create_table(
        "workflow_files",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "version_id",
            sa.Integer(),
            sa.ForeignKey("workflow_versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("file_type", sa.String(32), nullable=False),
        sa.Column("descriptor_type", sa.String(16), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.UniqueConstraint("version_id", "path"),
    )
    op.create_table(
        "workflow_images",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "version_id",
            sa.Integer(),
            sa.ForeignKey("workflow_versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("file", sa.String(1024), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("image", sa.String(1024), nullable=True),
        sa.Column("registry_id", sa.String(40), nullable=True),
        sa.Column("engine", sa.String(16), nullable=True),
        sa.Column("digest", sa.String(140), nullable=True),
        sa.Column("first_digest", sa.String(140), nullable=True),
        sa.Column("platforms", sa.JSON(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("created", UTC_DATETIME, nullable=True),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("read_problems", sa.JSON(), nullable=False),
        sa.Column("resolve_problems", sa.JSON(), nullable=False),
        sa.Column("resolved_at", UTC_DATETIME, nullable=True),
    )
    op.create_index("ix_workflow_images_version_id", "workflow_images", ["version_id"])


def downgrade() -> None:
    for table in (
        "workflow_images",
        "workflow_files",
        "workflow_versions",
        "workflow_maintainers",
        "workflows",
    ):
        op.drop_table(table)
