"""Shapes of organizations, their members and their collections in the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dockyard.accounts.models import Organization
from dockyard.catalog.models import Tool
from dockyard.collections.models import Collection
from dockyard.collections.services import Shown, collection_label
from dockyard.workflows.models import Workflow

Role = Literal["admin", "maintainer", "member"]


class OrganizationIn(BaseModel):
    """A new organization; its creator becomes its first admin."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40, examples=["smith-lab"])
    display_name: str | None = Field(default=None, max_length=100, examples=["Smith Lab"])
    description: str | None = Field(default=None, max_length=5000)


class OrganizationPatch(BaseModel):
    """An organization's display name or description."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=5000)


class MemberIn(BaseModel):
    """A member to add, or a member's new role."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=40)
    role: Role = "member"


class MemberOut(BaseModel):
    username: str
    role: Role


class EntryRef(BaseModel):
    """A tool or workflow as lists show it."""

    kind: Literal["tool", "workflow"]
    id: int
    #: Its TRS id.
    trs_id: str
    name: str

    @classmethod
    def of_tool(cls, tool: Tool) -> EntryRef:
        return cls(kind="tool", id=tool.id, trs_id=tool.path, name=tool.name)

    @classmethod
    def of_workflow(cls, workflow: Workflow) -> EntryRef:
        return cls(
            kind="workflow",
            id=workflow.id,
            trs_id=f"#workflow/{workflow.path}",
            name=workflow.name or workflow.repository,
        )

    @classmethod
    def of(cls, shown: Shown) -> EntryRef:
        if shown.tool is not None:
            return cls.of_tool(shown.tool)
        assert shown.workflow is not None
        return cls.of_workflow(shown.workflow)


class OrganizationOut(BaseModel):
    """An organization: its members, and what belongs to it that the caller may see."""

    name: str
    display_name: str
    description: str
    created_at: datetime
    members: list[MemberOut]
    tools: list[EntryRef]
    workflows: list[EntryRef]
    collections: list[str]

    @classmethod
    def of(
        cls,
        organization: Organization,
        tools: list[Tool],
        workflows: list[Workflow],
        collections: list[Collection],
    ) -> OrganizationOut:
        return cls(
            name=organization.name,
            display_name=organization.display_name,
            description=organization.description,
            created_at=organization.created_at,
            members=[
                MemberOut(username=m.user.username, role=m.role) for m in organization.members
            ],
            tools=[EntryRef.of_tool(tool) for tool in tools],
            workflows=[EntryRef.of_workflow(workflow) for workflow in workflows],
            collections=[collection.name for collection in collections],
        )


class OrganizationList(BaseModel):
    items: list[OrganizationOut]
    total: int


class CollectionIn(BaseModel):
    """A new collection: tools (by id or TRS id) and workflows (by TRS id), in order."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40, examples=["aligners"])
    display_name: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=5000)
    entries: list[int | str] = Field(
        default_factory=list,
        max_length=500,
        examples=[[12, "quay.io/biocontainers/bwa", "#workflow/github.com/lab/align"]],
    )


class CollectionPatch(BaseModel):
    """A collection's texts, or all its entries in their new order."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=5000)
    entries: list[int | str] | None = Field(default=None, max_length=500)


class CollectionOut(BaseModel):
    """A collection with the entries the caller may see, in order."""

    organization: str
    name: str
    display_name: str
    description: str
    #: The label its tools carry in TRS (`aliases`) and in searches.
    label: str
    entries: list[EntryRef]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, collection: Collection, shown: list[Shown]) -> CollectionOut:
        return cls(
            organization=collection.organization.name,
            name=collection.name,
            display_name=collection.display_name,
            description=collection.description,
            label=collection_label(collection),
            entries=[EntryRef.of(entry) for entry in shown],
            created_at=collection.created_at,
            updated_at=collection.updated_at,
        )


class CollectionList(BaseModel):
    items: list[CollectionOut]
    total: int
