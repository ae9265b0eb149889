"""Shapes of access resources in the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dockyard.access import rules
from dockyard.access.models import AccessEvent, AccessRequest, Notification, RegistryRequest
from dockyard.accounts.models import User
from dockyard.api.schemas import Overlay


class AccessRequestIn(BaseModel):
    """A request for pull permission on a private tool."""

    model_config = ConfigDict(extra="forbid")

    registry_username: str = Field(
        min_length=1,
        max_length=300,
        description="your identity in the tool's registry: a username, or for Amazon ECR a "
        "12-digit AWS account id or IAM principal ARN",
        examples=["ada"],
    )
    message: str = Field(default="", max_length=rules.MESSAGE_MAX_LENGTH)


class DecisionIn(BaseModel):
    """A maintainer's decision; `apply=false` records it without touching the registry."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=rules.REASON_MAX_LENGTH)
    apply: bool = True


class ToolRef(BaseModel):
    """Which tool a request is about."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    path: str


class AccessRequestOut(BaseModel):
    """An access request, as its requester or the tool's maintainers see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    tool: ToolRef
    requester: str
    registry_identity: str
    message: str
    status: str
    reason: str | None
    grant_method: str | None
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None
    updated_at: datetime
    #: For maintainers: what to do in the registry to grant this request by hand.
    grant_steps: list[str] | None = None

    @classmethod
    def of(
        cls, request: AccessRequest, viewer: User, steps: list[str] | None = None
    ) -> AccessRequestOut:
        """The API view of a request for one of the people allowed to see it."""
        maintainer = request.tool.is_maintained_by(viewer)
        return cls.model_validate(
            Overlay(
                request,
                requester=request.requester.username,
                decided_by=request.decided_by.username if request.decided_by else None,
                grant_steps=steps if maintainer else None,
            )
        )


class AccessRequestList(BaseModel):
    """A page of access requests."""

    items: list[AccessRequestOut]
    total: int


class RegistryStep(BaseModel):
    """What was done in the registry for a decision."""

    method: str
    detail: str


class DecisionOut(BaseModel):
    """A decided request and its registry step."""

    request: AccessRequestOut
    registry_step: RegistryStep


class AccessEventOut(BaseModel):
    """One line of a tool's access audit log."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    request_id: int | None
    actor: str | None
    action: str
    detail: str
    created_at: datetime

    @classmethod
    def of(cls, event: AccessEvent) -> AccessEventOut:
        """The API view of an audit event."""
        return cls.model_validate(
            Overlay(event, actor=event.actor.username if event.actor else None)
        )


class AccessEventList(BaseModel):
    """A page of the audit log."""

    items: list[AccessEventOut]
    total: int


class NotificationOut(BaseModel):
    """An in-app notice."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    text: str
    link: str
    request_id: int | None
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, item: Notification) -> NotificationOut:
        """The API view of a notice."""
        return cls.model_validate(item)


class NotificationList(BaseModel):
    """A page of notices, with how many are unread in all."""

    items: list[NotificationOut]
    total: int


class PullInstructionsOut(BaseModel):
    """How the caller signs in and pulls the tool's image."""

    model_config = ConfigDict(from_attributes=True)

    tool: ToolRef
    access: str
    version: str | None
    digest: str | None
    login: list[dict[str, str]]
    pull: list[dict[str, str]]


class EcrPolicyOut(BaseModel):
    """The repository policy statement that lets one principal pull."""

    model_config = ConfigDict(from_attributes=True)

    tool: ToolRef
    principal: str
    registry_id: str
    region: str
    statement: dict[str, Any]
    command: str


class GrantTokenIn(BaseModel):
    """A registry API token that lets dockyard grant access itself (Quay)."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=4096)


class RegistryRequestIn(BaseModel):
    """A request to support a registry this instance does not know."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=300, examples=["registry.example.org"])
    reason: str = Field(min_length=1, max_length=rules.MESSAGE_MAX_LENGTH)


class RegistryResolutionIn(BaseModel):
    """An admin's answer to a registry request."""

    model_config = ConfigDict(extra="forbid")

    status: str = Field(pattern="^(added|declined)$")
    note: str = Field(default="", max_length=rules.MESSAGE_MAX_LENGTH)


class RegistryRequestOut(BaseModel):
    """A registry request."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    host: str
    reason: str
    requester: str
    status: str
    note: str | None
    created_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, item: RegistryRequest) -> RegistryRequestOut:
        """The API view of a registry request."""
        return cls.model_validate(Overlay(item, requester=item.requester.username))


class RegistryRequestList(BaseModel):
    """A page of registry requests."""

    items: list[RegistryRequestOut]
    total: int
