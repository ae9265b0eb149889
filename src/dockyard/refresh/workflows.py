"""Refreshing a workflow: its branches and tags from git, their images from the registries.

A refresh lists the repository's branches and tags; each that the workflow's filters admit is
a version. A version whose commit changed (or that had a problem) is fetched shallowly,
written out to a temporary directory and read by its language's parser; the files it reads
and the images it names replace what was stored. Then every image of every unfrozen version
is resolved through the registry client (digest, platforms, size), with the credentials of a
tool in dockyard that holds the image when the workflow's maintainers maintain it too. A tag
that now points elsewhere than when the version was read is flagged. Frozen versions are
never touched. What goes wrong with one version is recorded on it alone; its stored files
and images stay as they were.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from anyio import to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from dockyard import metrics
from dockyard.catalog import rules as catalog_rules
from dockyard.catalog.models import Tool, ToolCredential, ToolMaintainer
from dockyard.catalog.rules import FileType
from dockyard.catalog.services import registry_for
from dockyard.db import unit_of_work
from dockyard.db.types import utcnow
from dockyard.egress import HostGuard
from dockyard.errors import (
    ConfigurationError,
    DockyardError,
    InvalidInput,
    NotFound,
    RegistryAuthFailed,
    RegistryError,
    RegistryNotFound,
)
from dockyard.refresh.locks import ToolLocks
from dockyard.refresh.services import DUE_HOLD, due_ids, next_refresh
from dockyard.registries.catalog import Catalog, Registry
from dockyard.registries.credentials import CredentialResolver, StoredCredential
from dockyard.registries.oci import RegistryClient
from dockyard.registries.reference import ImageReference, parse_reference
from dockyard.registries.repository import Credentials, Repository, base_url_for
from dockyard.sources.git import GitReader, SourceError
from dockyard.sources.services import checked_addresses
from dockyard.workflows import dockstore_yml, reading
from dockyard.workflows.images import FoundImage
from dockyard.workflows.models import Workflow, WorkflowFile, WorkflowImage, WorkflowVersion
from dockyard.workflows.rules import MAX_VERSIONS, WorkflowSpec, location, spec
from dockyard.workflows.services import Registration

log = logging.getLogger("dockyard.refresh")

#: Seconds one workflow's refresh may take, git and registries included.
REFRESH_DEADLINE = 1800.0
#: Images resolved at once (each registry's own limits apply beneath).
IMAGES_AT_ONCE = 8


@dataclass(frozen=True)
class _StoredVersion:
    id: int
    commit: str | None
    frozen: bool
    problem: str | None
    #: (image, registry id) of its images.
    images: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class _Plan:
    """What is stored of a workflow when its refresh begins."""

    workflow_id: int
    path: str
    git_url: str
    spec: WorkflowSpec
    from_dockstore_yml: bool
    versions: dict[str, _StoredVersion]
    #: (host, repository) -> the credentials of a tool the workflow's maintainers maintain.
    credentials: dict[tuple[str, str], StoredCredential]
    hold: datetime


@dataclass
class _Read:
    """What reading one version found this time."""

    name: str
    reference_type: str
    commit: str | None = None
    unchanged: bool = False
    primary: str | None = None
    files: list[catalog_rules.FileSpec] | None = None
    images: list[FoundImage] | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None


@dataclass(frozen=True)
class Resolved:
    """What a registry says of one image."""

    digest: str | None = None
    platforms: tuple[str, ...] = ()
    size: int | None = None
    created: datetime | None = None
    private: bool = False
    problems: tuple[str, ...] = ()


@dataclass
class WorkflowReport:
    """What a workflow's refresh found and changed."""

    workflow_id: int
    path: str
    status: str = "ok"
    message: str | None = None
    read: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    images: int = 0
    resolved: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON."""
        return asdict(self)


@dataclass
class WorkflowRefresher:
    """Refreshes workflows with one git cache and one registry client."""

    sessions: sessionmaker[Session]
    catalog: Catalog
    client: RegistryClient
    credentials: CredentialResolver
    reader: GitReader
    guard: HostGuard
    locks: ToolLocks
    interval: int = 21600
    deadline: float = REFRESH_DEADLINE

    async def refresh(self, workflow_id: int, *, trigger: str = "manual") -> WorkflowReport:
        """Refresh one workflow; a git failure is reported and recorded, never raised.

        Raises `RefreshInProgress` when another process is refreshing it and `NotFound` when
        it no longer exists.
        """
        async with self.locks.hold(workflow_id):
            plan = await to_thread.run_sync(self._begin, workflow_id)
            report = WorkflowReport(workflow_id=workflow_id, path=plan.path)
            try:
                async with asyncio.timeout(self.deadline):
                    await self._refresh(plan, report)
            except TimeoutError:
                report.status = "failed"
                report.message = (
                    f"the refresh did not finish within {self.deadline:g} s; nothing stored "
                    "was changed"
                )
            except DockyardError as error:
                report.status, report.message = "failed", error.message
            if report.status == "failed":
                await to_thread.run_sync(self._record_failure, plan, report.message or "")
            log.info(
                "refreshed workflow %s: %s",
                plan.path,
                report.status,
                extra={"workflow_id": workflow_id, "trigger": trigger},
            )
            metrics.WORKFLOW_REFRESHES.labels(report.status).inc()
            return report

    async def discover(self, git_url: str) -> list[Registration]:
        """The workflows the repository's `.dockstore.yml` declares on its default branch.

        `InvalidInput` when the file is missing or invalid (naming the key and line), or the
        repository cannot be read.
        """
        where = location(git_url)
        pins = await checked_addresses(self.guard, git_url)
        try:
            text, found_at = await to_thread.run_sync(self._dockstore_yml, git_url, pins)
        except SourceError as error:
            raise InvalidInput(error.message) from None
        entries = dockstore_yml.parse(text, found_at)
        if not entries:
            raise InvalidInput(f"{found_at} of {git_url} declares no workflows")
        return [
            Registration(
                git_url=git_url,
                location=where,
                spec=spec(
                    entry.subclass.value,
                    entry.primary_descriptor_path,
                    name=entry.name,
                    test_parameter_files=list(entry.test_parameter_files),
                    filters=entry.filters,
                ),
                from_dockstore_yml=True,
                authors=entry.authors,
                publish=entry.publish,
            )
            for entry in entries
        ]

    def _dockstore_yml(self, git_url: str, pins: list[str]) -> tuple[str, str]:
        _, default = self.reader.remote(git_url, pins=pins)
        if default is None:
            raise InvalidInput(f"{git_url} has no default branch to read .dockstore.yml from")
        commit = self.reader.fetch(git_url, f"refs/heads/{default}", pins=pins)
        tree = self.reader.tree(git_url, commit)
        for found_at in dockstore_yml.LOCATIONS:
            entry = tree.get(found_at.lstrip("/"))
            if entry is not None:
                return self.reader.read(git_url, found_at, entry), found_at
        raise InvalidInput(
            f"branch {default} of {git_url} has no /.dockstore.yml or /.github/.dockstore.yml: "
            "add one, or register with descriptor_type and primary_descriptor_path"
        )

    # --- reading ------------------------------------------------------------------------------

    async def _refresh(self, plan: _Plan, report: WorkflowReport) -> None:
        pins = await checked_addresses(self.guard, plan.git_url)
        refs, default = await to_thread.run_sync(
            functools.partial(self.reader.remote, plan.git_url, pins=pins)
        )
        wanted, left_out = _wanted(refs, plan.spec, default)
        reads: list[_Read] = []
        for name, kind, commit in wanted:
            stored = plan.versions.get(name)
            if stored is not None and stored.frozen:
                report.frozen.append(name)
                continue
            if stored is not None and stored.commit == commit and stored.problem is None:
                reads.append(_Read(name, kind, commit=commit, unchanged=True))
                report.unchanged.append(name)
                continue
            read = await to_thread.run_sync(self._read, plan, name, kind, pins)
            reads.append(read)
            if read.problem is not None:
                report.problems[name] = read.problem
            else:
                report.read.append(name)
        images = _to_resolve(plan, reads)
        resolved = await self._resolve_all(images, plan.credentials)
        report.images = len(images)
        report.resolved = sum(1 for r in resolved.values() if r.digest is not None)
        names = {name for name, _, _ in wanted}
        report.removed = [n for n, v in plan.versions.items() if n not in names and not v.frozen]
        if left_out:
            report.message = (
                f"the repository has {left_out} more branches and tags than the {MAX_VERSIONS} "
                "a workflow keeps; narrow them with .dockstore.yml filters"
            )
        if report.problems:
            report.status = "partial"
        await to_thread.run_sync(self._apply, plan, names, reads, resolved, report)

    def _read(self, plan: _Plan, name: str, kind: str, pins: list[str]) -> _Read:
        """Fetch and read one branch or tag (in a thread)."""
        reference = f"refs/heads/{name}" if kind == "branch" else f"refs/tags/{name}"
        try:
            commit = self.reader.fetch(plan.git_url, reference, pins=pins)
        except DockyardError as error:
            return _Read(name, kind, problem=error.message)
        with tempfile.TemporaryDirectory(prefix="dockyard-workflow-") as directory:
            root = Path(directory)
            try:
                self.reader.export(plan.git_url, commit, root)
                version_spec = (
                    _spec_from_dockstore_yml(root, plan.spec)
                    if plan.from_dockstore_yml
                    else plan.spec
                )
                found = reading.read(
                    root,
                    version_spec.descriptor_type,
                    version_spec.primary_descriptor_path,
                    self.catalog,
                )
                files = _files(root, version_spec, found.files)
            except DockyardError as error:
                return _Read(name, kind, commit=commit, problem=error.message)
        return _Read(
            name,
            kind,
            commit=commit,
            primary=version_spec.primary_descriptor_path,
            files=files,
            images=found.images,
            tools=[asdict(tool) for tool in found.tools],
        )

    # --- resolving ----------------------------------------------------------------------------

    async def _resolve_all(
        self,
        images: dict[str, str | None],
        credentials: dict[tuple[str, str], StoredCredential],
    ) -> dict[str, Resolved]:
        limit = asyncio.Semaphore(IMAGES_AT_ONCE)

        async def one(image: str, registry_id: str | None) -> tuple[str, Resolved]:
            async with limit:
                return image, await self.resolve(image, registry_id, credentials)

        pairs = await asyncio.gather(*(one(i, r) for i, r in images.items()))
        return dict(pairs)

    async def resolve(
        self,
        image: str,
        registry_id: str | None,
        credentials: dict[tuple[str, str], StoredCredential],
    ) -> Resolved:
        """The digest, platforms and size of one image, or what kept them from being read."""
        reference = parse_reference(image)
        try:
            registry = registry_for(self.catalog, registry_id or "", reference.domain)
        except DockyardError as error:
            return Resolved(problems=(error.message,))
        private = registry.private_only
        stored = credentials.get((reference.domain.lower(), reference.path.lower()))
        target = reference.digest or reference.tag or "latest"
        try:
            given = await self.credentials.for_tool(registry, reference.domain, stored)
            try:
                # A maintainer's own credentials are tried only when anonymous reading fails:
                # whether an image is private is what users of the workflow need to know.
                anonymous = stored is not None and not private
                head, platforms = await self.client.platform_images(
                    self._repository(reference, registry, None if anonymous else given), target
                )
            except RegistryAuthFailed:
                if stored is None or private:
                    raise
                private = True
                head, platforms = await self.client.platform_images(
                    self._repository(reference, registry, given), target
                )
        except RegistryNotFound:
            return Resolved(
                private=private,
                problems=(f"{registry.name} has no {reference}: the image or its tag is gone",),
            )
        except RegistryAuthFailed:
            return Resolved(
                private=True,
                problems=(
                    f"{registry.name} asks for credentials to read {reference.name}: the "
                    "image is private (or does not exist)",
                ),
            )
        except (RegistryError, ConfigurationError) as error:
            return Resolved(
                private=private,
                problems=(f"{reference.name} could not be read: {error.message}",),
            )
        names = ("/".join(p for p in (i.os, i.architecture, i.variant) if p) for i in platforms)
        main = next((i for i in platforms if i.architecture == "amd64"), None)
        main = main or (platforms[0] if platforms else None)
        return Resolved(
            digest=head.digest,
            platforms=tuple(n for n in names if n),
            size=main.size if main is not None else None,
            created=main.created if main is not None else None,
            private=private,
        )

    def _repository(
        self, reference: ImageReference, registry: Registry, credentials: Credentials | None
    ) -> Repository:
        return Repository(
            host=reference.domain,
            name=reference.path,
            base_url=base_url_for(
                reference.domain, api_host=registry.api_host, insecure=registry.insecure
            ),
            credentials=credentials,
            max_in_flight=registry.max_in_flight,
        )

    # --- the three transactions ---------------------------------------------------------------

    def _begin(self, workflow_id: int) -> _Plan:
        hold = utcnow() + DUE_HOLD
        with unit_of_work(self.sessions) as session:
            workflow = session.get(
                Workflow,
                workflow_id,
                options=[
                    selectinload(Workflow.versions).selectinload(WorkflowVersion.images),
                    selectinload(Workflow.maintainers),
                ],
            )
            if workflow is None:
                raise NotFound(f"no workflow with id {workflow_id}")
            workflow.next_refresh_at = hold
            return _Plan(
                workflow_id=workflow.id,
                path=workflow.path,
                git_url=workflow.git_url,
                spec=_stored_spec(workflow),
                from_dockstore_yml=workflow.from_dockstore_yml,
                versions={
                    v.name: _StoredVersion(
                        id=v.id,
                        commit=v.commit,
                        frozen=v.frozen,
                        problem=v.problem,
                        images=tuple((i.image, i.registry_id) for i in v.images if i.image),
                    )
                    for v in workflow.versions
                },
                credentials=_maintained_credentials(session, workflow),
                hold=hold,
            )

    def _apply(
        self,
        plan: _Plan,
        names: set[str],
        reads: Sequence[_Read],
        resolved: dict[str, Resolved],
        report: WorkflowReport,
    ) -> None:
        now = utcnow()
        with unit_of_work(self.sessions) as session:
            workflow = session.get(
                Workflow,
                plan.workflow_id,
                options=[
                    selectinload(Workflow.versions).selectinload(WorkflowVersion.images),
                    selectinload(Workflow.versions).selectinload(WorkflowVersion.files),
                ],
            )
            if workflow is None:
                return
            versions = {v.name: v for v in workflow.versions}
            for read in reads:
                version = versions.get(read.name)
                if version is None:
                    version = WorkflowVersion(name=read.name, reference_type=read.reference_type)
                    workflow.versions.append(version)
                if version.frozen:
                    continue  # frozen while git was read
                version.checked_at = now
                if read.problem is not None:
                    version.problem = read.problem
                    continue
                if not read.unchanged:
                    _replace_contents(session, version, read)
                    version.updated_at = now
                for image in version.images:
                    _record_resolution(image, resolved, now)
            for version in list(workflow.versions):
                if version.name not in names and not version.frozen:
                    workflow.versions.remove(version)
            workflow.refreshed_at = now
            workflow.refresh_status = report.status
            workflow.refresh_message = report.message
            if report.read or report.removed:
                workflow.updated_at = now
            self._schedule(workflow, plan.hold, self._next(now))

    def _record_failure(self, plan: _Plan, message: str) -> None:
        now = utcnow()
        with unit_of_work(self.sessions) as session:
            workflow = session.get(Workflow, plan.workflow_id)
            if workflow is not None:
                workflow.refresh_status = "failed"
                workflow.refresh_message = message
                workflow.refreshed_at = now
                self._schedule(workflow, plan.hold, self._next(now))

    def _schedule(self, workflow: Workflow, hold: datetime, when: datetime) -> None:
        """As `apply.schedule_next`: a webhook's mark during the refresh stays."""
        if workflow.next_refresh_at is None or workflow.next_refresh_at == hold:
            workflow.next_refresh_at = when

    def _next(self, now: datetime) -> datetime:
        return next_refresh(now, self.interval)


def due_workflow_ids(session: Session, now: datetime, limit: int) -> list[int]:
    """Workflows whose scheduled refresh has come, the longest overdue first."""
    return due_ids(session, Workflow, now, limit)


async def refresh_workflow_quietly(
    refresher: WorkflowRefresher, workflow_id: int, trigger: str
) -> None:
    """Refresh a workflow from a scheduler, logging instead of raising."""
    try:
        await refresher.refresh(workflow_id, trigger=trigger)
    except DockyardError as error:  # in progress elsewhere, deleted meanwhile
        log.info("workflow refresh skipped: %s", error.message, extra={"workflow_id": workflow_id})
    except Exception:
        log.exception("workflow refresh failed unexpectedly", extra={"workflow_id": workflow_id})


def _stored_spec(workflow: Workflow) -> WorkflowSpec:
    filters = workflow.filters or {}
    return spec(
        workflow.descriptor_type,
        workflow.primary_descriptor_path,
        name=workflow.name,
        test_parameter_files=list(workflow.test_parameter_files or []),
        filters=dockstore_yml.Filters(
            branches=tuple(filters.get("branches") or ()), tags=tuple(filters.get("tags") or ())
        ),
    )


def _maintained_credentials(
    session: Session, workflow: Workflow
) -> dict[tuple[str, str], StoredCredential]:
    """Credentials of tools that the workflow's maintainers maintain: a maintainer's
    credentials read only what that maintainer could read already."""
    users = [m.user_id for m in workflow.maintainers]
    if not users:
        return {}
    rows = session.execute(
        select(Tool.host, Tool.repository, ToolCredential)
        .join(ToolCredential, ToolCredential.tool_id == Tool.id)
        .join(ToolMaintainer, ToolMaintainer.tool_id == Tool.id)
        .where(ToolMaintainer.user_id.in_(users))
    )
    return {
        (host.lower(), repository.lower()): StoredCredential(c.kind, c.username, c.secret)
        for host, repository, c in rows
    }


def _wanted(
    refs: dict[str, str], workflow_spec: WorkflowSpec, default: str | None
) -> tuple[list[tuple[str, str, str]], int]:
    """The branches and tags that are versions, the default branch first: (name, kind,
    commit), and how many more the limit left out."""
    found: list[tuple[str, str, str]] = []
    for ref, commit in refs.items():
        for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
            if ref.startswith(prefix):
                name = ref[len(prefix) :]
                if workflow_spec.filters.admits(kind, name):
                    found.append((name, kind, commit))
    found.sort(key=lambda item: (item[0] != default, item[1] != "branch", item[0]))
    return found[:MAX_VERSIONS], max(0, len(found) - MAX_VERSIONS)


def _spec_from_dockstore_yml(root: Path, stored: WorkflowSpec) -> WorkflowSpec:
    """This version's settings, from its own `.dockstore.yml` entry for the workflow."""
    for found_at in dockstore_yml.LOCATIONS:
        path = root / found_at.lstrip("/")
        if path.is_file():
            entries = dockstore_yml.parse(path.read_text(encoding="utf-8"), found_at)
            break
    else:
        raise InvalidInput("this version has no .dockstore.yml (or .github/.dockstore.yml)")
    for entry in entries:
        if (entry.name or None) == stored.name:
            return replace(
                spec(
                    entry.subclass.value,
                    entry.primary_descriptor_path,
                    name=entry.name,
                    test_parameter_files=list(entry.test_parameter_files),
                ),
                filters=stored.filters,
            )
    named = f"a workflow named {stored.name!r}" if stored.name else "an unnamed workflow"
    raise InvalidInput(f"the .dockstore.yml of this version declares no {named}")


def _files(
    root: Path, version_spec: WorkflowSpec, descriptors: list[str]
) -> list[catalog_rules.FileSpec]:
    """The version's files: the descriptors read, and the test parameter files it has."""
    primary = version_spec.primary_descriptor_path
    kind = version_spec.descriptor_type.value
    given: list[tuple[str, str, str | None, str]] = []
    for path in descriptors:
        file_type = (
            FileType.PRIMARY_DESCRIPTOR if path == primary else FileType.SECONDARY_DESCRIPTOR
        )
        given.append((path.lstrip("/"), file_type.value, kind, _text(root, path)))
    for path in version_spec.test_parameter_files:
        if (root / path.lstrip("/")).is_file() and path not in descriptors:
            given.append((path.lstrip("/"), FileType.TEST_FILE.value, kind, _text(root, path)))
    return catalog_rules.check_files(given)


def _text(root: Path, path: str) -> str:
    try:
        return (root / path.lstrip("/")).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None


def _to_resolve(plan: _Plan, reads: Sequence[_Read]) -> dict[str, str | None]:
    """image -> registry id, for every image of every version this refresh keeps unfrozen."""
    images: dict[str, str | None] = {}
    for read in reads:
        if read.images is not None:
            for found in read.images:
                if found.image is not None:
                    images.setdefault(found.image, found.registry)
            continue
        stored = plan.versions.get(read.name)  # unchanged, or kept after a problem
        for image, registry_id in stored.images if stored is not None else ():
            images.setdefault(image, registry_id)
    return images


def _replace_contents(session: Session, version: WorkflowVersion, read: _Read) -> None:
    version.commit = read.commit
    version.primary_descriptor_path = read.primary
    version.problem = None
    version.tools = read.tools
    version.files.clear()
    version.images.clear()
    session.flush()  # the old rows go before new ones with the same paths come
    version.files = [
        WorkflowFile(
            path=f.path,
            file_type=f.file_type.value,
            descriptor_type=f.descriptor_type.value if f.descriptor_type else None,
            content=f.content,
            sha256=f.sha256,
            size=f.size,
        )
        for f in read.files or []
    ]
    version.images = [
        WorkflowImage(
            position=position,
            reference=found.text,
            file=found.file,
            line=found.line,
            image=found.image,
            registry_id=found.registry,
            engine=found.engine,
            read_problems=list(found.problems),
            resolve_problems=[],
            platforms=[],
        )
        for position, found in enumerate(read.images or [])
    ]


def _record_resolution(image: WorkflowImage, resolved: dict[str, Resolved], now: datetime) -> None:
    answer = resolved.get(image.image) if image.image is not None else None
    if answer is None:
        return
    problems = list(answer.problems)
    if answer.digest is not None:
        if image.first_digest is None:
            image.first_digest = answer.digest
        elif answer.digest != image.first_digest:
            problems.append(
                f"the tag moved since this version was read: it pointed to "
                f"{image.first_digest} and points to {answer.digest} now"
            )
    image.digest = answer.digest or image.digest
    image.platforms = list(answer.platforms) or image.platforms
    image.size = answer.size if answer.size is not None else image.size
    image.created = answer.created or image.created
    image.private = answer.private
    image.resolve_problems = problems
    image.resolved_at = now
