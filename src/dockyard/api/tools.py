"""REST adapter for tools, versions, files and maintainers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from dockyard.api.schemas.tools import (
    CredentialsIn,
    CredentialsOut,
    FilesIn,
    ImageModel,
    MaintainerIn,
    StarOut,
    ToolIn,
    ToolList,
    ToolOut,
    ToolPatch,
    VersionIn,
    VersionList,
    VersionOut,
    VersionPatch,
)
from dockyard.catalog import contents, listing, services
from dockyard.context import AppContext
from dockyard.db import unit_of_work
from dockyard.errors import DockyardError
from dockyard.http import (
    CallerDep,
    CatalogDep,
    ContextDep,
    Id,
    Offset,
    SessionDep,
    UserDep,
    external_url,
    user_from_header,
)
from dockyard.refresh import webhooks
from dockyard.registries.credentials import sealing_box

router = APIRouter(prefix="/api/tools", tags=["tools"])
log = logging.getLogger("dockyard.refresh")
NDJSON = "application/x-ndjson"


@router.post("", status_code=status.HTTP_201_CREATED)
def register_tool(body: ToolIn, user: UserDep, session: SessionDep, catalog: CatalogDep) -> ToolOut:
    """Register an image as a tool; the caller becomes its first maintainer."""
    tool = services.register_tool(
        session,
        catalog,
        user,
        services.Registration(
            image=body.image,
            registry=body.registry,
            registry_path=body.registry_path,
            toolname=body.toolname,
            private=body.private,
            maintainer_email=body.maintainer_email,
            description=body.description,
            source=body.source.model_dump() if body.source else None,
        ),
    )
    return ToolOut.of(tool, user, catalog)


@router.get("")
def list_tools(
    caller: CallerDep,
    session: SessionDep,
    catalog: CatalogDep,
    q: Annotated[str | None, Query(max_length=200, description="words to search for")] = None,
    path: Annotated[str | None, Query(max_length=600, description="exact tool path")] = None,
    mine: bool = False,
    registry: Annotated[str | None, Query(max_length=40)] = None,
    namespace: Annotated[str | None, Query(max_length=255)] = None,
    private: bool | None = None,
    published: bool | None = None,
    descriptor_type: Annotated[str | None, Query(max_length=20)] = None,
    organization: Annotated[
        str | None, Query(max_length=40, description="the organization's name")
    ] = None,
    label: Annotated[str | None, Query(max_length=30, description="a label the tool has")] = None,
    sort: Annotated[
        str,
        Query(
            description="name, updated, created, stars or uses (-stars: most starred first); "
            "'-' for descending"
        ),
    ] = "name",
    limit: Annotated[int, Query(ge=1, le=listing.MAX_PAGE)] = 20,
    offset: Offset = 0,
) -> ToolList:
    """Tools visible to the caller, searched, filtered, sorted and paged."""
    page = listing.find_tools(
        session,
        caller,
        listing.ToolQuery(
            q=q,
            path=path,
            mine=mine,
            registry=registry,
            namespace=namespace,
            private=private,
            published=published,
            descriptor_type=descriptor_type,
            organization=organization,
            label=label,
            sort=sort,
            limit=limit,
            offset=offset,
        ),
    )
    return ToolList(
        items=[ToolOut.of(tool, caller, catalog) for tool in page.items],
        total=page.total,
        total_exact=page.total_exact,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{tool_id}")
def get_tool(tool_id: Id, caller: CallerDep, session: SessionDep, catalog: CatalogDep) -> ToolOut:
    """One tool, if the caller may see it."""
    return ToolOut.of_page(services.tool_page(session, caller, tool_id), caller, catalog)


@router.patch("/{tool_id}")
def update_tool(
    tool_id: Id, body: ToolPatch, user: UserDep, session: SessionDep, catalog: CatalogDep
) -> ToolOut:
    """Change a tool's description, maintainer email, visibility, default version or source."""
    changes = body.model_dump(exclude_unset=True)
    if "source" in changes and body.source is not None:
        changes["source"] = body.source.model_dump()
    tool = services.update_tool(session, catalog, user, tool_id, **changes)
    return ToolOut.of(tool, user, catalog)


@router.delete("/{tool_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_tool(tool_id: Id, user: UserDep, session: SessionDep) -> Response:
    """Delete a tool, its versions and files."""
    services.delete_tool(session, user, tool_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{tool_id}/publish")
def publish_tool(tool_id: Id, user: UserDep, session: SessionDep, catalog: CatalogDep) -> ToolOut:
    """List the tool publicly (it needs at least one visible version)."""
    return ToolOut.of(services.publish(session, user, tool_id), user, catalog)


@router.post("/{tool_id}/unpublish")
def unpublish_tool(tool_id: Id, user: UserDep, session: SessionDep, catalog: CatalogDep) -> ToolOut:
    """Hide the tool from everyone but its maintainers."""
    return ToolOut.of(services.unpublish(session, user, tool_id), user, catalog)


@router.post("/{tool_id}/maintainers", status_code=status.HTTP_201_CREATED)
def add_maintainer(
    tool_id: Id, body: MaintainerIn, user: UserDep, session: SessionDep, catalog: CatalogDep
) -> ToolOut:
    """Add a maintainer."""
    return ToolOut.of(services.add_maintainer(session, user, tool_id, body.username), user, catalog)


@router.delete("/{tool_id}/maintainers/{username}")
def remove_maintainer(
    tool_id: Id, username: str, user: UserDep, session: SessionDep, catalog: CatalogDep
) -> ToolOut:
    """Remove a maintainer (never the last one)."""
    return ToolOut.of(services.remove_maintainer(session, user, tool_id, username), user, catalog)


@router.put("/{tool_id}/star")
def star_tool(tool_id: Id, user: UserDep, session: SessionDep) -> StarOut:
    """Star a tool you may see (starring it again changes nothing)."""
    return StarOut(tool=tool_id, starred=True, stars=services.star(session, user, tool_id))


@router.delete("/{tool_id}/star")
def unstar_tool(tool_id: Id, user: UserDep, session: SessionDep) -> StarOut:
    """Take your star off a tool."""
    return StarOut(tool=tool_id, starred=False, stars=services.unstar(session, user, tool_id))


@router.get("/{tool_id}/versions")
def list_versions(tool_id: Id, caller: CallerDep, session: SessionDep) -> VersionList:
    """The tool's versions the caller may see."""
    tool = services.visible_tool(session, caller, tool_id)
    versions = services.visible_versions(tool, caller)
    return VersionList(items=[VersionOut.of(tool, v) for v in versions], total=len(versions))


@router.post("/{tool_id}/versions", status_code=status.HTTP_201_CREATED)
def add_version(tool_id: Id, body: VersionIn, user: UserDep, session: SessionDep) -> VersionOut:
    """Add a version by hand."""
    version = contents.add_version(
        session,
        user,
        tool_id,
        body.name,
        hidden=body.hidden,
        images=_images(body.images),
        description=body.description,
    )
    return VersionOut.of(version.tool, version)


@router.get("/{tool_id}/versions/{name}")
def get_version(tool_id: Id, name: str, caller: CallerDep, session: SessionDep) -> VersionOut:
    """One version with its images and files."""
    tool = services.visible_tool(session, caller, tool_id)
    return VersionOut.of(tool, services.visible_version(tool, caller, name))


@router.patch("/{tool_id}/versions/{name}")
def update_version(
    tool_id: Id, name: str, body: VersionPatch, user: UserDep, session: SessionDep
) -> VersionOut:
    """Hide or show a version, describe it, or replace its images."""
    version = contents.update_version(
        session,
        user,
        tool_id,
        name,
        hidden=body.hidden,
        description=body.description,
        images=_images(body.images) if body.images is not None else None,
    )
    return VersionOut.of(version.tool, version)


@router.delete("/{tool_id}/versions/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_version(tool_id: Id, name: str, user: UserDep, session: SessionDep) -> Response:
    """Delete a version and its files."""
    contents.delete_version(session, user, tool_id, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{tool_id}/versions/{name}/files")
def replace_files(
    tool_id: Id, name: str, body: FilesIn, user: UserDep, session: SessionDep
) -> VersionOut:
    """Replace all of a version's files."""
    version = contents.replace_files(
        session,
        user,
        tool_id,
        name,
        [(f.path, f.file_type, f.descriptor_type, f.content) for f in body.files],
    )
    return VersionOut.of(version.tool, version)


@router.get("/{tool_id}/versions/{name}/files/{path:path}", response_class=PlainTextResponse)
def get_file(
    tool_id: Id, name: str, path: str, caller: CallerDep, session: SessionDep
) -> PlainTextResponse:
    """The content of one file, as plain text."""
    tool = services.visible_tool(session, caller, tool_id)
    file = contents.version_file(tool, caller, name, path)
    return PlainTextResponse(file.content, headers={"X-Checksum-Sha256": file.sha256})


def _images(images: list[ImageModel]) -> list[contents.ImageSpec]:
    return [contents.ImageSpec(**image.model_dump()) for image in images]


@router.post("/{tool_id}/refresh", response_model=None)
async def refresh_tool(
    tool_id: Id, request: Request, context: ContextDep
) -> JSONResponse | StreamingResponse:
    """Read the tool's tags, digests and platforms from its registry now.

    With `Accept: application/x-ndjson` the answer streams one JSON event per line as tags
    are read (`tags`, `tag`, then `done` with the report, or `failed`/`error`).
    """
    from anyio import to_thread

    await to_thread.run_sync(
        _authorize_refresh, context, request.headers.get("authorization"), tool_id
    )
    if NDJSON in request.headers.get("accept", ""):
        return StreamingResponse(_refresh_events(context, tool_id), media_type=NDJSON)
    from dockyard.refresh.tasks import open_refresher

    async with open_refresher(context.settings, context.sessions, context.catalog) as refresher:
        report = await refresher.refresh(tool_id)
    return JSONResponse(report.as_dict(), status_code=502 if report.status == "failed" else 200)


def _authorize_refresh(context: AppContext, header: str | None, tool_id: int) -> None:
    with unit_of_work(context.sessions) as session:
        services.changeable_tool(session, user_from_header(session, header, context.usage), tool_id)


async def _refresh_events(context: AppContext, tool_id: int) -> AsyncIterator[str]:
    from dockyard.refresh.tasks import open_refresher

    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    async def run() -> None:
        try:
            async with open_refresher(
                context.settings, context.sessions, context.catalog
            ) as refresher:
                await refresher.refresh(tool_id, progress=queue.put)
        except DockyardError as error:
            await queue.put({"event": "error", "code": error.code, "message": error.message})
        except Exception:
            log.exception("refresh failed", extra={"tool_id": tool_id})
            await queue.put(
                {
                    "event": "error",
                    "code": "internal_error",
                    "message": "the refresh failed; see the server log",
                }
            )
        finally:
            await queue.put(None)

    task = asyncio.create_task(run())
    while (event := await queue.get()) is not None:
        yield json.dumps(event) + "\n"
    await task


@router.get("/{tool_id}/credentials")
def get_credentials(tool_id: Id, user: UserDep, session: SessionDep) -> CredentialsOut:
    """Whether the tool has registry credentials (never the secret)."""
    stored = services.get_credentials(session, user, tool_id)
    if stored is None:
        return CredentialsOut(configured=False)
    return CredentialsOut(
        configured=True, kind=stored.kind, username=stored.username, updated_at=stored.updated_at
    )


@router.put("/{tool_id}/credentials", status_code=status.HTTP_204_NO_CONTENT)
def set_credentials(
    tool_id: Id, body: CredentialsIn, user: UserDep, session: SessionDep, context: ContextDep
) -> Response:
    """Store registry credentials for refreshing this tool (encrypted; write-only)."""
    sealed = sealing_box(context.settings).seal(body.password)
    services.set_credentials(
        session, user, tool_id, kind=body.kind, username=body.username, sealed_secret=sealed
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{tool_id}/credentials", status_code=status.HTTP_204_NO_CONTENT)
def delete_credentials(tool_id: Id, user: UserDep, session: SessionDep) -> Response:
    """Forget the tool's registry credentials."""
    services.delete_credentials(session, user, tool_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{tool_id}/webhook", status_code=status.HTTP_201_CREATED)
def create_webhook(
    tool_id: Id, request: Request, user: UserDep, session: SessionDep, context: ContextDep
) -> dict[str, Any]:
    """A new push-webhook secret and the URL to give the registry (shown this once)."""
    tool, secret = webhooks.create_secret(session, user, tool_id)
    url = f"{external_url(request)}/api/webhooks/tools/{tool.id}"
    return {
        "url": f"{url}?token={secret}",
        "secret": secret,
        "instructions": {
            "dockerhub": f"Repository > Webhooks: add {url}?token=<secret>",
            "quay": (
                "Repository settings > Notifications > Push to repository > Webhook POST: "
                f"{url}?token=<secret>"
            ),
            "gitlab": f"Settings > Webhooks: URL {url}, Secret token <secret>",
            "harbor": f"Project > Webhooks: endpoint {url}, Auth header <secret>",
        },
    }


@router.delete("/{tool_id}/webhook", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(tool_id: Id, user: UserDep, session: SessionDep) -> Response:
    """Stop accepting push webhooks for the tool."""
    webhooks.disable(session, user, tool_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


hooks_router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


@hooks_router.post("/tools/{tool_id}", status_code=status.HTTP_202_ACCEPTED)
async def receive_webhook(tool_id: Id, request: Request, context: ContextDep) -> dict[str, str]:
    """A registry's push notification: the tool is refreshed as soon as a scheduler can."""
    from anyio import to_thread

    raw = await request.body()
    try:
        payload = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        payload = None
    secret = webhooks.presented_secret(request.query_params.get("token"), dict(request.headers))

    def accept() -> str:
        with unit_of_work(context.sessions) as session:
            return webhooks.receive(session, tool_id, secret, payload).path

    path = await to_thread.run_sync(accept)
    await context.queue_refresh("tool", tool_id)
    return {"status": "queued", "tool": path}
