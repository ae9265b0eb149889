"""`dockyard serve`, `dockyard worker` and `dockyard db ...`."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import click
from sqlalchemy import Engine

from dockyard import __version__, db, logs, metrics
from dockyard.catalog.demo import load_demo
from dockyard.cli.local import ensure_schema
from dockyard.errors import ConfigurationError, DockyardError
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
    settings = load_settings()
    logs.configure(settings.log_format, log_level)
    catalog = catalog_for(settings)
    ensure_schema(settings)
    engine = db.make_engine(settings.database_url)
    location = db.describe(engine)
    if demo:
        with db.unit_of_work(db.make_sessionmaker(engine)) as session:
            added = load_demo(session, catalog)
        message = f"loaded {added} demo tools" if added else "the catalog has tools: no demo loaded"
        _say(settings, f"dockyard: {message}")
    engine.dispose()
    if settings.embedded and workers > 1:
        _say(
            settings,
            "dockyard: note: several workers share one SQLite file; use PostgreSQL for "
            "multi-process deployments",
        )
    _say(settings, f"dockyard {__version__} on http://{host}:{port} (database {location})")
    shared = None
    if workers > 1 and not metrics.multiprocess_dir():
        # The web processes add their figures up in files here (read at import: set first).
        shared = tempfile.mkdtemp(prefix="dockyard-metrics-")
        os.environ[metrics.MULTIPROCESS_ENV] = shared
    if settings.metrics_port is not None:
        _serve_metrics(settings)
    try:
        _run_uvicorn(host, port, workers, log_level, loop, settings)
    finally:
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)


def _run_uvicorn(
    host: str, port: int, workers: int, log_level: str, loop: str, settings: Settings
) -> None:
    import uvicorn

    uvicorn.run(
        "dockyard.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=logs.config(settings.log_format, log_level),
        server_header=False,
        proxy_headers=True,
        # uvloop answered 1% of requests 0.6-1 s late when the process was busy (64
        # connections, uncached reads); asyncio's loop kept p99 near 55 ms at the same rate.
        loop=loop,
    )


def _say(settings: Settings, message: str) -> None:
    """A line for the operator: on the console, or in the JSON format one more log record."""
    if settings.log_format == "json":
        logging.getLogger("dockyard").info(message)
    else:
        click.echo(message, err=True)


def _serve_metrics(settings: Settings) -> None:
    """`/metrics` on a port of its own, from a thread of this process."""
    from prometheus_client import start_http_server

    from dockyard.health import DatabaseFigures

    engine = db.make_engine(settings.database_url)
    registry = metrics.registry_of([DatabaseFigures(engine)])
    assert settings.metrics_port is not None
    try:
        start_http_server(settings.metrics_port, settings.metrics_host, registry=registry)
    except OSError as error:
        raise ConfigurationError(
            f"DOCKYARD_METRICS_PORT: cannot listen on {settings.metrics_host}:"
            f"{settings.metrics_port} ({error.strerror}); choose a free port"
        ) from None
    _say(
        settings,
        f"dockyard: metrics on http://{settings.metrics_host}:{settings.metrics_port}/metrics",
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
        if settings.admin_username:
            click.echo(_first_admin(settings, engine))
    finally:
        engine.dispose()


def _first_admin(settings: Settings, engine: Engine) -> str:
    """Create `DOCKYARD_ADMIN_USERNAME` as an administrator unless that user exists."""
    from dockyard.accounts import services as accounts

    username = settings.admin_username
    assert username is not None
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        if accounts.find_user(session, username) is not None:
            return f"user {username} exists: DOCKYARD_ADMIN_* changed nothing"
        if not settings.admin_email:
            raise ConfigurationError("DOCKYARD_ADMIN_USERNAME is set: set DOCKYARD_ADMIN_EMAIL too")
        password = settings.admin_password.get_secret_value() if settings.admin_password else None
        if settings.admin_password_file is not None:
            try:
                password = settings.admin_password_file.read_text().strip()
            except OSError as error:
                raise ConfigurationError(
                    f"DOCKYARD_ADMIN_PASSWORD_FILE: cannot read {settings.admin_password_file} "
                    f"({error.strerror})"
                ) from None
        if not password:
            raise ConfigurationError(
                "DOCKYARD_ADMIN_USERNAME is set: give the password in DOCKYARD_ADMIN_PASSWORD "
                "or DOCKYARD_ADMIN_PASSWORD_FILE"
            )
        accounts.create_user(
            session,
            username=username,
            email=settings.admin_email,
            password=password,
            is_admin=True,
        )
    return f"created administrator {username} <{settings.admin_email}>"


@db_group.command("wait")
@click.option(
    "--timeout",
    default=300.0,
    show_default=True,
    type=click.FloatRange(1, 86400),
    help="Seconds to wait before giving up (exit status 1).",
)
def wait(timeout: float) -> None:
    """Wait until the database answers and is migrated to this release (an init container
    runs this before the web and worker processes start)."""
    import time

    settings = load_settings(make_secret_key=False)
    engine = db.make_engine(settings.database_url)
    head = db.head_revision()
    deadline = time.monotonic() + timeout
    last = ""
    try:
        while True:
            try:
                current = db.current_revision(engine)
                if current == head:
                    click.echo(f"database {db.describe(engine)} is at {head}")
                    return
                state = f"is at migration {current or 'none (empty)'}, waiting for {head}"
            except DockyardError as error:
                state = f"does not answer yet: {error.message}"
            if state != last:
                click.echo(f"database {state}", err=True)
                last = state
            if time.monotonic() > deadline:
                raise ConfigurationError(
                    f"the database {state} after {timeout:g} s: is the migration "
                    "(`dockyard db upgrade`) running?"
                )
            time.sleep(2)
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


@db_group.command("backup")
@click.argument("path", type=click.Path(path_type=Path))
def backup_command(path: Path) -> None:
    """Copy the database to PATH (a file, or a directory for a dated file), while serving.

    SQLite: one consistent copy through SQLite's online backup API, checked before it
    replaces anything. PostgreSQL: pg_dump's custom format (restore with `db restore`).
    """
    from dockyard.db.backup import backup

    settings = load_settings(make_secret_key=False)
    copy = backup(settings.database_url, path)
    at = f", at migration {copy.revision}" if copy.revision else ""
    click.echo(f"backed up the database to {copy.path} ({copy.size:,} bytes{at})")
    if settings.embedded:
        click.echo(
            f"keep the secret key with it ({settings.data_dir / 'secret_key'}): it decrypts "
            "the registry credentials stored in the database"
        )


@db_group.command("restore")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--yes", is_flag=True, help="Replace the database without asking.")
def restore_command(path: Path, yes: bool) -> None:
    """Replace the database with the backup at PATH (stop every dockyard process first).

    SQLite: the database as it was is kept beside it (`dockyard.db.before-restore-…`).
    """
    from dockyard.db.backup import restore

    settings = load_settings(make_secret_key=False)
    engine = db.make_engine(settings.database_url)
    where = db.describe(engine)
    engine.dispose()
    if not yes:
        click.confirm(f"replace everything in {where} with {path}?", abort=True, err=True)
    copy = restore(settings.database_url, path)
    click.echo(f"restored {where} from {path}")
    if copy.kept is not None:
        click.echo(f"the database as it was is kept in {copy.kept}")
    if copy.revision and copy.revision != db.head_revision():
        click.echo(
            f"the backup is at migration {copy.revision}; run `dockyard db upgrade` before "
            "starting dockyard"
        )


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
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve this worker's /metrics on this port (default: DOCKYARD_METRICS_PORT, if set).",
)
@log_level_option
def worker(
    concurrency: int, stalled_after: float, metrics_port: int | None, log_level: str
) -> None:
    """Refresh tools from the shared job queue (PostgreSQL deployments; run any number)."""
    import asyncio

    settings = load_settings()
    if metrics_port is not None:
        settings = settings.model_copy(update={"metrics_port": metrics_port})
    if settings.embedded:
        raise ConfigurationError(
            "dockyard worker needs PostgreSQL (DOCKYARD_DATABASE_URL=postgresql://...); in the "
            "embedded mode `dockyard serve` refreshes tools in-process"
        )
    catalog = catalog_for(settings)
    ensure_schema(settings)
    logs.configure(settings.log_format, log_level)
    if settings.metrics_port is not None:
        _serve_metrics(settings)
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
        _say(
            settings,
            f"dockyard worker {refresher.worker} on {db.describe(engine)} "
            f"(concurrency {concurrency})",
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
