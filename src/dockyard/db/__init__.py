"""The database: declarative base, engines for SQLite and PostgreSQL, migrations.

Alembic migrations are the only way the schema is made, in tests too. Services receive a
`Session`, flush, and never commit: the request, job or CLI command that owns the unit of
work commits it.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from dockyard.errors import DatabaseUnavailable
from dockyard.settings import database_url

MIGRATIONS = Path(__file__).parent / "migrations"
WRITE_OPTION = "dockyard_write"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every model; constraint names are fixed so migrations stay portable."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


#: SQLite connections kept open per process: as many as request threads (AnyIO's 40).
SQLITE_POOL = 40


def make_engine(url: str) -> Engine:
    """An engine for a `DOCKYARD_DATABASE_URL`, tuned for its backend."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database).expanduser())
        # A connection to a file is cheap, so beyond the pool more are opened, never waited
        # for: under more reads than the threads can run at once, requests wait for a thread
        # and answer late, and none fails after a pool timeout.
        in_memory = parsed.database in {None, "", ":memory:"}
        pooling = {} if in_memory else {"pool_size": SQLITE_POOL, "max_overflow": -1}
        engine = create_engine(parsed, connect_args={"timeout": 30}, **pooling)
        event.listen(engine, "connect", _tune_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _private_file(path: Path) -> None:
    """Create the database file readable by its owner only (SQLite gives its WAL and shared
    memory files the same mode), in a directory made private if it is new."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _tune_sqlite(dbapi_connection: Any, _record: object) -> None:
    # dockyard, not the sqlite3 module, decides when and how transactions begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _begin_sqlite(connection: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once with "database is
    # locked" when another writer got in between; units that write take the lock up front
    # (and wait for it), units that only read stay deferred and never block anyone.
    write = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (for building responses)."""
    return sessionmaker(engine, expire_on_commit=False)


#: SQLite has one writer at a time; threads of one process queue on this lock (and wake at
#: once) rather than in SQLite's busy handler, which sleeps in growing steps.
_sqlite_writers: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)


@contextmanager
def unit_of_work(sessions: sessionmaker[Session], *, write: bool = True) -> Iterator[Session]:
    """One transaction: committed when the block ends cleanly, rolled back otherwise.

    `write=False` marks a unit that only reads, which lets SQLite run it beside a writer.
    """
    engine = sessions.kw["bind"]
    serialize = write and engine.dialect.name == "sqlite"
    guard = _sqlite_writers[str(engine.url)] if serialize else nullcontext()
    with guard, sessions() as session:
        if write:
            session.connection(execution_options={WRITE_OPTION: True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def describe(engine: Engine) -> str:
    """The database URL with any password hidden, for messages."""
    return engine.url.render_as_string(hide_password=True)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest migration this code ships."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    with _connect(engine) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    config = _alembic_config()
    with _connect(engine) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()


def downgrade(engine: Engine, revision: str) -> None:
    """Revert migrations down to `revision` (`base` empties the schema)."""
    config = _alembic_config()
    with _connect(engine) as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
        connection.commit()


def ping(engine: Engine) -> None:
    """Raise `DatabaseUnavailable` unless the database answers a query."""
    with _connect(engine) as connection:
        connection.execute(text("SELECT 1"))


@contextmanager
def _connect(engine: Engine) -> Iterator[Any]:
    try:
        with engine.connect() as connection:
            yield connection
    except DBAPIError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        raise DatabaseUnavailable(f"database {describe(engine)} did not answer: {reason}") from None
    except SQLAlchemyError as error:
        raise DatabaseUnavailable(
            f"database {describe(engine)} cannot be used: {type(error).__name__}"
        ) from None
