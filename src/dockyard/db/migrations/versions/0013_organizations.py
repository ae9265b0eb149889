"""Organizations with members and roles; tools and workflows that belong to one; collections
of them; labels on tools.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.db.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UTC_DATETIME = dockyard.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
    )
    op.create_index(
        "uq_organizations_name_lower", "organizations", [sa.text("lower(name)")], unique=True
    )
    op.create_table(
        "organization_members",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_organization_members_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_organization_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "user_id", name=op.f("pk_organization_members")),
    )
    op.create_index(op.f("ix_organization_members_user_id"), "organization_members", ["user_id"])
    # Plain ADD COLUMNs, each with its foreign key: batch mode would rebuild the tables
    # without their expression indexes, and alembic adds no constraint to a SQLite table
    # otherwise (SQLite takes a named REFERENCES clause on a column whose default is NULL).
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in ("tools", "workflows"):
        name = f"fk_{table}_organization_id_organizations"
        if sqlite:
            op.execute(
                f"ALTER TABLE {table} ADD COLUMN organization_id INTEGER CONSTRAINT {name} "
                "REFERENCES organizations (id) ON DELETE SET NULL"
            )
        else:
            op.add_column(table, sa.Column("organization_id", sa.Integer(), nullable=True))
            op.create_foreign_key(
                name, table, "organizations", ["organization_id"], ["id"], ondelete="SET NULL"
            )
        op.create_index(op.f(f"ix_{table}_organization_id"), table, ["organization_id"])
    op.add_column(
        "tools", sa.Column("labels", sa.String(length=500), nullable=False, server_default="")
    )
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_collections_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collections")),
    )
    op.create_index(op.f("ix_collections_organization_id"), "collections", ["organization_id"])
    op.create_index(
        "uq_collections_organization_name",
        "collections",
        ["organization_id", sa.text("lower(name)")],
        unique=True,
    )
    op.create_table(
        "collection_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("tool_id", sa.Integer(), nullable=True),
        sa.Column("workflow_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(tool_id IS NULL) <> (workflow_id IS NULL)",
            name=op.f("ck_collection_entries_one_tool_or_workflow"),
        ),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_collection_entries_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tool_id"],
            ["tools.id"],
            name=op.f("fk_collection_entries_tool_id_tools"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflows.id"],
            name=op.f("fk_collection_entries_workflow_id_workflows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_entries")),
    )
    for column in ("collection_id", "tool_id", "workflow_id"):
        op.create_index(op.f(f"ix_collection_entries_{column}"), "collection_entries", [column])


def downgrade() -> None:
    op.drop_table("collection_entries")
    op.drop_table("collections")
    op.drop_column("tools", "labels")
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in ("workflows", "tools"):
        op.drop_index(op.f(f"ix_{table}_organization_id"), table_name=table)
        if not sqlite:  # SQLite 3.35+ drops the column and its REFERENCES clause together
            op.drop_constraint(
                op.f(f"fk_{table}_organization_id_organizations"), table, type_="foreignkey"
            )
        op.drop_column(table, "organization_id")
    op.drop_table("organization_members")
    op.drop_index("uq_organizations_name_lower", table_name="organizations")
    op.drop_table("organizations")
