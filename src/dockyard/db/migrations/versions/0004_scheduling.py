"""Scheduled refresh, refresh history, webhook secrets, and the PostgreSQL job queue.

On PostgreSQL this also installs procrastinate's schema (the job queue that `dockyard
worker` processes share). A procrastinate upgrade that changes its schema comes with a
dockyard migration applying procrastinate's own migration files.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UTC_DATETIME = dockyard.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.add_column("tools", sa.Column("next_refresh_at", UTC_DATETIME, nullable=True))
    op.add_column("tools", sa.Column("webhook_secret_hash", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_tools_next_refresh_at"), "tools", ["next_refresh_at"])
    op.create_table(
        "refresh_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tool_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("worker", sa.String(length=120), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tool_id"],
            ["tools.id"],
            name=op.f("fk_refresh_runs_tool_id_tools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_runs")),
    )
    op.create_index(op.f("ix_refresh_runs_tool_id"), "refresh_runs", ["tool_id"])
    if op.get_bind().dialect.name == "postgresql":
        from procrastinate.schema import SchemaManager

        op.execute(SchemaManager.get_schema())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP TABLE IF EXISTS procrastinate_periodic_defers, procrastinate_events, "
            "procrastinate_jobs, procrastinate_workers CASCADE"
        )
    op.drop_index(op.f("ix_refresh_runs_tool_id"), "refresh_runs")
    op.drop_table("refresh_runs")
    op.drop_index(op.f("ix_tools_next_refresh_at"), "tools")
    op.drop_column("tools", "webhook_secret_hash")
    op.drop_column("tools", "next_refresh_at")
