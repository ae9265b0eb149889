"""Keeping a tool's versions in step with its registry (docs/specification.md section 5).

A refresh reads in three steps, so no database transaction is held open across the network:
a snapshot of what is stored, the registry conversation, and the writes that apply the result
(`dockyard.refresh.apply`, a batch of tags per transaction). A registry that fails, times out
or answers garbage changes nothing that is stored; a tag is removed only when the registry
listed the repository's tags successfully without it; a tag that moved keeps its previous
digest in the version's history; a problem with one tag is recorded on that version and the
other tags go on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from dockyard import metrics
from dockyard.catalog import contents, services
from dockyard.catalog.models import (
    Tool,
    ToolCredential,
    ToolVersion,
    VersionImage,
)
from dockyard.db import unit_of_work
from dockyard.db.types import utcnow
from dockyard.errors import NotFound, RegistryError, RegistryRateLimited
from dockyard.refresh.apply import apply_results, schedule_next
from dockyard.refresh.locks import ProcessLocks, ToolLocks
from dockyard.refresh.models import RefreshRun
from dockyard.refresh.results import RefreshReport, Snapshot, TagResult
from dockyard.registries.catalog import Catalog, Registry
from dockyard.registries.credentials import CredentialResolver, StoredCredential
from dockyard.registries.manifests import PlatformImage
from dockyard.registries.oci import RegistryClient
from dockyard.registries.repository import Repository, base_url_for
from dockyard.sources.services import SourceSync
from dockyard.workflows.models import Workflow

log = logging.getLogger("dockyard.refresh")

#: Tags of one tool read at once; the registry client's requests in flight per registry
#: (`Registry.max_in_flight`) bound what reaches the registry.
TAGS_AT_ONCE = 16
#: Tools of one registry host refreshed at once by one process, as a multiple of that
#: registry's requests in flight: each tool begins with requests one after another (token,
#: tag list), so several tools keep the registry's allowance used.
TOOLS_PER_SLOT = 4
#: Seconds one tool's refresh may take, registry conversation included, before it ends as
#: failed (each request has its own, shorter, deadline too).
REFRESH_DEADLINE = 900.0
#: Scheduled refreshes spread over +/- this share of the interval, so tools registered
#: together do not all come due together.
JITTER = 0.1
#: A tool being refreshed, or handed to the queue, is not handed out again for this long,
#: unless it finishes or is marked due meanwhile (a webhook during the refresh).
DUE_HOLD = timedelta(minutes=30)
Progress = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Refresher:
    """Refreshes tools with one registry client (so tokens and manifests are shared)."""

    sessions: sessionmaker[Session]
    catalog: Catalog
    client: RegistryClient
    credentials: CredentialResolver
    locks: ToolLocks = field(default_factory=ProcessLocks)
    interval: int = 21600
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    tags_at_once: int = TAGS_AT_ONCE
    #: Tools of one registry host refreshed at once (None: `TOOLS_PER_SLOT` per request the
    #: registry allows in flight).
    tools_per_host: int | None = None
    deadline: float = REFRESH_DEADLINE
    #: Reads descriptors and Dockerfiles of tools with a git source (None: never).
    sources: SourceSync | None = None
    _host_limits: dict[str, asyncio.Semaphore] = field(default_factory=dict, repr=False)

    async def refresh(
        self, tool_id: int, *, progress: Progress | None = None, trigger: str = "manual"
    ) -> RefreshReport:
        """Refresh one tool; a registry failure is reported and recorded, never raised.

        Raises `RefreshInProgress` when another thread or process is refreshing the tool, and
        `NotFound` when it no longer exists.
        """
        async with self.locks.hold(tool_id):
            started = time.perf_counter()
            snapshot = await to_thread.run_sync(self._begin, tool_id, trigger)
            registry = services.registry_for(self.catalog, snapshot.registry_id, snapshot.host)
            limit = self._host_limits.get(snapshot.host)
            if limit is None:
                tools = self.tools_per_host or TOOLS_PER_SLOT * registry.max_in_flight
                limit = self._host_limits[snapshot.host] = asyncio.Semaphore(tools)
            try:
                async with limit:
                    try:
                        async with asyncio.timeout(self.deadline):
                            report = await self._refresh(snapshot, registry, progress)
                    except TimeoutError:
                        report = await self._failed(
                            snapshot,
                            progress,
                            f"the refresh did not finish within {self.deadline:g} s (the "
                            "registry answers too slowly or not at all); nothing stored was "
                            "changed",
                        )
                if self.sources is not None:
                    report.sources = await self.sources.sync(self.sessions, tool_id)
            except Exception:
                reference = uuid.uuid4().hex[:12]
                log.exception(
                    "refresh failed unexpectedly",
                    extra={"tool_id": tool_id, "reference": reference},
                )
                report = await self._failed(
                    snapshot,
                    progress,
                    "the refresh failed unexpectedly; the operator can find why in the log "
                    f"under reference {reference}",
                )
            await to_thread.run_sync(self._finish_run, snapshot.run_id, report)
            _count(registry.id, report, time.perf_counter() - started)
            await _emit(progress, {"event": "done", "report": report.as_dict()})
            return report

    async def _failed(
        self,
        snapshot: Snapshot,
        progress: Progress | None,
        message: str,
        *,
        retry_after: float | None = None,
        report: RefreshReport | None = None,
    ) -> RefreshReport:
        """Record a refresh that read nothing usable: the tool's status and next try."""
        report = report or RefreshReport(tool_id=snapshot.tool_id, path=snapshot.path)
        report.status, report.message = "failed", message
        await to_thread.run_sync(self._record_failure, snapshot, message, retry_after)
        await _emit(progress, {"event": "failed", "message": message})
        return report

    async def _refresh(
        self, snapshot: Snapshot, registry: Registry, progress: Progress | None
    ) -> RefreshReport:
        report = RefreshReport(tool_id=snapshot.tool_id, path=snapshot.path)
        before = dict(self.client.stats)
        try:
            repository = Repository(
                host=snapshot.host,
                name=snapshot.repository,
                base_url=base_url_for(
                    snapshot.host, api_host=registry.api_host, insecure=registry.insecure
                ),
                credentials=await self.credentials.for_tool(
                    registry, snapshot.host, snapshot.credential
                ),
                max_in_flight=registry.max_in_flight,
            )
            tags = await self.client.list_tags(repository)
        except RegistryError as error:
            report.requests = _delta(before, self.client.stats)
            wait = error.retry_after if isinstance(error, RegistryRateLimited) else None
            return await self._failed(
                snapshot, progress, error.message, retry_after=wait, report=report
            )
        in_scope = _in_scope(tags, snapshot.tag_pattern)
        report.tags = len(in_scope)
        await _emit(progress, {"event": "tags", "total": len(in_scope)})
        results = await self._read_tags(
            repository, snapshot, in_scope, progress, head_first=registry.counts_pulls
        )
        changed = [r.tag for r in results if r.images is not None and r.error is None]
        pushed = await self.client.push_dates(repository, registry.id, changed)
        await to_thread.run_sync(
            apply_results,
            self.sessions,
            snapshot,
            self._next_refresh,
            in_scope,
            results,
            report,
            pushed,
        )
        report.requests = _delta(before, self.client.stats)
        return report

    # --- the three steps ----------------------------------------------------------------------

    def _begin(self, tool_id: int, trigger: str) -> Snapshot:
        """What is stored, read in the transaction that records the run and holds the tool
        back from schedulers while it runs."""
        hold = utcnow() + DUE_HOLD
        with unit_of_work(self.sessions) as session:
            tool = session.get(Tool, tool_id)
            if tool is None:
                raise NotFound(f"no tool with id {tool_id}")
            stored = session.scalar(select(ToolCredential).where(ToolCredential.tool_id == tool_id))
            # Rows rather than objects: the snapshot only reads them, and a refresh starts
            # with this for every tool.
            of_registry = (ToolVersion.tool_id == tool_id, ToolVersion.from_registry)
            images: dict[int, list[PlatformImage]] = {}
            for version_id, *values in session.execute(
                select(
                    VersionImage.version_id,
                    *(getattr(VersionImage, f) for f in contents.IMAGE_FIELDS),
                )
                .join(ToolVersion)
                .where(*of_registry)
                .order_by(VersionImage.id)
            ):
                image = PlatformImage(**dict(zip(contents.IMAGE_FIELDS, values, strict=True)))
                images.setdefault(version_id, []).append(image)
            known: dict[str, tuple[str | None, bool]] = {}
            trusted_images: dict[str, list[PlatformImage]] = {}
            for version_id, name, digest, problem in session.execute(
                select(
                    ToolVersion.id, ToolVersion.name, ToolVersion.digest, ToolVersion.problem
                ).where(*of_registry)
            ):
                # Stored images are a complete read of the digest unless the read had a problem.
                trusted = version_id in images and not problem
                known[name] = (digest, trusted)
                if trusted and digest:
                    trusted_images[digest] = images[version_id]
            run = RefreshRun(tool_id=tool_id, trigger=trigger, worker=self.worker)
            session.add(run)
            tool.next_refresh_at = hold
            session.flush()
            return Snapshot(
                tool_id=tool.id,
                path=tool.path,
                registry_id=tool.registry_id,
                host=tool.host,
                repository=tool.repository,
                tag_pattern=tool.tag_pattern,
                credential=StoredCredential(stored.kind, stored.username, stored.secret)
                if stored
                else None,
                known=known,
                images=trusted_images,
                run_id=run.id,
                hold=hold,
            )

    async def _read_tags(
        self,
        repository: Repository,
        snapshot: Snapshot,
        tags: list[str],
        progress: Progress | None,
        *,
        head_first: bool,
    ) -> list[TagResult]:
        limit = asyncio.Semaphore(self.tags_at_once)
        done = 0

        async def read(tag: str) -> TagResult:
            nonlocal done
            async with limit:
                result = await self._read_tag(repository, snapshot, tag, head_first)
            done += 1
            event: dict[str, Any] = {"event": "tag", "tag": tag, "done": done, "total": len(tags)}
            if result.error is not None:
                event["problem"] = result.error.message
            elif result.head is not None:
                event["digest"] = result.head.digest
                event["changed"] = result.images is not None
            await _emit(progress, event)
            return result

        return list(await asyncio.gather(*(read(tag) for tag in tags)))

    async def _read_tag(
        self, repository: Repository, snapshot: Snapshot, tag: str, head_first: bool
    ) -> TagResult:
        stored_digest, trusted = snapshot.known.get(tag, (None, False))
        try:
            if stored_digest is None and not head_first:
                # A tag never read before needs its manifest anyway: a HEAD would be wasted,
                # unless GETs count against a pull limit and the digest may be known already.
                head, images = await self.client.platform_images(repository, tag)
                return TagResult(tag=tag, head=head, images=images)
            head = await self.client.head_manifest(repository, tag)
            if head.digest == stored_digest and trusted:
                return TagResult(tag=tag, head=head)
            if head.digest in snapshot.images:
                # Another tag of the tool already points there: manifests are immutable.
                return TagResult(tag=tag, head=head, images=list(snapshot.images[head.digest]))
            head, images = await self.client.platform_images(repository, head.digest)
        except RegistryError as error:
            return TagResult(tag=tag, error=error)
        return TagResult(tag=tag, head=head, images=images)

    def _record_failure(self, snapshot: Snapshot, message: str, retry_after: float | None) -> None:
        now = utcnow()
        with unit_of_work(self.sessions) as session:
            tool = session.get(Tool, snapshot.tool_id)
            if tool is not None:
                tool.refresh_status = "failed"
                tool.refresh_message = message
                schedule_next(
                    tool,
                    snapshot.hold,
                    now + timedelta(seconds=retry_after)
                    if retry_after is not None
                    else self._next_refresh(now),
                )

    def _next_refresh(self, now: datetime) -> datetime:
        return next_refresh(now, self.interval)

    def _finish_run(self, run_id: int, report: RefreshReport) -> None:
        with unit_of_work(self.sessions) as session:
            run = session.get(RefreshRun, run_id)
            if run is not None:
                run.finished_at = utcnow()
                run.status = report.status
                run.summary = {
                    "tags": report.tags,
                    **{
                        key: len(getattr(report, key))
                        for key in ("added", "updated", "moved", "removed", "unchanged")
                    },
                    "problems": len(report.problems),
                    "message": report.message,
                    "requests": report.requests,
                }


def _count(registry: str, report: RefreshReport, seconds: float) -> None:
    """The refresh in this process's metrics."""
    metrics.REFRESHES.labels(registry, report.status).inc()
    metrics.REFRESH_DURATION.labels(registry, report.status).observe(seconds)
    metrics.REFRESH_TAGS_SEEN.labels(registry).inc(report.tags)
    for change in ("added", "updated", "moved", "removed"):
        if changed := len(getattr(report, change)):
            metrics.REFRESH_TAGS_CHANGED.labels(registry, change).inc(changed)


def next_refresh(now: datetime, interval: int) -> datetime:
    """When a scheduled refresh comes next: `interval` seconds on, give or take the jitter."""
    spread = interval * JITTER
    return now + timedelta(seconds=interval + random.uniform(-spread, spread))  # noqa: S311


def reclaim_runs(sessions: sessionmaker[Session], older_than: timedelta) -> int:
    """End as failed the runs still `running` after `older_than`: their process was killed
    (a live one ends every run by its deadline). Returns how many were ended."""
    now = utcnow()
    abandoned = (RefreshRun.status == "running", RefreshRun.started_at < now - older_than)
    with unit_of_work(sessions, write=False) as session:  # mostly there are none: no lock
        if session.scalar(select(RefreshRun.id).where(*abandoned).limit(1)) is None:
            return 0
    with unit_of_work(sessions) as session:
        stale = list(session.scalars(select(RefreshRun).where(*abandoned)))
        for run in stale:
            run.status = "failed"
            run.finished_at = now
            run.summary = {
                "message": f"abandoned: worker {run.worker} stopped before the refresh ended"
            }
        return len(stale)


#: What schedulers refresh: tools (from their registry) and workflows (from git).
Scheduled = type[Tool] | type[Workflow]


def due_ids(session: Session, model: Scheduled, now: datetime, limit: int) -> list[int]:
    """Tools (or workflows) whose scheduled refresh has come, the longest overdue first."""
    query = (
        select(model.id)
        .where(or_(model.next_refresh_at.is_(None), model.next_refresh_at <= now))
        .order_by(model.next_refresh_at.asc().nulls_first(), model.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def due_tool_ids(session: Session, now: datetime, limit: int) -> list[int]:
    """Tools whose scheduled refresh has come, the longest overdue first."""
    return due_ids(session, Tool, now, limit)


def _in_scope(tags: list[str], pattern: str | None) -> list[str]:
    valid = [tag for tag in tags if re.fullmatch(r"[\w][\w.-]{0,127}", tag, re.ASCII)]
    if pattern is None:
        return valid
    compiled = re.compile(pattern)
    return [tag for tag in valid if compiled.fullmatch(tag)]


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {
        key: after[key] - before.get(key, 0) for key in after if after[key] - before.get(key, 0)
    }


async def _emit(progress: Progress | None, event: dict[str, Any]) -> None:
    if progress is not None:
        await progress(event)
