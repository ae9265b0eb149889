"""What TRS 2.0.1 shows of tools: plain functions from dockyard's models to TRS objects.

Optional fields without a value are left out rather than sent as null (docs/specification.md
section 7).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from dockyard.catalog.files import FileRow
from dockyard.catalog.models import Tool, ToolVersion
from dockyard.catalog.rules import DescriptorType, FileType
from dockyard.sources.rules import raw_url, source_link
from dockyard.workflows.models import Workflow, WorkflowVersion
from dockyard.workflows.services import trs_id

TOOL_CLASS = {
    "id": "CommandLineTool",
    "name": "CommandLineTool",
    "description": "A container image with descriptors that run it",
}
WORKFLOW_CLASS = {
    "id": "Workflow",
    "name": "Workflow",
    "description": "A workflow from git: CWL, WDL, Nextflow, Galaxy or Snakemake",
}
DOCKER_HUB = "docker.io"


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """What an answer shows of one platform image."""

    digest: str
    size: int | None
    created: datetime | None


@dataclass(frozen=True, slots=True)
class VersionFacts:
    """What an answer shows of a tool's version: read from its rows, or from the ORM."""

    id: int
    name: str
    description: str
    updated_at: datetime
    source_reference: str | None
    source_commit: str | None
    images: list[ImageFacts]
    #: The descriptor types of its primary descriptors, sorted.
    descriptor_types: list[str]
    containerfile: bool

    @classmethod
    def of(cls, version: ToolVersion) -> VersionFacts:
        """The facts of a loaded version (images and files loaded with it)."""
        return cls(
            id=version.id,
            name=version.name,
            description=version.description,
            updated_at=version.updated_at,
            source_reference=version.source_reference,
            source_commit=version.source_commit,
            images=[ImageFacts(i.digest, i.size, i.created) for i in version.images],
            descriptor_types=sorted(
                {
                    f.descriptor_type
                    for f in version.files
                    if f.file_type == FileType.PRIMARY_DESCRIPTOR and f.descriptor_type
                }
            ),
            containerfile=any(f.file_type == FileType.CONTAINERFILE for f in version.files),
        )


@dataclass(frozen=True, slots=True)
class ToolFacts:
    """What an answer shows of a tool."""

    path: str
    host: str
    namespace: str
    repository: str
    toolname: str | None
    description: str
    updated_at: datetime
    default_version_id: int | None
    #: The git source's URL, when the tool has one.
    git_url: str | None
    #: Its maintainers' usernames, first maintainer first.
    maintainers: list[str]
    #: Labels from its organization and collections (`organization:lab`,
    #: `collection:lab/aligners`): TRS `aliases`, and what `/tools?alias=` finds.
    aliases: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, tool: Tool, aliases: list[str] | None = None) -> ToolFacts:
        """The facts of a loaded tool (maintainers loaded with it)."""
        return cls(
            path=tool.path,
            host=tool.host,
            namespace=tool.namespace,
            repository=tool.repository,
            toolname=tool.toolname,
            description=tool.description,
            updated_at=tool.updated_at,
            default_version_id=tool.default_version_id,
            git_url=tool.source["git_url"] if tool.source else None,
            maintainers=[m.user.username for m in tool.maintainers],
            aliases=aliases or [],
        )


def image_name(tool: ToolFacts, digest: str | None) -> str:
    """`repo@sha256:...` when pinned; the host is left out for Docker Hub only."""
    base = tool.repository if tool.host == DOCKER_HUB else f"{tool.host}/{tool.repository}"
    return f"{base}@{digest}" if digest else base


def tool_json(tool: ToolFacts, versions: list[VersionFacts], base: str) -> dict[str, Any]:
    """A TRS Tool with its visible versions."""
    answer: dict[str, Any] = {
        "url": f"{base}/tools/{_encoded(tool.path)}",
        "id": tool.path,
        "aliases": tool.aliases or None,
        "organization": tool.namespace,
        "name": tool.repository.rsplit("/", 1)[-1] if tool.toolname is None else tool.toolname,
        "toolclass": TOOL_CLASS,
        "description": tool.description or None,
        "meta_version": tool.updated_at.isoformat(),
        "has_checker": False,
        "versions": [version_json(tool, version, base) for version in versions],
    }
    return _without_nulls(answer)


def version_json(tool: ToolFacts, version: VersionFacts, base: str) -> dict[str, Any]:
    """A TRS ToolVersion: one ImageData per platform, descriptor types from its files."""
    images = [
        _without_nulls(
            {
                "registry_host": tool.host,
                "image_name": image_name(tool, image.digest),
                "size": image.size,
                "updated": image.created.isoformat() if image.created else None,
                "checksum": [{"checksum": image.digest.partition(":")[2], "type": "sha-256"}],
                "image_type": "Docker",
            }
        )
        for image in version.images
    ]
    answer: dict[str, Any] = {
        "url": f"{base}/tools/{_encoded(tool.path)}/versions/{_encoded(version.name)}",
        "id": version.name,
        "name": version.name,
        "description": version.description or None,
        "author": tool.maintainers or None,
        "is_production": tool.default_version_id == version.id,
        "images": images,
        "descriptor_type": version.descriptor_types,
        "containerfile": version.containerfile,
        "meta_version": version.updated_at.isoformat(),
        "verified": False,
        "signed": False,
    }
    if tool.git_url and version.source_commit:
        # An extension: TRS has no field for where a version's files came from.
        answer["dockyard_source"] = {
            "git_url": tool.git_url,
            "reference": version.source_reference,
            "commit": version.source_commit,
            "url": source_link(tool.git_url, version.source_commit),
        }
    return _without_nulls(answer)


def workflow_json(workflow: Workflow, versions: list[WorkflowVersion], base: str) -> dict[str, Any]:
    """A TRS Tool of class Workflow, id `#workflow/{path}`, with its visible versions."""
    answer: dict[str, Any] = {
        "url": f"{base}/tools/{_encoded(trs_id(workflow))}",
        "id": trs_id(workflow),
        "organization": workflow.namespace,
        "name": f"{workflow.repository}/{workflow.name}" if workflow.name else workflow.repository,
        "toolclass": WORKFLOW_CLASS,
        "description": workflow.description or None,
        "meta_version": workflow.updated_at.isoformat(),
        "has_checker": False,
        "versions": [workflow_version_json(workflow, v, base) for v in versions],
    }
    return _without_nulls(answer)


def workflow_version_json(
    workflow: Workflow, version: WorkflowVersion, base: str
) -> dict[str, Any]:
    """A workflow's TRS ToolVersion: one ImageData per image its descriptors name."""
    images = [
        _without_nulls(
            {
                "registry_host": image.image.split("/", 1)[0],
                "image_name": image.image,
                "size": image.size,
                "updated": image.created.isoformat() if image.created else None,
                "checksum": (
                    [{"checksum": image.digest.partition(":")[2], "type": "sha-256"}]
                    if image.digest
                    else None
                ),
                "image_type": "Docker",
            }
        )
        for image in version.images
        if image.image is not None
    ]
    authors = [a["name"] for a in workflow.authors if a.get("name")]
    answer: dict[str, Any] = {
        "url": (f"{base}/tools/{_encoded(trs_id(workflow))}/versions/{_encoded(version.name)}"),
        "id": version.name,
        "name": version.name,
        "author": authors or [m.user.username for m in workflow.maintainers] or None,
        "is_production": version.frozen,
        "images": images,
        "descriptor_type": [workflow.descriptor_type] if version.files else [],
        "containerfile": False,
        "meta_version": version.updated_at.isoformat(),
        "verified": False,
        "signed": False,
    }
    if version.commit:
        answer["dockyard_source"] = {
            "git_url": workflow.git_url,
            "reference": version.name,
            "commit": version.commit,
            "url": source_link(workflow.git_url, version.commit),
            "frozen": version.frozen,
        }
    return _without_nulls(answer)


def file_wrapper(
    file: FileRow, url: str, git_url: str | None = None, commit: str | None = None
) -> dict[str, Any]:
    """A TRS FileWrapper: content, sha-256 checksum and where it is served.

    A file read from GitHub, GitLab or Bitbucket at `commit` of `git_url` points at the raw
    file of that commit there.
    """
    if git_url and commit:
        url = raw_url(git_url, commit, file.path) or url
    return {
        "content": file.content,
        "checksum": [{"checksum": file.sha256, "type": "sha-256"}],
        "url": url,
    }


def tool_file(file: FileRow, primary: FileRow | None) -> dict[str, Any]:
    """A TRS ToolFile, its path relative to the primary descriptor's directory."""
    return {
        "path": relative_to_primary(file.path, primary),
        "file_type": file.file_type,
        "checksum": {"checksum": file.sha256, "type": "sha-256"},
    }


def relative_to_primary(path: str, primary: FileRow | None) -> str:
    """A version path as seen from the primary descriptor's directory."""
    directory = primary.path.rpartition("/")[0] if primary else ""
    if directory and path.startswith(directory + "/"):
        return path[len(directory) + 1 :]
    return path


def descriptor_type(text: str) -> tuple[DescriptorType, bool] | None:
    """The descriptor type a path segment names, and whether it asks for the plain file."""
    upper = text.upper().replace("-", "_")
    plain = upper.startswith("PLAIN_")
    kind = upper.removeprefix("PLAIN_")
    if kind not in DescriptorType.__members__:
        return None
    return DescriptorType(kind), plain


@functools.lru_cache(maxsize=16384)
def _encoded(text: str) -> str:
    """A path segment percent-encoded (kept: a page of tools encodes each id once per version)."""
    return quote(text, safe="")


def _without_nulls(value: dict[str, Any]) -> dict[str, Any]:
    return {key: item for key, item in value.items() if item is not None}
