"""Shapes of workflows, their versions, files and images in the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from dockyard.accounts.models import User
from dockyard.api.schemas import Overlay
from dockyard.catalog.models import Tool
from dockyard.workflows.models import Workflow, WorkflowFile, WorkflowImage, WorkflowVersion
from dockyard.workflows.services import trs_id, visible_versions


class WorkflowIn(BaseModel):
    """A registration: a git repository, and the workflow in it unless `.dockstore.yml` says."""

    model_config = ConfigDict(extra="forbid")

    git_url: str = Field(
        min_length=1, max_length=1000, examples=["https://github.com/lab/rnaseq.git"]
    )
    descriptor_type: str | None = Field(
        default=None, description="CWL, WDL, NFL, GALAXY or SMK; leave out to read .dockstore.yml"
    )
    primary_descriptor_path: str | None = Field(
        default=None, max_length=1024, examples=["/main.wdl"]
    )
    name: str | None = Field(default=None, max_length=256)
    test_parameter_files: list[str] = Field(default_factory=list, max_length=50)
    description: str = Field(default="", max_length=10_000)


class WorkflowPatch(BaseModel):
    """Editable fields of a workflow; leave out what should not change."""

    model_config = ConfigDict(extra="forbid")

    published: bool | None = None
    description: str | None = Field(default=None, max_length=10_000)
    organization: str | None = Field(
        default=None, description="the organization it belongs to (its name); null for none"
    )


class WorkflowOut(BaseModel):
    """A workflow as the caller may see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    path: str
    trs_id: str
    git_url: str
    host: str
    namespace: str
    repository: str
    name: str | None
    descriptor_type: str
    primary_descriptor_path: str
    test_parameter_files: list[str]
    from_dockstore_yml: bool
    filters: dict[str, Any]
    authors: list[dict[str, Any]]
    description: str
    published: bool
    versions: list[str]
    maintainers: list[str]
    #: The organization it belongs to (its name), if any.
    organization: str | None = None
    refreshed_at: datetime | None
    refresh_status: str | None
    refresh_message: str | None = None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None

    @classmethod
    def of(cls, workflow: Workflow, user: User | None) -> WorkflowOut:
        """The API view of a workflow for this caller."""
        insider = workflow.is_maintained_by(user) or (user is not None and user.is_admin)
        return cls.model_validate(
            Overlay(
                workflow,
                trs_id=trs_id(workflow),
                versions=[v.name for v in visible_versions(workflow, user)],
                maintainers=[m.user.username for m in workflow.maintainers],
                organization=workflow.organization.name if workflow.organization else None,
                refresh_message=workflow.refresh_message if insider else None,
            )
        )


class WorkflowList(BaseModel):
    """Workflows, one page."""

    items: list[WorkflowOut]
    total: int


class Registered(BaseModel):
    """The workflows a registration made, each refreshed once."""

    items: list[WorkflowOut]
    reports: list[dict[str, Any]]


class HoldingTool(BaseModel):
    """The tool in dockyard that holds an image: where to ask for access to a private one."""

    id: int
    path: str
    url: str
    request_access_url: str


class ImageOut(BaseModel):
    """One image a version's descriptors name, and what its registry says of it."""

    model_config = ConfigDict(from_attributes=True)

    reference: str
    image: str | None
    registry: str | None
    file: str
    line: int
    engine: str | None
    digest: str | None
    platforms: list[str]
    size: int | None
    private: bool
    problems: list[str]
    resolved_at: datetime | None
    tool: HoldingTool | None = None

    @classmethod
    def of(cls, image: WorkflowImage, tool: Tool | None) -> ImageOut:
        """An image with its problems in one list and its tool, where dockyard has one."""
        holder = None
        if tool is not None:
            url = f"/tools/{quote(tool.path)}"
            holder = HoldingTool(
                id=tool.id, path=tool.path, url=url, request_access_url=f"{url}#access"
            )
        return cls.model_validate(
            Overlay(
                image,
                registry=image.registry_id,
                problems=[*image.read_problems, *image.resolve_problems],
                tool=holder,
            )
        )


class FileOut(BaseModel):
    """A file of a version (its content through `/files/{path}`)."""

    model_config = ConfigDict(from_attributes=True)

    path: str
    file_type: str
    sha256: str
    size: int

    @classmethod
    def of(cls, file: WorkflowFile) -> FileOut:
        """A file's metadata."""
        return cls.model_validate(file)


class VersionOut(BaseModel):
    """A version with its files and images."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    reference_type: str
    commit: str | None
    primary_descriptor_path: str | None
    hidden: bool
    frozen: bool
    frozen_at: datetime | None
    checked_at: datetime | None
    updated_at: datetime
    problem: str | None
    files: list[FileOut]
    images: list[ImageOut]
    tools: list[dict[str, Any]]

    @classmethod
    def of(cls, version: WorkflowVersion, tools: dict[str, Tool]) -> VersionOut:
        """A version, each image with the tool that holds it (from `tools_holding`)."""
        return cls.model_validate(
            Overlay(
                version,
                files=[FileOut.of(f) for f in version.files],
                images=[
                    ImageOut.of(i, tools.get(i.image) if i.image else None) for i in version.images
                ],
            )
        )
