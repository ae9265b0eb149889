"""REST adapter for access requests, decisions, notifications and registry requests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response, status
from sqlalchemy.orm import Session

from dockyard.access import decisions, events, pulls, registry_requests, rules, services
from dockyard.access.models import AccessRequest
from dockyard.accounts.models import User
from dockyard.api.schemas.access import (
    AccessEventList,
    AccessEventOut,
    AccessRequestIn,
    AccessRequestList,
    AccessRequestOut,
    DecisionIn,
    DecisionOut,
    EcrPolicyOut,
    GrantTokenIn,
    NotificationList,
    NotificationOut,
    PullInstructionsOut,
    RegistryRequestIn,
    RegistryRequestList,
    RegistryRequestOut,
    RegistryResolutionIn,
    RegistryStep,
)
from dockyard.context import AppContext
from dockyard.http import (
    CallerDep,
    CatalogDep,
    ContextDep,
    Id,
    Offset,
    OptionalId,
    SessionDep,
    UserDep,
    link_base,
    user_from_header,
)
from dockyard.registries.credentials import sealing_box

router = APIRouter(tags=["access"])
notifications_router = APIRouter(prefix="/api/notifications", tags=["notifications"])
registry_requests_router = APIRouter(prefix="/api/registry-requests", tags=["registries"])

Limit = Annotated[int, Query(ge=1, le=200)]


def _steps(context: AppContext, request: AccessRequest) -> list[str]:
    image = services.tool_image(context.catalog, request.tool)
    return rules.grant_steps(image, request.registry_identity)


def _out(context: AppContext, request: AccessRequest, viewer: User) -> AccessRequestOut:
    return AccessRequestOut.of(request, viewer, _steps(context, request))


@router.post("/api/tools/{tool_id}/access-requests", status_code=status.HTTP_201_CREATED)
def request_access(
    tool_id: Id,
    body: AccessRequestIn,
    request: Request,
    user: UserDep,
    session: SessionDep,
    context: ContextDep,
    background: BackgroundTasks,
) -> AccessRequestOut:
    """Ask a private tool's maintainers for permission to pull its image."""
    created = services.request_access(
        session,
        context.catalog,
        user,
        tool_id,
        registry_identity=body.registry_username,
        message=body.message,
        base_url=link_base(request),
    )
    background.add_task(context.send_queued_mail)
    return _out(context, created, user)


@router.get("/api/access-requests")
def list_requests(
    user: UserDep,
    session: SessionDep,
    context: ContextDep,
    role: Annotated[str, Query(description="all, mine (made by you) or inbox (to decide)")] = "all",
    status_: Annotated[str | None, Query(alias="status")] = None,
    tool_id: OptionalId = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> AccessRequestList:
    """Requests the caller made or may decide, newest first."""
    items, total = services.list_requests(
        session,
        user,
        services.RequestQuery(
            role=role, status=status_, tool_id=tool_id, limit=limit, offset=offset
        ),
    )
    return AccessRequestList(items=[_out(context, item, user) for item in items], total=total)


@router.get("/api/access-requests/{request_id}")
def get_request(
    request_id: Id, user: UserDep, session: SessionDep, context: ContextDep
) -> AccessRequestOut:
    """One request, for its requester and the tool's maintainers."""
    return _out(context, services.visible_request(session, user, request_id), user)


def _decide(
    context: AppContext,
    request: Request,
    background: BackgroundTasks,
    request_id: int,
    action: str,
    body: DecisionIn,
) -> DecisionOut:
    """Decide, then tell the other side by email after the answer."""
    background.add_task(context.send_queued_mail)
    header = request.headers.get("authorization")

    def caller(session: Session) -> User:
        return user_from_header(session, header, context.usage)

    def shape(decided: AccessRequest, user: User, step: decisions.Step) -> DecisionOut:
        return DecisionOut(
            request=_out(context, decided, user),
            registry_step=RegistryStep(method=step.method, detail=step.detail),
        )

    return decisions.decide(
        context,
        caller,
        request_id,
        action,
        reason=body.reason,
        apply=body.apply,
        base_url=link_base(request),
        shape=shape,
    )


@router.post("/api/access-requests/{request_id}/grant")
def grant(
    request_id: Id,
    request: Request,
    context: ContextDep,
    background: BackgroundTasks,
    body: DecisionIn | None = None,
) -> DecisionOut:
    """Grant a pending request; with `apply` (the default) dockyard does the registry part
    where it can (ECR policy with saved AWS credentials, Quay with a saved API token)."""
    return _decide(context, request, background, request_id, "grant", body or DecisionIn())


@router.post("/api/access-requests/{request_id}/deny")
def deny(
    request_id: Id,
    body: DecisionIn,
    request: Request,
    context: ContextDep,
    background: BackgroundTasks,
) -> DecisionOut:
    """Deny a pending request, with a reason the requester reads."""
    return _decide(context, request, background, request_id, "deny", body)


@router.post("/api/access-requests/{request_id}/revoke")
def revoke(
    request_id: Id,
    request: Request,
    context: ContextDep,
    background: BackgroundTasks,
    body: DecisionIn | None = None,
) -> DecisionOut:
    """Take back a granted request (and, with `apply`, the registry permission)."""
    return _decide(context, request, background, request_id, "revoke", body or DecisionIn())


@router.post("/api/access-requests/{request_id}/withdraw")
def withdraw(
    request_id: Id, request: Request, context: ContextDep, background: BackgroundTasks
) -> DecisionOut:
    """The requester withdraws their pending request."""
    return _decide(context, request, background, request_id, "withdraw", DecisionIn(apply=False))


@router.get("/api/tools/{tool_id}/access-log")
def access_log(
    tool_id: Id, user: UserDep, session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> AccessEventList:
    """The tool's access audit log, newest first (maintainers only)."""
    logged, total = events.audit_log(session, user, tool_id, limit=limit, offset=offset)
    return AccessEventList(items=[AccessEventOut.of(e) for e in logged], total=total)


@router.get("/api/tools/{tool_id}/pull-instructions")
def pull_instructions(
    tool_id: Id,
    caller: CallerDep,
    session: SessionDep,
    context: ContextDep,
    version: Annotated[str | None, Query(max_length=128)] = None,
) -> PullInstructionsOut:
    """Login and pull commands for the caller (private tools: maintainers and granted users)."""
    found = pulls.pull_instructions(session, context.catalog, caller, tool_id, version)
    context.usage.add(found.tool.id)
    return PullInstructionsOut.model_validate(found)


@router.get("/api/tools/{tool_id}/ecr-policy")
def ecr_policy(
    tool_id: Id,
    user: UserDep,
    session: SessionDep,
    catalog: CatalogDep,
    principal: Annotated[str, Query(min_length=1, max_length=600)],
) -> EcrPolicyOut:
    """The repository policy statement that lets `principal` pull (maintainers only)."""
    found = pulls.ecr_policy(session, catalog, user, tool_id, principal)
    return EcrPolicyOut.model_validate(found)


@router.put("/api/tools/{tool_id}/grant-token", status_code=status.HTTP_204_NO_CONTENT)
def set_grant_token(
    tool_id: Id, body: GrantTokenIn, user: UserDep, session: SessionDep, context: ContextDep
) -> Response:
    """Save a Quay API token that lets dockyard grant and revoke read access (write-only)."""
    sealed = sealing_box(context.settings).seal(body.token)
    pulls.set_grant_token(session, context.catalog, user, tool_id, sealed)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/api/tools/{tool_id}/grant-token", status_code=status.HTTP_204_NO_CONTENT)
def clear_grant_token(tool_id: Id, user: UserDep, session: SessionDep) -> Response:
    """Forget the tool's grant token."""
    pulls.clear_grant_token(session, user, tool_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@notifications_router.get("")
def list_notifications(
    user: UserDep,
    session: SessionDep,
    unread: bool = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> NotificationList:
    """The caller's in-app notices, newest first."""
    items, total = events.notifications(session, user, unread=unread, limit=limit, offset=offset)
    return NotificationList(items=[NotificationOut.of(i) for i in items], total=total)


@notifications_router.post("/{notification_id}/read")
def read_notification(notification_id: Id, user: UserDep, session: SessionDep) -> dict[str, int]:
    """Mark one notice read."""
    return {"marked": events.mark_read(session, user, notification_id)}


@notifications_router.post("/read-all")
def read_all_notifications(user: UserDep, session: SessionDep) -> dict[str, int]:
    """Mark all of the caller's notices read."""
    return {"marked": events.mark_read(session, user, None)}


@registry_requests_router.post("", status_code=status.HTTP_201_CREATED)
def request_registry(
    body: RegistryRequestIn, user: UserDep, session: SessionDep, catalog: CatalogDep
) -> RegistryRequestOut:
    """Ask the operators to support a registry this instance does not know."""
    return RegistryRequestOut.of(
        registry_requests.request_registry(session, catalog, user, body.host, body.reason)
    )


@registry_requests_router.get("")
def list_registry_requests(
    user: UserDep,
    session: SessionDep,
    status_: Annotated[str | None, Query(alias="status")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RegistryRequestList:
    """All registry requests for admins; the caller's own for everyone else."""
    items, total = registry_requests.registry_requests(
        session, user, status=status_, limit=limit, offset=offset
    )
    return RegistryRequestList(items=[RegistryRequestOut.of(i) for i in items], total=total)


@registry_requests_router.post("/{request_id}/resolve")
def resolve_registry_request(
    request_id: Id, body: RegistryResolutionIn, user: UserDep, session: SessionDep
) -> RegistryRequestOut:
    """An admin closes a registry request as added or declined."""
    return RegistryRequestOut.of(
        registry_requests.resolve_registry_request(
            session, user, request_id, body.status, body.note
        )
    )
