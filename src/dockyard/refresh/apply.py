"""Writing what a refresh read: its tags in batches of `APPLY_BATCH`, one transaction each,
then the tool itself (tags gone, default version, status, next refresh)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, selectinload, sessionmaker

from dockyard.catalog import contents
from dockyard.catalog.models import DigestChange, Tool, ToolVersion
from dockyard.db import unit_of_work
from dockyard.db.types import utcnow
from dockyard.errors import RegistryRateLimited
from dockyard.refresh.results import RefreshReport, Snapshot, TagResult

#: Tags whose results are written in one transaction. A refresh of thousands of tags then
#: holds SQLite's write lock, and the interpreter building its rows, a moment at a time, so
#: reads and other tools' writes keep going while it writes.
APPLY_BATCH = 200


def apply_results(
    sessions: sessionmaker[Session],
    snapshot: Snapshot,
    next_refresh: Callable[[datetime], datetime],
    in_scope: list[str],
    results: list[TagResult],
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
        if not _apply_tags(sessions, snapshot, batch, report, pushed or {}, now):
            return  # the tool was deleted while its registry was read
    _settle(sessions, next_refresh, snapshot, set(in_scope), results, report, now)


def _apply_tags(
    sessions: sessionmaker[Session],
    snapshot: Snapshot,
    batch: list[TagResult],
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

    def change(session: Session, _tool: Tool, versions: dict[str, ToolVersion]) -> None:
        for result in batch:
            version = versions.get(result.tag)
            if version is None:
                version = ToolVersion(tool_id=snapshot.tool_id, name=result.tag, from_registry=True)
                session.add(version)
                versions[result.tag] = version
                if result.error is None:
                    report.added.append(result.tag)
            _apply_tag(version, result, report, pushed, now)

    tags = [result.tag for result in batch]
    return contents.change_versions(sessions, snapshot.tool_id, change, names=tags, loads=loads)


def _settle(
    sessions: sessionmaker[Session],
    next_refresh: Callable[[datetime], datetime],
    snapshot: Snapshot,
    present: set[str],
    results: list[TagResult],
    report: RefreshReport,
    now: datetime,
) -> None:
    """Remove the tags that are gone, then the tool's default, status and next refresh."""
    removes = not set(snapshot.known) <= present
    loads = [selectinload(Tool.versions).selectinload(ToolVersion.files)] if removes else []
    with unit_of_work(sessions) as session:
        tool = session.get(Tool, snapshot.tool_id, options=loads)
        if tool is None:
            return
        if removes:
            _remove_gone(tool, present, report)
        if tool.default_version is None or tool.default_version.hidden:
            tool.default_version = _preferred_default(tool)
        if report.removed:  # what search keeps comes from the versions' files
            contents.refresh_derived(tool)
        tool.refreshed_at = now
        tool.refresh_status = "partial" if report.problems else "ok"
        if report.problems:
            report.status = "partial"
            report.message = f"{len(report.problems)} of {report.tags} tags could not be read"
        tool.refresh_message = report.message
        waits = [r.error.retry_after for r in results if isinstance(r.error, RegistryRateLimited)]
        # Tags the registry would not serve yet are read again when it allows.
        when = now + timedelta(seconds=min(waits)) if waits else next_refresh(now)
        schedule_next(tool, snapshot.hold, when)


def _remove_gone(tool: Tool, present: set[str], report: RefreshReport) -> None:
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


def _apply_tag(
    version: ToolVersion,
    result: TagResult,
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
    version.images = [contents.image_row(image) for image in result.images]
    version.updated_at = now


def schedule_next(tool: Tool, hold: datetime, when: datetime) -> None:
    """Set the next refresh, unless the tool was marked due while this one ran.

    A webhook arriving during a refresh may announce a tag pushed after the tag list was read:
    its mark stays, so a scheduler refreshes the tool again.
    """
    if tool.next_refresh_at is None or tool.next_refresh_at == hold:
        tool.next_refresh_at = when


def _preferred_default(tool: Tool) -> ToolVersion | None:
    visible = [v for v in tool.versions if not v.hidden]
    return next((v for v in visible if v.name == "latest"), visible[0] if visible else None)
