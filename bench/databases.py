"""Fresh databases for the benchmarks: a SQLite file in a directory, or a new PostgreSQL
database on a server, dropped afterwards."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from dockyard import db


@contextmanager
def sqlite_engine(directory: Path | None = None) -> Iterator[Engine]:
    """A SQLite database in `directory` (a temporary one when None)."""
    with tempfile.TemporaryDirectory(dir=directory) as where:
        engine = db.make_engine(f"sqlite:///{where}/bench.db")
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def postgresql_engine(server_url: str) -> Iterator[Engine]:
    """A database of its own on the PostgreSQL server at `server_url`."""
    server = make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"dockyard_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = db.make_engine(server.set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
