"""Indexes for the TRS `/tools` filters by organization, registry host and toolname.

At 100,000 tools each of these filters read the whole table (15-35 ms on PostgreSQL, for the
count and again for the page); see docs/benchmarks.md and bench/plans.py.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tools_namespace", "tools", ["namespace"])
    op.create_index("ix_tools_host_lower", "tools", [sa.text("lower(host)")])
    op.create_index("ix_tools_toolname", "tools", ["toolname"])


def downgrade() -> None:
    for name in ("ix_tools_toolname", "ix_tools_host_lower", "ix_tools_namespace"):
        op.drop_index(name, table_name="tools")
