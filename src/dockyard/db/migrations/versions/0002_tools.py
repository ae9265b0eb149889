"""Tools, maintainers, versions, images and files, with full-text search.

Search uses each database's own index on tools.search_text: on PostgreSQL a GIN index on a
stored column search_vector = to_tsvector('simple', search_text); on SQLite an FTS5 table
kept in step by triggers. A later migration that rebuilds `tools` in SQLite batch mode must
create those triggers again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.db.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE tools_fts USING fts5("
    "search_text, content='tools', content_rowid='id', prefix='2 3 4')",
    "CREATE TRIGGER tools_fts_insert AFTER INSERT ON tools BEGIN "
    "INSERT INTO tools_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER tools_fts_delete AFTER DELETE ON tools BEGIN "
    "INSERT INTO tools_fts(tools_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER tools_fts_update AFTER UPDATE OF search_text ON tools BEGIN "
    "INSERT INTO tools_fts(tools_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO tools_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
]
POSTGRESQL_SEARCH = [
    "ALTER TABLE tools ADD COLUMN search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED",
    "CREATE INDEX ix_tools_search ON tools USING gin (search_vector)",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # SQLite cannot add a foreign key later, and does not check it at creation; PostgreSQL
    # gets it once tool_versions exists.
    default_version_fk = (
        [
            sa.ForeignKeyConstraint(
                ["default_version_id"],
                ["tool_versions.id"],
                name=op.f("fk_tools_default_version_id_tool_versions"),
                ondelete="SET NULL",
            )
        ]
        if sqlite
        else []
    )
    op.create_table(
        "tools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=600), nullable=False),
        sa.Column("registry_id", sa.String(length=40), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("repository", sa.String(length=255), nullable=False),
        sa.Column("toolname", sa.String(length=256), nullable=True),
        sa.Column("namespace", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("maintainer_email", sa.String(length=254), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("source", sa.JSON(), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("descriptor_types", sa.String(length=64), nullable=False),
        sa.Column("default_version_id", sa.Integer(), nullable=True),
        sa.Column("created_at", dockyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", dockyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", dockyard.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tools")),
        *default_version_fk,
    )
    op.create_index("uq_tools_path_lower", "tools", [sa.text("lower(path)")], unique=True)
    with op.batch_alter_table("tools", schema=None) as batch_op:
        batch_op.create_index("ix_tools_name_path", ["name", "path"], unique=False)
        batch_op.create_index(batch_op.f("ix_tools_registry_id"), ["registry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tools_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "tool_maintainers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tool_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("added_at", dockyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tool_id"],
            ["tools.id"],
            name=op.f("fk_tool_maintainers_tool_id_tools"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_tool_maintainers_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_maintainers")),
        sa.UniqueConstraint("tool_id", "user_id", name=op.f("uq_tool_maintainers_tool_id")),
    )
    with op.batch_alter_table("tool_maintainers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tool_maintainers_user_id"), ["user_id"], unique=False)

    op.create_table(
        "tool_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tool_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("created_at", dockyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", dockyard.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tool_id"],
            ["tools.id"],
            name=op.f("fk_tool_versions_tool_id_tools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_versions")),
        sa.UniqueConstraint("tool_id", "name", name=op.f("uq_tool_versions_tool_id")),
    )
    op.create_table(
        "version_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("file_type", sa.String(length=32), nullable=False),
        sa.Column("descriptor_type", sa.String(length=16), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["tool_versions.id"],
            name=op.f("fk_version_files_version_id_tool_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_version_files")),
        sa.UniqueConstraint("version_id", "path", name=op.f("uq_version_files_version_id")),
    )
    op.create_table(
        "version_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=140), nullable=False),
        sa.Column("os", sa.String(length=40), nullable=True),
        sa.Column("architecture", sa.String(length=40), nullable=True),
        sa.Column("variant", sa.String(length=40), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("created", dockyard.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["tool_versions.id"],
            name=op.f("fk_version_images_version_id_tool_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_version_images")),
    )
    with op.batch_alter_table("version_images", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_version_images_version_id"), ["version_id"], unique=False
        )
    if not sqlite:
        op.create_foreign_key(
            op.f("fk_tools_default_version_id_tool_versions"),
            "tools",
            "tool_versions",
            ["default_version_id"],
            ["id"],
            ondelete="SET NULL",
        )
    for statement in SQLITE_SEARCH if sqlite else POSTGRESQL_SEARCH:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for name in ("tools_fts_update", "tools_fts_delete", "tools_fts_insert"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE tools_fts")
    else:
        op.execute("DROP INDEX ix_tools_search")
        op.execute("ALTER TABLE tools DROP COLUMN search_vector")
        op.drop_constraint(
            op.f("fk_tools_default_version_id_tool_versions"), "tools", type_="foreignkey"
        )
    with op.batch_alter_table("version_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_version_images_version_id"))

    op.drop_table("version_images")
    op.drop_table("version_files")
    op.drop_table("tool_versions")
    with op.batch_alter_table("tool_maintainers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tool_maintainers_user_id"))

    op.drop_table("tool_maintainers")
    with op.batch_alter_table("tools", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tools_updated_at"))
        batch_op.drop_index(batch_op.f("ix_tools_registry_id"))
        batch_op.drop_index("ix_tools_name_path")
    op.drop_index("uq_tools_path_lower", table_name="tools")
    op.drop_table("tools")
