"""Keeping a tool's versions in step with its registry (docs/specification.md section 5).

A refresh reads in three steps, so no database transaction is held open across the network:
a snapshot of what is stored, the registry conversation, and one write that applies the
result. A registry that fails, times out or answers garbage changes nothing that is stored;
a tag is removed only when the registry listed the repository's tags successfully without
it; a tag that moved keeps its previous digest in the version's history; a problem with one
tag is recorded on that version and the other tags go on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from dockyard.catalog import services
from dockyard.catalog.models import (
    DigestChange,
    Tool,
    ToolCredential,
    ToolVersion,
    VersionImage,
)
from dockyard.db import unit_of_work
from dockyard.db.types import utcnow
from dockyard.errors import NotFound, RegistryError, RegistryRateLimited
from dockyard.refresh.locks import ProcessLocks, ToolLocks
from dockyard.refresh.models import RefreshRun
from dockyard.registries.catalog import Catalog, Registry
from dockyard.registries.credentials import CredentialResolver, StoredCredential
from dockyard.registries.oci import ManifestHead, PlatformImage, RegistryClient
from dockyard.registries.repository import Repository, base_url_for
from dockyard.sources.services import SourceSync

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
#: Tags whose results are written in one transaction. A refresh of thousands of tags then
#: holds SQLite's write lock, and the interpreter building its rows, a moment at a time, so
#: reads and other tools' writes keep going while it writes.
APPLY_BATCH = 200

Progress = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class _Snapshot:
    tool_id: int
    path: str
    registry_id: str
    host: str
    repository: str
    tag_pattern: str | None
    credential: StoredCredential | None
    #: tag -> (digest, whether the stored images can be trusted as they are)
    known: dict[str, tuple[str | None, bool]]
    #: digest -> the trusted images a refresh stored for it (under any tag of the tool; never
    #: those of versions entered by hand)
    images: dict[str, list[PlatformImage]]
    #: The run this refresh records itself in.
    run_id: int
    #: The `next_refresh_at` the run set to hold the tool back from schedulers.
    hold: datetime


@dataclass
class _TagResult:
    tag: str
    head: ManifestHead | None = None
    images: list[PlatformImage] | None = None
    error: RegistryError | None = None


@dataclass
class RefreshReport:
    """What a refresh found and changed."""

    tool_id: int
    path: str
    status: str = "ok"
    message: str | None = None
    tags: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    #: For tools with a git source: references read, how many were unchanged, problems.
    sources: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return asdict(self)


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
            await _emit(progress, {"event": "done", "report": report.as_dict()})
            return report

    async def _failed(
        self,
        snapshot: _Snapshot,
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
        self, snapshot: _Snapshot, registry: Registry, progress: Progress | None
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
        await to_thread.run_sync(self._apply, snapshot, in_scope, results, report, pushed)
        report.requests = _delta(before, self.client.stats)
        return report

    # --- the three steps ----------------------------------------------------------------------

    def _begin(self, tool_id: int, trigger: str) -> _Snapshot:
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
                    *(getattr(VersionImage, f) for f in services.IMAGE_FIELDS),
                )
                .join(ToolVersion)
                .where(*of_registry)
                .order_by(VersionImage.id)
            ):
                image = PlatformImage(**dict(zip(services.IMAGE_FIELDS, values, strict=True)))
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
            return _Snapshot(
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
        snapshot: _Snapshot,
        tags: list[str],
        progress: Progress | None,
        *,
        head_first: bool,
    ) -> list[_TagResult]:
        limit = asyncio.Semaphore(self.tags_at_once)
        done = 0

        async def read(tag: str) -> _TagResult:
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
        self, repository: Repository, snapshot: _Snapshot, tag: str, head_first: bool
    ) -> _TagResult:
        stored_digest, trusted = snapshot.known.get(tag, (None, False))
        try:
            if stored_digest is None and not head_first:
                # A tag never read before needs its manifest anyway: a HEAD would be wasted,
                # unless GETs count against a pull limit and the digest may be known already.
                head, images = await self.client.platform_images(repository, tag)
                return _TagResult(tag=tag, head=head, images=images)
            head = await self.client.head_manifest(repository, tag)
            if head.digest == stored_digest and trusted:
                return _TagResult(tag=tag, head=head)
            if head.digest in snapshot.images:
                # Another tag of the tool already points there: manifests are immutable.
                return _TagResult(tag=tag, head=head, images=list(snapshot.images[head.digest]))
            head, images = await self.client.platform_images(repository, head.digest)
        except RegistryError as error:
            return _TagResult(tag=tag, error=error)
        return _TagResult(tag=tag, head=head, images=images)

    def _apply(
        self,
        snapshot: _Snapshot,
        in_scope: list[str],
        results: list[_TagResult],
        report: RefreshReport,
        pushed: dict[str, datetime] | None = None,
    ) -> None:
        """Write what was read, `APPLY_BATCH` tags to a transaction, then settle the tool.

        Each batch is a complete write of its tags, so a refresh stopped between two batches
        leaves every version either as it was or as the registry has it; the next refresh
        finishes the rest.
        """
        now = utcnow()
        for start in range(0, len(results), APPLY_BATCH):
            batch = results[start : start + APPLY_BATCH]
            if not self._apply_tags(snapshot, batch, report, pushed or {}, now):
                return  # the tool was deleted while its registry was read
        self._settle(snapshot, set(in_scope), results, report, now)

    def _apply_tags(
        self,
        snapshot: _Snapshot,
        batch: list[_TagResult],
        report: RefreshReport,
        pushed: dict[str, datetime],
        now: datetime,
    ) -> bool:
        # The batch's versions, with what this refresh replaces (images, digest history), in a
        # fixed number of queries rather than several per version; unchanged tags load the
        # versions alone.
        replaces = any(r.images is not None and r.tag in snapshot.known for r in batch)
        loads = (
            [selectinload(ToolVersion.images), selectinload(ToolVersion.digest_history)]
            if replaces
            else []
        )
        with unit_of_work(self.sessions) as session:
            if session.get(Tool, snapshot.tool_id) is None:
                return False
            versions = {
                version.name: version
                for version in session.scalars(
                    select(ToolVersion)
                    .where(
                        ToolVersion.tool_id == snapshot.tool_id,
                        ToolVersion.name.in_([r.tag for r in batch]),
                    )
                    .options(*loads)
                )
            }
            for result in batch:
                version = versions.get(result.tag)
                if version is None:
                    version = ToolVersion(
                        tool_id=snapshot.tool_id, name=result.tag, from_registry=True
                    )
                    session.add(version)
                    versions[result.tag] = version
                    if result.error is None:
                        report.added.append(result.tag)
                _apply_tag(version, result, report, pushed, now)
        return True

    def _settle(
        self,
        snapshot: _Snapshot,
        present: set[str],
        results: list[_TagResult],
        report: RefreshReport,
        now: datetime,
    ) -> None:
        """Remove the tags that are gone, then the tool's default, status and next refresh."""
        removes = not set(snapshot.known) <= present
        loads = [selectinload(Tool.versions).selectinload(ToolVersion.files)] if removes else []
        with unit_of_work(self.sessions) as session:
            tool = session.get(Tool, snapshot.tool_id, options=loads)
            if tool is None:
                return
            if removes:
                self._remove_gone(tool, present, report)
            if tool.default_version is None or tool.default_version.hidden:
                tool.default_version = _preferred_default(tool)
            if report.removed:  # what search keeps comes from the versions' files
                services.refresh_derived(tool)
            tool.refreshed_at = now
            tool.refresh_status = "partial" if report.problems else "ok"
            if report.problems:
                report.status = "partial"
                report.message = f"{len(report.problems)} of {report.tags} tags could not be read"
            tool.refresh_message = report.message
            waits = [
                r.error.retry_after for r in results if isinstance(r.error, RegistryRateLimited)
            ]
            # Tags the registry would not serve yet are read again when it allows.
            when = now + timedelta(seconds=min(waits)) if waits else self._next_refresh(now)
            _schedule_next(tool, snapshot.hold, when)

    def _remove_gone(self, tool: Tool, present: set[str], report: RefreshReport) -> None:
        gone = [v for v in tool.versions if v.from_registry and v.name not in present]
        for version in gone:
            if tool.default_version is version:
                tool.default_version = None
            tool.versions.remove(version)
            report.removed.append(version.name)
        if gone and tool.published and not any(not v.hidden for v in tool.versions):
            tool.published = False
            report.message = (
                "every tag of the published tool disappeared from the registry: it was "
                "unpublished until a version exists again"
            )

    def _record_failure(self, snapshot: _Snapshot, message: str, retry_after: float | None) -> None:
        now = utcnow()
        with unit_of_work(self.sessions) as session:
            tool = session.get(Tool, snapshot.tool_id)
            if tool is not None:
                tool.refresh_status = "failed"
                tool.refresh_message = message
                _schedule_next(
                    tool,
                    snapshot.hold,
                    now + timedelta(seconds=retry_after)
                    if retry_after is not None
                    else self._next_refresh(now),
                )

    def _next_refresh(self, now: datetime) -> datetime:
        spread = self.interval * JITTER
        return now + timedelta(seconds=self.interval + random.uniform(-spread, spread))  # noqa: S311

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


def due_tool_ids(session: Session, now: datetime, limit: int) -> list[int]:
    """Tools whose scheduled refresh has come, the longest overdue first."""
    query = (
        select(Tool.id)
        .where(or_(Tool.next_refresh_at.is_(None), Tool.next_refresh_at <= now))
        .order_by(Tool.next_refresh_at.asc().nulls_first(), Tool.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def _apply_tag(
    version: ToolVersion,
    result: _TagResult,
    report: RefreshReport,
    pushed: dict[str, datetime],
    now: datetime,
) -> None:
    """Record on `version` what the registry answered for its tag."""
    version.from_registry = True
    version.checked_at = now
    if result.tag in pushed:
        version.pushed_at = pushed[result.tag]
    if result.error is not None:
        version.problem = result.error.message
        version.problem_code = result.error.oci_code or result.error.code
        report.problems[result.tag] = result.error.message
        return
    version.problem = version.problem_code = None
    assert result.head is not None
    if result.images is None:
        report.unchanged.append(result.tag)
        return
    if version.digest and version.digest != result.head.digest:
        version.digest_history.append(
            DigestChange(digest=version.digest, since=version.digest_changed_at, replaced_at=now)
        )
        report.moved.append(result.tag)
    elif result.tag not in report.added:
        report.updated.append(result.tag)
    if version.digest != result.head.digest:
        version.digest_changed_at = now
    version.digest = result.head.digest
    version.media_type = result.head.media_type
    version.images = [services.image_row(image) for image in result.images]
    version.updated_at = now


def _schedule_next(tool: Tool, hold: datetime, when: datetime) -> None:
    """Set the next refresh, unless the tool was marked due while this one ran.

    A webhook arriving during a refresh may announce a tag pushed after the tag list was read:
    its mark stays, so a scheduler refreshes the tool again.
    """
    if tool.next_refresh_at is None or tool.next_refresh_at == hold:
        tool.next_refresh_at = when


def _in_scope(tags: list[str], pattern: str | None) -> list[str]:
    valid = [tag for tag in tags if re.fullmatch(r"[\w][\w.-]{0,127}", tag, re.ASCII)]
    if pattern is None:
        return valid
    compiled = re.compile(pattern)
    return [tag for tag in valid if compiled.fullmatch(tag)]


def _preferred_default(tool: Tool) -> ToolVersion | None:
    visible = [v for v in tool.versions if not v.hidden]
    return next((v for v in visible if v.name == "latest"), visible[0] if visible else None)


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {
        key: after[key] - before.get(key, 0) for key in after if after[key] - before.get(key, 0)
    }


async def _emit(progress: Progress | None, event: dict[str, Any]) -> None:
    if progress is not None:
        await progress(event)
