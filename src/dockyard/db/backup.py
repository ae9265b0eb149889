"""Backups of the database, taken while dockyard serves, and restores of them.

SQLite (the embedded mode) is copied with SQLite's online backup API: one consistent copy of
the committed state, taken in a single step while other connections keep writing (in WAL
mode they are not held up). The copy is written next to its destination and renamed into
place only once it passes `PRAGMA integrity_check`, so a failed backup never leaves a
half-written file where a good one was.

PostgreSQL is dumped and restored by PostgreSQL's own `pg_dump` and `pg_restore` (custom
format), given the connection through libpq's environment so no password is on a command
line.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from dockyard.errors import ConfigurationError, InvalidInput
from dockyard.settings import database_url


@dataclass(frozen=True)
class Copy:
    """What a backup or restore wrote."""

    path: Path
    size: int
    revision: str | None
    #: The database as it was before a restore, kept beside it (SQLite).
    kept: Path | None = None


def backup(url: str, destination: Path) -> Copy:
    """Copy the database at `url` to `destination` (a file; never overwritten silently:
    an existing file is replaced only by a copy that passed its integrity check)."""
    if _is_sqlite(url):
        return _sqlite_backup(_sqlite_path(url), destination)
    return _pg_dump(url, destination)


def restore(url: str, source: Path) -> Copy:
    """Replace the database at `url` with the backup at `source`."""
    if not source.is_file():
        raise InvalidInput(f"{source} is not a file: give the path of a backup")
    if _is_sqlite(url):
        return _sqlite_restore(source, _sqlite_path(url))
    return _pg_restore(url, source)


# --- SQLite ---------------------------------------------------------------------------------


def _sqlite_backup(database: Path, destination: Path) -> Copy:
    if not database.is_file():
        raise ConfigurationError(f"there is no database at {database}: nothing to back up")
    if destination.is_dir():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        destination = destination / f"dockyard-{stamp}.db"
    if destination.resolve() == database.resolve():
        raise InvalidInput("the backup would overwrite the database itself: give another path")
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        _copy(database, partial)
        revision = _checked(partial)
        partial.chmod(0o600)
        partial.replace(destination)
    finally:
        partial.unlink(missing_ok=True)
    return Copy(destination, destination.stat().st_size, revision)


def _sqlite_restore(source: Path, database: Path) -> Copy:
    revision = _checked(source)
    kept = None
    if database.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = database.with_name(f"{database.name}.before-restore-{stamp}")
        _copy(database, kept)
    database.parent.mkdir(parents=True, exist_ok=True)
    # Into the live file through SQLite itself: connections that are open see the restored
    # database, never a file swapped under them.
    with _open(source, read_only=True) as origin, _open(database) as target:
        origin.backup(target)
    return Copy(database, database.stat().st_size, revision, kept)


def _copy(source: Path, destination: Path) -> None:
    destination.unlink(missing_ok=True)
    with _open(source, read_only=True) as origin, _open(destination) as target:
        origin.backup(target)  # every page in one step: one consistent snapshot


def _checked(path: Path) -> str | None:
    """The migration a copy is at, once SQLite finds it whole; `InvalidInput` otherwise."""
    try:
        with _open(path, read_only=True) as connection:
            verdict = connection.execute("PRAGMA integrity_check").fetchone()
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if verdict is None or verdict[0] != "ok":
                raise InvalidInput(f"{path} failed SQLite's integrity check: {verdict}")
            if "alembic_version" not in tables or "tools" not in tables:
                raise InvalidInput(f"{path} is a SQLite database, but not one of dockyard's")
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            return str(row[0]) if row else None
    except sqlite3.DatabaseError as error:
        raise InvalidInput(f"{path} is not a SQLite database ({error})") from None


class _open:
    """A sqlite3 connection that is closed on leaving (sqlite3's own only commits)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        uri = f"file:{path}?mode=ro" if read_only else f"file:{path}"
        self.connection = sqlite3.connect(uri, uri=True, timeout=30)

    def __enter__(self) -> sqlite3.Connection:
        return self.connection

    def __exit__(self, *_: object) -> None:
        self.connection.close()


def _is_sqlite(url: str) -> bool:
    return database_url(url).get_backend_name() == "sqlite"


def _sqlite_path(url: str) -> Path:
    name = make_url(url).database
    if not name or name == ":memory:":
        raise ConfigurationError("an in-memory SQLite database has nothing to back up")
    return Path(name).expanduser()


# --- PostgreSQL ----------------------------------------------------------------------------


def _pg_dump(url: str, destination: Path) -> Copy:
    if destination.is_dir():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        destination = destination / f"dockyard-{stamp}.dump"
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        _pg_tool("pg_dump", url, ["--format=custom", "--no-owner", f"--file={partial}"])
        partial.replace(destination)
    finally:
        partial.unlink(missing_ok=True)
    return Copy(destination, destination.stat().st_size, None)


def _pg_restore(url: str, source: Path) -> Copy:
    _pg_tool(
        "pg_restore",
        url,
        ["--clean", "--if-exists", "--no-owner", "--single-transaction", str(source)],
    )
    return Copy(source, source.stat().st_size, None)


def _pg_tool(program: str, url: str, arguments: list[str]) -> None:
    """Run PostgreSQL's `program` against the database, the connection in libpq's variables."""
    found = shutil.which(program)
    if found is None:
        raise ConfigurationError(
            f"{program} is not installed: install PostgreSQL's client tools (Debian: "
            "postgresql-client), of the server's major version or newer"
        )
    parsed = make_url(url)
    env = dict(os.environ)
    for variable, value in {
        "PGHOST": parsed.host,
        "PGPORT": str(parsed.port) if parsed.port else None,
        "PGUSER": parsed.username,
        "PGPASSWORD": parsed.password,
        "PGDATABASE": parsed.database,
    }.items():
        if value:
            env[variable] = str(value)
    database = ["--dbname", parsed.database] if program == "pg_restore" and parsed.database else []
    done = subprocess.run(
        [found, *database, *arguments], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ConfigurationError(f"{program} failed: {reason}")
