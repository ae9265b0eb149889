"""REST adapter for workflows: registration, refresh, versions, images, freezing, pinning."""

from __future__ import annotations

import json
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.orm import Session

from dockyard.accounts.models import User
from dockyard.api.schemas.workflows import (
    Registered,
    VersionOut,
    WorkflowIn,
    WorkflowList,
    WorkflowOut,
    WorkflowPatch,
)
from dockyard.context import AppContext
from dockyard.db import unit_of_work
from dockyard.errors import AuthenticationRequired, InvalidInput, NotFound
from dockyard.http import (
    CallerDep,
    ContextDep,
    Id,
    SessionDep,
    UserDep,
    external_url,
    user_from_header,
)
from dockyard.refresh.tasks import open_workflow_refresher
from dockyard.registries.credentials import sealing_box
from dockyard.workflows import pinning, services, webhooks
from dockyard.workflows.models import WorkflowVersion
from dockyard.workflows.rules import location, spec

router = APIRouter(prefix="/api/workflows", tags=["workflows"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def register_workflow(body: WorkflowIn, request: Request, context: ContextDep) -> Registered:
    """Register the workflows of a git repository and read their branches and tags once.

    With `descriptor_type` and `primary_descriptor_path`, one workflow; without them, one per
    entry of the repository's `.dockstore.yml` (default branch). The caller maintains them.
    """
    # The caller is known before git is read: anonymous callers are refused at once.
    caller = await to_thread.run_sync(_caller_id, context, request, "register workflows")
    async with open_workflow_refresher(
        context.settings, context.sessions, context.catalog
    ) as refresher:
        if body.descriptor_type is not None or body.primary_descriptor_path is not None:
            if body.descriptor_type is None or body.primary_descriptor_path is None:
                raise InvalidInput(
                    "give descriptor_type and primary_descriptor_path together, or neither to "
                    "register what the repository's .dockstore.yml declares"
                )
            registrations = [
                services.Registration(
                    git_url=body.git_url.strip(),
                    location=location(body.git_url),
                    spec=spec(
                        body.descriptor_type,
                        body.primary_descriptor_path,
                        name=body.name,
                        test_parameter_files=body.test_parameter_files,
                    ),
                    description=body.description,
                )
            ]
        else:
            registrations = await refresher.discover(body.git_url.strip())
        ids = await to_thread.run_sync(_register, context, caller, registrations)
        reports = [(await refresher.refresh(i, trigger="registration")).as_dict() for i in ids]
    publish = [i for i, r in zip(ids, registrations, strict=True) if r.publish]
    items = await to_thread.run_sync(_registered, context, caller, ids, publish)
    return Registered(items=items, reports=reports)


def _signed_in(session: Session, context: AppContext, request: Request, to: str) -> User:
    """The user the request's token names; `AuthenticationRequired` without one."""
    user = user_from_header(session, request.headers.get("authorization"), context.usage)
    if user is None:
        raise AuthenticationRequired(f"sign in (an API token) to {to}")
    return user


def _caller_id(context: AppContext, request: Request, to: str) -> int:
    with unit_of_work(context.sessions, write=False) as session:
        return _signed_in(session, context, request, to).id


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:  # deleted while git was read
        raise AuthenticationRequired("the account that sent this request no longer exists")
    return user


def _register(
    context: AppContext, user_id: int, registrations: list[services.Registration]
) -> list[int]:
    with unit_of_work(context.sessions) as session:
        user = _user(session, user_id)
        return [w.id for w in services.register(session, user, registrations)]


def _registered(
    context: AppContext, user_id: int, ids: list[int], publish: list[int]
) -> list[WorkflowOut]:
    """The registered workflows; those `.dockstore.yml` publishes, published where they can."""
    with unit_of_work(context.sessions) as session:
        user = _user(session, user_id)
        for workflow_id in publish:
            if services.publishable(services.visible_workflow(session, user, workflow_id)):
                services.update(session, user, workflow_id, published=True)
        return [WorkflowOut.of(services.visible_workflow(session, user, i), user) for i in ids]


@router.get("")
def list_workflows(
    caller: CallerDep,
    session: SessionDep,
    mine: bool = False,
    path: Annotated[str | None, Query(max_length=800, description="exact workflow path")] = None,
) -> WorkflowList:
    """Workflows the caller may see, by path (`mine`: those the caller maintains)."""
    workflows = services.visible_workflows(session, caller, mine=mine, path=path)
    return WorkflowList(items=[WorkflowOut.of(w, caller) for w in workflows], total=len(workflows))


@router.get("/{workflow_id}")
def get_workflow(workflow_id: Id, caller: CallerDep, session: SessionDep) -> WorkflowOut:
    """One workflow, if the caller may see it."""
    return WorkflowOut.of(services.visible_workflow(session, caller, workflow_id), caller)


@router.patch("/{workflow_id}")
def update_workflow(
    workflow_id: Id, body: WorkflowPatch, user: UserDep, session: SessionDep
) -> WorkflowOut:
    """Publish or unpublish a workflow, describe it, or move it into an organization."""
    changes = body.model_dump(exclude_unset=True)
    workflow = services.update(session, user, workflow_id, **changes)
    return WorkflowOut.of(workflow, user)


@router.delete("/{workflow_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_workflow(workflow_id: Id, user: UserDep, session: SessionDep) -> Response:
    """Delete a workflow with its versions, files and images."""
    services.delete(session, user, workflow_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{workflow_id}/refresh")
async def refresh_workflow(workflow_id: Id, request: Request, context: ContextDep) -> JSONResponse:
    """Read the workflow's branches and tags from git, and its images from their registries."""

    def authorize() -> None:
        with unit_of_work(context.sessions, write=False) as session:
            user = _signed_in(session, context, request, "refresh workflows")
            services.changeable_workflow(session, user, workflow_id)

    await to_thread.run_sync(authorize)
    async with open_workflow_refresher(
        context.settings, context.sessions, context.catalog
    ) as refresher:
        report = await refresher.refresh(workflow_id)
    return JSONResponse(report.as_dict(), status_code=502 if report.status == "failed" else 200)


@router.post("/{workflow_id}/webhook", status_code=status.HTTP_201_CREATED)
def create_webhook(
    workflow_id: Id, request: Request, user: UserDep, session: SessionDep, context: ContextDep
) -> dict[str, Any]:
    """A new push-webhook secret and the URL to give GitHub or GitLab (shown this once)."""
    box = sealing_box(context.settings)
    workflow, secret = webhooks.create_secret(session, user, workflow_id, box)
    url = f"{external_url(request)}/api/webhooks/workflows/{workflow.id}"
    return {
        "url": url,
        "secret": secret,
        "instructions": {
            "github": (
                f"Settings > Webhooks > Add webhook: Payload URL {url}, Content type "
                "application/json, Secret <secret>, the push event"
            ),
            "gitlab": (
                f"Settings > Webhooks: URL {url}, Secret token <secret>, Push events and "
                "Tag push events"
            ),
        },
    }


@router.delete("/{workflow_id}/webhook", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(workflow_id: Id, user: UserDep, session: SessionDep) -> Response:
    """Stop accepting push webhooks for the workflow."""
    webhooks.disable(session, user, workflow_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


hooks_router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


@hooks_router.post("/workflows/{workflow_id}", status_code=status.HTTP_202_ACCEPTED)
async def receive_webhook(workflow_id: Id, request: Request, context: ContextDep) -> dict[str, str]:
    """A GitHub or GitLab push: the workflow is refreshed as soon as a scheduler can."""
    body = await request.body()
    try:
        payload = json.loads(body) if body else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        payload = None
    box = sealing_box(context.settings)
    headers = {key.lower(): value for key, value in request.headers.items()}

    def accept() -> dict[str, str]:
        with unit_of_work(context.sessions) as session:
            workflow, due = webhooks.receive(session, workflow_id, box, body, headers, payload)
            status_text = "queued" if due else "acknowledged"
            return {"status": status_text, "workflow": services.trs_id(workflow)}

    answer = await to_thread.run_sync(accept)
    if answer["status"] == "queued":
        await context.queue_refresh("workflow", workflow_id)
    return answer


@router.get("/{workflow_id}/versions/{name}")
def get_version(workflow_id: Id, name: str, caller: CallerDep, session: SessionDep) -> VersionOut:
    """One version with its files, its images as resolved, and Galaxy's tool steps."""
    workflow = services.visible_workflow(session, caller, workflow_id)
    version = services.visible_version(workflow, caller, name)
    return VersionOut.of(version, services.tools_holding(session, caller, version.images))


@router.get("/{workflow_id}/versions/{name}/images")
def get_images(
    workflow_id: Id, name: str, caller: CallerDep, session: SessionDep
) -> list[dict[str, Any]]:
    """The version's images alone."""
    return [
        i.model_dump(mode="json") for i in get_version(workflow_id, name, caller, session).images
    ]


@router.get("/{workflow_id}/versions/{name}/files/{path:path}", response_class=PlainTextResponse)
def get_file(
    workflow_id: Id, name: str, path: str, caller: CallerDep, session: SessionDep
) -> PlainTextResponse:
    """The content of one file of a version, as plain text."""
    version = _version(session, caller, workflow_id, name)
    for file in version.files:
        if file.path == path.lstrip("/"):
            return PlainTextResponse(file.content, headers={"X-Checksum-Sha256": file.sha256})
    raise NotFound(f"version {name!r} has no file {path!r}")


@router.post("/{workflow_id}/versions/{name}/freeze")
def freeze_version(workflow_id: Id, name: str, user: UserDep, session: SessionDep) -> VersionOut:
    """Freeze a version: its files, checksums and image digests stay as they are now."""
    version = services.freeze(session, user, workflow_id, name)
    return VersionOut.of(version, services.tools_holding(session, user, version.images))


@router.get("/{workflow_id}/versions/{name}/pinned")
def pinned_bundle(workflow_id: Id, name: str, caller: CallerDep, session: SessionDep) -> Response:
    """A frozen version's files as a zip, every resolvable image pinned to its digest."""
    body, filename = pinning.version_bundle(_version(session, caller, workflow_id, name))
    return Response(
        body,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/{workflow_id}/versions/{name}/pinned/descriptor", response_class=PlainTextResponse)
def pinned_descriptor(
    workflow_id: Id, name: str, caller: CallerDep, session: SessionDep
) -> PlainTextResponse:
    """A frozen version's primary descriptor with its images pinned to their digests."""
    version = _version(session, caller, workflow_id, name)
    files, _ = pinning.pin_version(version)
    primary = version.primary_descriptor_path or version.workflow.primary_descriptor_path
    return PlainTextResponse(files[primary.lstrip("/")])


def _version(session: Session, caller: User | None, workflow_id: int, name: str) -> WorkflowVersion:
    workflow = services.visible_workflow(session, caller, workflow_id)
    return services.visible_version(workflow, caller, name)
