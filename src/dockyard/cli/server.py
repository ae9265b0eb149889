"""`dockyard serve` and `dockyard db ...`."""

from __future__ import annotations

import click

from dockyard import __version__, db
from dockyard.cli.local import ensure_schema
from dockyard.registries.config import load_catalog
from dockyard.settings import load_settings
from dockyard.tools.demo import load_demo


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Web processes (PostgreSQL deployments).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.option("--demo", is_flag=True, help="Load a small sample catalog when there are no tools.")
def serve(host: str, port: int, workers: int, log_level: str, demo: bool) -> None:
    """Start the web app, REST API and TRS (migrates the embedded database itself)."""
    import uvicorn

    settings = load_settings()
    catalog = load_catalog(
        settings.registries_file,
        environ=settings.environ,
        generic_enabled=settings.allow_generic_registry,
    )
    ensure_schema(settings)
    engine = db.make_engine(settings.database_url)
    location = db.describe(engine)
    if demo:
        with db.unit_of_work(db.make_sessionmaker(engine)) as session:
            added = load_demo(session, catalog)
        message = f"loaded {added} demo tools" if added else "the catalog has tools: no demo loaded"
        click.echo(f"dockyard: {message}", err=True)
    engine.dispose()
    if settings.embedded and workers > 1:
        click.echo(
            "dockyard: note: several workers share one SQLite file; use PostgreSQL for "
            "multi-process deployments",
            err=True,
        )
    click.echo(f"dockyard {__version__} on http://{host}:{port} (database {location})", err=True)
    uvicorn.run(
        "dockyard.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        server_header=False,
        proxy_headers=True,
    )


@click.group("db")
def db_group() -> None:
    """Database schema management."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target migration.")
def upgrade(revision: str) -> None:
    """Apply migrations to the configured database."""
    settings = load_settings(make_secret_key=False)
    engine = db.make_engine(settings.database_url)
    try:
        before = db.current_revision(engine)
        db.upgrade(engine, revision)
        after = db.current_revision(engine)
        if before == after:
            click.echo(f"database {db.describe(engine)} is already at {after}")
        else:
            click.echo(
                f"database {db.describe(engine)} upgraded from {before or 'empty'} to {after}"
            )
    finally:
        engine.dispose()


@db_group.command("current")
def current() -> None:
    """Print the migration the configured database is at, and the newest one."""
    settings = load_settings(make_secret_key=False)
    engine = db.make_engine(settings.database_url)
    try:
        click.echo(f"current: {db.current_revision(engine) or 'empty'}")
        click.echo(f"head:    {db.head_revision()}")
    finally:
        engine.dispose()
