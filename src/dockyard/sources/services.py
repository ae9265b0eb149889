"""Tools whose descriptors and Dockerfile live in git: reading them during a refresh.

A tool's `source` names a git repository, the Dockerfile's path, the descriptors' paths and
how a version (an image tag) maps to a git reference: the same name by default, a template
such as `v{version}`, or one reference per version. A refresh reads each version's files from
its reference, follows descriptor imports inside the repository, checks that the descriptors
parse and the Dockerfile exists, and records the commit. What goes wrong is recorded on the
version; its stored files are never touched then.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from anyio import to_thread
from sqlalchemy.orm import Session, sessionmaker

from dockyard.catalog import contents, rules
from dockyard.catalog.contents import refresh_derived, store_files
from dockyard.catalog.models import Tool, ToolVersion
from dockyard.catalog.rules import FileType
from dockyard.db import unit_of_work
from dockyard.db.types import utcnow
from dockyard.egress import HostGuard
from dockyard.errors import DockyardError, InvalidInput
from dockyard.sources import descriptors
from dockyard.sources.git import GitReader, SourceError, is_commit_id, url_host
from dockyard.sources.rules import SourceSpec, parse_source, reference_for

File = tuple[str, str, str | None, str]


def collect(reader: GitReader, spec: SourceSpec, commit: str) -> list[File]:
    """A version's files at `commit`: descriptors with their imports, and the Dockerfile."""
    tree = reader.tree(spec.git_url, commit)
    present = {kind: path for kind, path in spec.descriptor_paths.items() if path in tree}
    missing = [f"/{path}" for kind, path in spec.descriptor_paths.items() if kind not in present]
    if not present or (spec.explicit_descriptors and missing):
        raise SourceError(f"no descriptor at {' or '.join(missing)} in commit {commit[:12]}")
    files: dict[str, File] = {}
    for kind, primary in present.items():
        queue = [(primary, "primary")]
        while queue:
            path, role = queue.pop(0)
            if path in files:
                continue
            if path not in tree:
                raise SourceError(f"a descriptor imports {path}, which commit {commit[:12]} lacks")
            if len(files) >= rules.MAX_FILES_PER_VERSION - 1:
                raise SourceError(
                    f"the descriptors import more than {rules.MAX_FILES_PER_VERSION - 1} files"
                )
            text = reader.read(spec.git_url, path, tree[path])
            if role == "primary":
                descriptors.check(kind, text, path)
                found = descriptors.imports(kind, text, path)
                file_type = FileType.PRIMARY_DESCRIPTOR
            else:
                found = descriptors.check_import(kind, role, text, path)
                file_type = FileType.SECONDARY_DESCRIPTOR
            files[path] = (path, file_type.value, kind.value, text)
            queue.extend(found)
    dockerfile = spec.dockerfile_path
    if dockerfile not in tree:
        raise SourceError(f"no Dockerfile at /{dockerfile} in commit {commit[:12]}")
    if dockerfile not in files:
        text = reader.read(spec.git_url, dockerfile, tree[dockerfile])
        files[dockerfile] = (dockerfile, FileType.CONTAINERFILE.value, None, text)
    return list(files.values())


@dataclass
class _Outcome:
    version_id: int
    name: str
    reference: str
    commit: str | None = None
    files: list[rules.FileSpec] | None = None
    problem: str | None = None


async def checked_addresses(guard: HostGuard, git_url: str) -> list[str]:
    """The addresses the guard allows a git URL's host at, for git to connect to (`pins`);
    none for `file://`, which has no host."""
    scheme, host = url_host(git_url)
    if scheme == "file":
        return []
    netloc = f"[{host}]" if ":" in host else host  # an IPv6 literal is bracketed
    return await guard.addresses(f"https://{netloc}/")


class SourceSync:
    """Reads git-backed versions' files during a refresh."""

    def __init__(self, cache: Path, *, allow_private: bool) -> None:
        self.reader = GitReader(cache, allow_file_urls=allow_private)
        self.guard = HostGuard(allow_private=allow_private)

    async def sync(self, sessions: sessionmaker[Session], tool_id: int) -> dict[str, Any] | None:
        """Bring every version's files in step with git; a summary, or None without a source."""
        plan = await to_thread.run_sync(_plan, sessions, tool_id)
        if plan is None:
            return None
        spec, versions = plan
        outcomes: list[_Outcome] = []
        try:
            pins = await checked_addresses(self.guard, spec.git_url)
            refs = await to_thread.run_sync(
                functools.partial(self.reader.remote_refs, spec.git_url, pins=pins)
            )
        except DockyardError as error:
            outcomes = [
                _Outcome(vid, name, reference_for(spec, name), problem=error.message)
                for vid, name, _ in versions
            ]
        else:
            for version_id, name, stored in versions:
                reference = reference_for(spec, name)
                outcomes.append(
                    await to_thread.run_sync(
                        self._read, spec, refs, version_id, name, reference, stored, pins
                    )
                )
        await to_thread.run_sync(_apply, sessions, tool_id, outcomes)
        return {
            "synced": [o.reference for o in outcomes if o.files is not None],
            "unchanged": sum(1 for o in outcomes if o.files is None and o.problem is None),
            "problems": {o.reference: o.problem for o in outcomes if o.problem is not None},
        }

    def _read(
        self,
        spec: SourceSpec,
        refs: dict[str, str],
        version_id: int,
        name: str,
        reference: str,
        stored: str | None,
        pins: list[str],
    ) -> _Outcome:
        remote = (
            refs.get(f"refs/tags/{reference}")
            or refs.get(f"refs/heads/{reference}")
            or (reference if is_commit_id(reference) else None)
        )
        if remote is None:
            problem = f"the repository has no branch or tag {reference!r}"
            return _Outcome(version_id, name, reference, problem=problem)
        if remote == stored:
            return _Outcome(version_id, name, reference, commit=remote)
        try:
            commit = self.reader.fetch(spec.git_url, reference, pins=pins)
            files = rules.check_files(collect(self.reader, spec, commit))
        except DockyardError as error:
            return _Outcome(version_id, name, reference, problem=error.message)
        return _Outcome(version_id, name, reference, commit=commit, files=files)


def _plan(
    sessions: sessionmaker[Session], tool_id: int
) -> tuple[SourceSpec, list[tuple[int, str, str | None]]] | None:
    with unit_of_work(sessions, write=False) as session:
        tool = session.get(Tool, tool_id)
        if tool is None or not tool.source:
            return None
        try:
            spec = parse_source(tool.source)
        except InvalidInput:
            return None
        return spec, [
            (v.id, v.name, v.source_commit if v.source_problem is None else None)
            for v in tool.versions
        ]


def _apply(sessions: sessionmaker[Session], tool_id: int, outcomes: list[_Outcome]) -> None:
    now: datetime = utcnow()

    def change(session: Session, tool: Tool, versions: dict[str, ToolVersion]) -> None:
        for outcome in outcomes:
            version = versions.get(outcome.name)
            if version is None or version.id != outcome.version_id:
                continue  # deleted (or deleted and added again) while git was read
            version.source_reference = outcome.reference
            version.source_checked_at = now
            version.source_problem = outcome.problem
            if outcome.files is not None:
                version.source_commit = outcome.commit
                store_files(session, version, outcome.files)
        refresh_derived(tool)

    contents.change_versions(sessions, tool_id, change)
