"""Opening the configured database for local administration commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.orm import Session

from dockyard import db
from dockyard.errors import DatabaseUnavailable
from dockyard.settings import Settings, load_settings


def ensure_schema(settings: Settings) -> None:
    """Migrate the embedded database; require an up-to-date schema elsewhere."""
    engine = db.make_engine(settings.database_url)
    try:
        if settings.embedded:
            db.upgrade(engine)
            return
        current, head = db.current_revision(engine), db.head_revision()
        if current != head:
            raise DatabaseUnavailable(
                f"database {db.describe(engine)} is at schema {current or 'none'}, this dockyard "
                f"needs {head}: run `dockyard db upgrade` first"
            )
    finally:
        engine.dispose()


@contextmanager
def local_session() -> Iterator[Session]:
    """A unit of work on the configured database, committed when the command succeeds."""
    settings = load_settings()
    ensure_schema(settings)
    engine = db.make_engine(settings.database_url)
    try:
        with db.unit_of_work(db.make_sessionmaker(engine)) as session:
            yield session
    finally:
        engine.dispose()


def echo_table(headers: list[str], rows: list[list[str]]) -> None:
    """Print rows as an aligned plain-text table."""
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)
    ]
    for row in [headers, *rows]:
        click.echo(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)
            ).rstrip()
        )
