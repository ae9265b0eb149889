"""Alembic environment: migrations run on the connection dockyard hands over."""

from __future__ import annotations

from alembic import context

import dockyard.models  # noqa: F401  (registers every model on the metadata)
from dockyard.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `dockyard db upgrade`, not the alembic command")


def _in_models(obj: object, name: str | None, kind: str, reflected: bool, other: object) -> bool:
    """Search structures are made per database by migration 0002, not by the models."""
    return not (name or "").startswith(
        ("tools_fts", "ix_tools_search", "search_vector", "procrastinate")
    )


context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    include_object=_in_models,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
