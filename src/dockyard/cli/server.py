"""`dockyard serve`, `dockyard worker` and `dockyard db ...`."""

from __future__ import annotations

import click

from dockyard import __version__, db
from dockyard.catalog.demo import load_demo
from dockyard.cli.local import ensure_schema
from dockyard.errors import ConfigurationError
from dockyard.registries.catalog import Catalog
from dockyard.registries.config import catalog_for
from dockyard.settings import Settings, load_settings

log_level_option = click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)


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
@log_level_option
@click.option("--demo", is_flag=True, help="Load a small sample catalog when there are no tools.")
@click.option(
    "--loop",
    type=click.Choice(["asyncio", "uvloop"]),
    default="asyncio",
    show_default=True,
    help="The event loop (asyncio keeps latency even under load; see docs/benchmarks.md).",
)
def serve(host: str, port: int, workers: int, log_level: str, demo: bool, loop: str) -> None:
    """Start the web app, REST API and TRS (migrates the embedded database itself)."""
    import uvicorn

    settings = load_settings()
    catalog = catalog_for(settings)
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
        # uvloop answered 1% of requests 0.6-1 s late when the process was busy (64
        # connections, uncached reads); asyncio's loop kept p99 near 55 ms at the same rate.
        loop=loop,
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


@click.command()
@click.option(
    "--concurrency",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Refreshes at once.",
)
@click.option(
    "--stalled-after",
    default=60.0,
    show_default=True,
    type=click.FloatRange(5, 3600),
    help="Seconds without a heartbeat after which another worker retries a worker's jobs.",
)
@log_level_option
def worker(concurrency: int, stalled_after: float, log_level: str) -> None:
    """Refresh tools from the shared job queue (PostgreSQL deployments; run any number)."""
    import asyncio
    import logging

    settings = load_settings()
    if settings.embedded:
        raise ConfigurationError(
            "dockyard worker needs PostgreSQL (DOCKYARD_DATABASE_URL=postgresql://...); in the "
            "embedded mode `dockyard serve` refreshes tools in-process"
        )
    catalog = catalog_for(settings)
    ensure_schema(settings)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(_work(settings, catalog, concurrency, stalled_after))


async def _work(
    settings: Settings, catalog: Catalog, concurrency: int, stalled_after: float
) -> None:
    import asyncio
    import logging

    from dockyard.access.mail import mailer_for, sender_address
    from dockyard.access.tasks import run_mail_sender
    from dockyard.refresh.tasks import (
        build_queue,
        open_refresher,
        open_workflow_refresher,
        retry_stalled,
    )

    engine = db.make_engine(settings.database_url)
    sessions = db.make_sessionmaker(engine)
    queue = build_queue(settings, sessions)
    async with (
        queue.app.open_async(),
        open_refresher(settings, sessions, catalog) as refresher,
        open_workflow_refresher(settings, sessions, catalog) as workflow_refresher,
    ):
        click.echo(
            f"dockyard worker {refresher.worker} on {db.describe(engine)} "
            f"(concurrency {concurrency})",
            err=True,
        )

        async def watch_stalled() -> None:
            while True:
                try:
                    await retry_stalled(queue.app, stalled_after)
                except Exception:
                    logging.getLogger("dockyard.worker").exception("retrying stalled jobs failed")
                await asyncio.sleep(max(2.0, stalled_after / 3))

        watcher = asyncio.create_task(watch_stalled())
        stop_mail = asyncio.Event()
        mail = asyncio.create_task(
            run_mail_sender(
                sessions,
                mailer_for(settings),
                sender_address(settings),
                stop_mail,
            )
        )
        try:
            await queue.app.run_worker_async(
                queues=["refresh", "schedule"],
                concurrency=concurrency,
                name=refresher.worker,
                additional_context={
                    "refresher": refresher,
                    "workflow_refresher": workflow_refresher,
                },
                update_heartbeat_interval=max(1.0, stalled_after / 6),
                stalled_worker_timeout=stalled_after,
            )
        finally:
            watcher.cancel()
            stop_mail.set()
            await mail
            engine.dispose()
