"""When refreshes run: on demand, on a schedule, from webhooks; in-process or in workers.

The embedded mode (SQLite, one process) runs a small scheduler loop inside `dockyard serve`.
With PostgreSQL, any number of `dockyard worker` processes share the work through
procrastinate's job queue: a periodic job defers refresh jobs for the tools that are due,
each with a queueing lock (never queued twice) and a lock (never run twice at once); the
refresher's advisory lock covers refreshes started from the API as well. A worker that dies
leaves its job behind; the others retry jobs whose worker stopped sending heartbeats.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from dockyard import logs
from dockyard.catalog.models import Tool
from dockyard.db import unit_of_work
from dockyard.db.types import utcnow
from dockyard.egress import HostGuard
from dockyard.errors import DockyardError, NotFound
from dockyard.refresh.locks import WORKFLOW_LOCK_SPACE, RefreshInProgress, locks_for
from dockyard.refresh.services import (
    DUE_HOLD,
    Refresher,
    Scheduled,
    due_ids,
    due_tool_ids,
    reclaim_runs,
)
from dockyard.refresh.workflows import (
    WorkflowRefresher,
    due_workflow_ids,
    refresh_workflow_quietly,
)
from dockyard.registries.catalog import Catalog, Source
from dockyard.registries.credentials import CredentialResolver, secret_box
from dockyard.registries.oci import RegistryClient
from dockyard.settings import Settings, libpq_conninfo
from dockyard.sources.git import GitReader
from dockyard.sources.services import SourceSync
from dockyard.workflows.models import Workflow

log = logging.getLogger("dockyard.refresh")

#: How often the embedded scheduler looks for due tools (webhooks mark tools due at once).
EMBEDDED_POLL_SECONDS = 10.0
#: Refreshes the embedded scheduler has started and not seen end, at most (each registry's
#: own limits decide how many of them talk to it at once).
EMBEDDED_RUNNING = 256
#: Tools the scheduler hands out per round.
SCHEDULE_BATCH = 500


def operator_host_check(catalog: Catalog, *, allow_private: bool) -> HostGuard:
    """A guard that also trusts every host the operator's registries file names."""

    def trusted(host: str) -> bool:
        try:
            return catalog.match(host).source is Source.OPERATOR
        except DockyardError:
            return False

    return HostGuard(allow_private=allow_private, is_trusted=trusted)


@asynccontextmanager
async def _registry_client(
    settings: Settings, catalog: Catalog
) -> AsyncIterator[tuple[RegistryClient, CredentialResolver]]:
    """A registry client that trusts the operator's registries, and the credentials to use."""
    guard = operator_host_check(catalog, allow_private=settings.allow_private_network_registries)
    resolver = CredentialResolver(environ=settings.environ, box=secret_box(settings))
    async with RegistryClient(guard=guard) as client:
        yield client, resolver


@asynccontextmanager
async def open_refresher(
    settings: Settings, sessions: sessionmaker[Session], catalog: Catalog
) -> AsyncIterator[Refresher]:
    """A refresher with its own registry client, closed when the block ends."""
    engine: Engine = sessions.kw["bind"]
    async with _registry_client(settings, catalog) as (client, resolver):
        yield Refresher(
            sessions=sessions,
            catalog=catalog,
            client=client,
            credentials=resolver,
            locks=locks_for(engine),
            interval=settings.refresh_interval,
            deadline=settings.refresh_deadline,
            sources=SourceSync(
                settings.data_dir / "git-cache",
                allow_private=settings.allow_private_network_registries,
            ),
        )


@asynccontextmanager
async def open_workflow_refresher(
    settings: Settings, sessions: sessionmaker[Session], catalog: Catalog
) -> AsyncIterator[WorkflowRefresher]:
    """A workflow refresher with its own registry client, closed when the block ends."""
    engine: Engine = sessions.kw["bind"]
    allow_private = settings.allow_private_network_registries
    async with _registry_client(settings, catalog) as (client, resolver):
        yield WorkflowRefresher(
            sessions=sessions,
            catalog=catalog,
            client=client,
            credentials=resolver,
            reader=GitReader(settings.data_dir / "git-cache", allow_file_urls=allow_private),
            guard=HostGuard(allow_private=allow_private),
            locks=locks_for(engine, WORKFLOW_LOCK_SPACE),
            interval=settings.refresh_interval,
        )


def mark_due(sessions: sessionmaker[Session], tool_id: int) -> None:
    """Ask for a refresh as soon as a scheduler gets to it (webhooks use this)."""
    with unit_of_work(sessions) as session:
        tool = session.get(Tool, tool_id)
        if tool is not None:
            tool.next_refresh_at = utcnow()


async def refresh_quietly(refresher: Refresher, tool_id: int, trigger: str) -> None:
    """Refresh a tool from a scheduler, logging instead of raising."""
    try:
        report = await refresher.refresh(tool_id, trigger=trigger)
    except (RefreshInProgress, NotFound):
        return
    except DockyardError as error:
        log.warning("refresh failed", extra={"tool_id": tool_id, "error": error.message})
        return
    except Exception:
        log.exception("refresh failed unexpectedly", extra={"tool_id": tool_id})
        return
    log.info(
        "refreshed %s: %s",
        report.path,
        report.status,
        extra={"tool_id": tool_id, "trigger": trigger, "tags": report.tags},
    )


async def run_embedded_scheduler(
    settings: Settings,
    sessions: sessionmaker[Session],
    catalog: Catalog,
    stop: asyncio.Event,
    *,
    poll: float = EMBEDDED_POLL_SECONDS,
) -> None:
    """Refresh due tools inside this process until `stop` is set.

    Each due tool's refresh is a task of its own: the loop never waits for one, so a tool
    whose registry never answers holds only itself back (until its deadline), and the
    others are refreshed when they come due. The refresher's limits per registry say how
    many run at once.
    """
    running: dict[int, asyncio.Task[None]] = {}
    flows: dict[int, asyncio.Task[None]] = {}
    stale = timedelta(seconds=2 * settings.refresh_deadline)
    reclaimed_at = -math.inf
    async with (
        open_refresher(settings, sessions, catalog) as refresher,
        open_workflow_refresher(settings, sessions, catalog) as workflows,
    ):
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() - reclaimed_at >= settings.refresh_deadline:
                        await to_thread.run_sync(reclaim_runs, sessions, stale)
                        reclaimed_at = time.monotonic()
                    room = EMBEDDED_RUNNING - len(running)
                    due = await to_thread.run_sync(_due, sessions, min(SCHEDULE_BATCH, room))
                    for tool_id in due:
                        if tool_id not in running:
                            running[tool_id] = _spawn(refresher, tool_id, running)
                    room = EMBEDDED_RUNNING - len(flows)
                    due = await to_thread.run_sync(
                        _due_workflows, sessions, min(SCHEDULE_BATCH, room)
                    )
                    for workflow_id in due:
                        if workflow_id not in flows:
                            flows[workflow_id] = _spawn_workflow(workflows, workflow_id, flows)
                except Exception:
                    log.exception("the embedded refresh scheduler failed; it tries again")
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=poll)
        finally:
            tasks = [*running.values(), *flows.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _spawn(
    refresher: Refresher, tool_id: int, running: dict[int, asyncio.Task[None]]
) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(
        refresh_quietly(refresher, tool_id, "schedule"), name=f"refresh tool {tool_id}"
    )
    task.add_done_callback(lambda _: running.pop(tool_id, None))
    return task


def _spawn_workflow(
    refresher: WorkflowRefresher, workflow_id: int, running: dict[int, asyncio.Task[None]]
) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(
        refresh_workflow_quietly(refresher, workflow_id, "schedule"),
        name=f"refresh workflow {workflow_id}",
    )
    task.add_done_callback(lambda _: running.pop(workflow_id, None))
    return task


def _due_workflows(sessions: sessionmaker[Session], limit: int) -> list[int]:
    with unit_of_work(sessions, write=False) as session:
        return due_workflow_ids(session, utcnow(), limit)


def _due(sessions: sessionmaker[Session], limit: int) -> list[int]:
    with unit_of_work(sessions, write=False) as session:
        return due_tool_ids(session, utcnow(), limit)


def claim_due(sessions: sessionmaker[Session], limit: int, model: Scheduled = Tool) -> list[int]:
    """Due tools (or workflows), pushed forward so the next scheduling round does not hand
    them out again."""
    now = utcnow()
    with unit_of_work(sessions) as session:
        due = due_ids(session, model, now, limit)
        if due:
            session.execute(
                update(model).where(model.id.in_(due)).values(next_refresh_at=now + DUE_HOLD)
            )
        return due


# --- the PostgreSQL job queue -------------------------------------------------------------------


@dataclass
class RefreshQueue:
    """The procrastinate app and dockyard's refresh job on it."""

    app: Any
    refresh_job: Any
    workflow_job: Any = None
    _open: bool = field(default=False, repr=False)
    _opening: asyncio.Lock | None = field(default=None, repr=False)

    async def open_once(self) -> None:
        """Connect to the queue on first use (a web process that never queues a job never
        connects, and starts even while the database is away)."""
        if self._open:
            return
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if not self._open:
                await self.app.open_async()
                self._open = True

    async def close(self) -> None:
        """Disconnect, if `open_once` connected."""
        if self._open:
            await self.app.close_async()
            self._open = False

    async def enqueue_workflow(self, workflow_id: int, trigger: str) -> bool:
        """Queue a refresh of the workflow; False when one is already waiting."""
        from procrastinate.exceptions import AlreadyEnqueued

        try:
            await self.workflow_job.configure(
                lock=f"workflow-{workflow_id}", queueing_lock=f"workflow-{workflow_id}"
            ).defer_async(workflow_id=workflow_id, trigger=trigger)
        except AlreadyEnqueued:
            return False
        return True

    async def enqueue(self, tool_id: int, trigger: str) -> bool:
        """Queue a refresh of the tool; False when one is already waiting."""
        from procrastinate.exceptions import AlreadyEnqueued

        try:
            await self.refresh_job.configure(
                lock=f"tool-{tool_id}", queueing_lock=f"tool-{tool_id}"
            ).defer_async(tool_id=tool_id, trigger=trigger)
        except AlreadyEnqueued:
            return False
        return True


def build_queue(settings: Settings, sessions: sessionmaker[Session]) -> RefreshQueue:
    """The procrastinate app with dockyard's jobs: refresh, and the periodic scheduler."""
    from procrastinate import App, PsycopgConnector, RetryStrategy

    app = App(connector=PsycopgConnector(conninfo=libpq_conninfo(settings.database_url)))

    @app.task(
        name="dockyard.refresh",
        queue="refresh",
        pass_context=True,
        retry=RetryStrategy(max_attempts=3, wait=30),
    )
    async def refresh_job(context: Any, tool_id: int, trigger: str = "schedule") -> None:
        refresher: Refresher = context.additional_context["refresher"]
        with logs.in_job(context.job.id):
            await refresh_quietly(refresher, tool_id, trigger)

    @app.task(
        name="dockyard.refresh_workflow",
        queue="refresh",
        pass_context=True,
        retry=RetryStrategy(max_attempts=3, wait=30),
    )
    async def workflow_job(context: Any, workflow_id: int, trigger: str = "schedule") -> None:
        refresher: WorkflowRefresher = context.additional_context["workflow_refresher"]
        with logs.in_job(context.job.id):
            await refresh_workflow_quietly(refresher, workflow_id, trigger)

    queue = RefreshQueue(app=app, refresh_job=refresh_job, workflow_job=workflow_job)

    @app.periodic(cron="* * * * *", periodic_id="schedule")
    @app.task(name="dockyard.schedule", queue="schedule", queueing_lock="dockyard-schedule")
    async def schedule_job(timestamp: int) -> None:
        stale = timedelta(seconds=2 * settings.refresh_deadline)
        await to_thread.run_sync(reclaim_runs, sessions, stale)
        due = await to_thread.run_sync(claim_due, sessions, SCHEDULE_BATCH)
        queued = [tool_id for tool_id in due if await queue.enqueue(tool_id, "schedule")]
        flows = await to_thread.run_sync(claim_due, sessions, SCHEDULE_BATCH, Workflow)
        queued += [w for w in flows if await queue.enqueue_workflow(w, "schedule")]
        if queued:
            log.info("scheduled %d refreshes", len(queued))

    return queue


async def retry_stalled(app: Any, stalled_after: float) -> int:
    """Put jobs of workers that stopped sending heartbeats back in the queue.

    When the scheduler has meanwhile queued another refresh of the same tool, the stalled
    job is closed as failed instead, which frees the tool's lock for the queued one.
    """
    from procrastinate.exceptions import UniqueViolation
    from procrastinate.jobs import Status

    retried = 0
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after):
        try:
            await app.job_manager.retry_job_by_id_async(job.id, retry_at=utcnow())
        except UniqueViolation:
            await app.job_manager.finish_job_by_id_async(
                job.id, status=Status.FAILED, delete_job=False
            )
        retried += 1
    if retried:
        log.warning("retried %d stalled refresh jobs", retried)
    return retried
