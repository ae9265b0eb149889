"""Migrations are the only source of the schema, and they match the models on both backends."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from dockyard import db


def test_the_database_is_migrated_to_the_newest_revision(engine: Engine) -> None:
    assert db.current_revision(engine) == db.head_revision()


def test_models_and_migrations_describe_the_same_schema(engine: Engine) -> None:
    with engine.connect() as connection, warnings.catch_warnings():
        # SQLite cannot reflect expression indexes (lower(username)); Alembic says so and skips.
        warnings.filterwarnings(
            "ignore", message="autogenerate skipping metadata-specified expression"
        )
        warnings.filterwarnings(
            "ignore", message="Skipped unsupported reflection of expression-based"
        )
        include = _not_search_index
        if engine.dialect.name == "sqlite":
            include = _not_search_index_nor_added_foreign_key
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include}
        )
        differences = compare_metadata(context, db.Base.metadata)
    assert differences == []


#: Foreign keys added to an existing SQLite table by ADD COLUMN ... CONSTRAINT ... REFERENCES:
#: SQLAlchemy reflects neither their names nor their ON DELETE from a column's clause, so
#: `test_added_foreign_keys_hold_on_sqlite` reads them from SQLite itself.
ADDED_FOREIGN_KEYS = {
    ("tools", "organization_id"): ("organizations", "SET NULL"),
    ("workflows", "organization_id"): ("organizations", "SET NULL"),
}


def _not_search_index_nor_added_foreign_key(
    obj: object, name: str | None, kind: str, reflected: bool, compare_to: object
) -> bool:
    if kind == "foreign_key_constraint":
        columns = getattr(obj, "column_keys", None) or [c.name for c in obj.columns]  # type: ignore[attr-defined]
        table = obj.table.name  # type: ignore[attr-defined]
        if (table, *columns) in ADDED_FOREIGN_KEYS:
            return False
    return _not_search_index(obj, name, kind, reflected, compare_to)


def test_added_foreign_keys_hold_on_sqlite(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's foreign keys are reflected and compared above")
    with engine.connect() as connection:
        for (table, column), (referred, on_delete) in ADDED_FOREIGN_KEYS.items():
            keys = connection.exec_driver_sql(f"PRAGMA foreign_key_list({table})").all()
            found = {(row.table, row.on_delete) for row in keys if row[3] == column}
            assert found == {(referred, on_delete)}, (table, column, keys)


def _not_search_index(
    obj: object, name: str | None, kind: str, reflected: bool, compare_to: object
) -> bool:
    """Search indexes are made by migration per database and are not in the models."""
    return not (name or "").startswith(
        ("tools_fts", "ix_tools_search", "search_vector", "procrastinate")
    )


def test_migrations_upgrade_from_empty_and_downgrade_to_empty(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path}/fresh.db")
    try:
        assert db.current_revision(engine) is None
        db.upgrade(engine)
        assert {"users", "api_tokens", "tools", "tool_versions"} <= set(
            inspect(engine).get_table_names()
        )
        db.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_the_database_itself_refuses_usernames_differing_only_in_case(engine: Engine) -> None:
    insert = text(
        "INSERT INTO users (username, email, is_admin, is_active, created_at) "
        "VALUES (:username, :email, false, true, CURRENT_TIMESTAMP)"
    )
    with engine.begin() as connection:
        connection.execute(insert, {"username": "ada", "email": "ada@example.org"})
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert, {"username": "ADA", "email": "other@example.org"})
