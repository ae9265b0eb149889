"""REST adapter for tools, versions, files and maintainers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import PlainTextResponse

from dockyard.http import CallerDep, CatalogDep, SessionDep, UserDep
from dockyard.tools import services
from dockyard.tools.schemas import (
    FilesIn,
    ImageModel,
    MaintainerIn,
    ToolIn,
    ToolList,
    ToolOut,
    ToolPatch,
    VersionIn,
    VersionList,
    VersionOut,
    VersionPatch,
)

router = APIRouter(prefix="/api/tools", tags=["tools"])


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
    sort: Annotated[
        str, Query(description="name, updated or created; '-' for descending")
    ] = "name",
    limit: Annotated[int, Query(ge=1, le=services.MAX_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ToolList:
    """Tools visible to the caller, searched, filtered, sorted and paged."""
    page = services.find_tools(
        session,
        caller,
        services.ToolQuery(
            q=q,
            path=path,
            mine=mine,
            registry=registry,
            namespace=namespace,
            private=private,
            published=published,
            descriptor_type=descriptor_type,
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
def get_tool(tool_id: int, caller: CallerDep, session: SessionDep, catalog: CatalogDep) -> ToolOut:
    """One tool, if the caller may see it."""
    return ToolOut.of(services.visible_tool(session, caller, tool_id), caller, catalog)


@router.patch("/{tool_id}")
def update_tool(
    tool_id: int, body: ToolPatch, user: UserDep, session: SessionDep, catalog: CatalogDep
) -> ToolOut:
    """Change a tool's description, maintainer email, visibility, default version or source."""
    changes = body.model_dump(exclude_unset=True)
    if "source" in changes and body.source is not None:
        changes["source"] = body.source.model_dump()
    tool = services.update_tool(session, catalog, user, tool_id, **changes)
    return ToolOut.of(tool, user, catalog)


@router.delete("/{tool_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_tool(tool_id: int, user: UserDep, session: SessionDep) -> Response:
    """Delete a tool, its versions and files."""
    services.delete_tool(session, user, tool_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{tool_id}/publish")
def publish_tool(tool_id: int, user: UserDep, session: SessionDep, catalog: CatalogDep) -> ToolOut:
    """List the tool publicly (it needs at least one visible version)."""
    return ToolOut.of(services.publish(session, user, tool_id), user, catalog)


@router.post("/{tool_id}/unpublish")
def unpublish_tool(
    tool_id: int, user: UserDep, session: SessionDep, catalog: CatalogDep
) -> ToolOut:
    """Hide the tool from everyone but its maintainers."""
    return ToolOut.of(services.unpublish(session, user, tool_id), user, catalog)


@router.post("/{tool_id}/maintainers", status_code=status.HTTP_201_CREATED)
def add_maintainer(
    tool_id: int, body: MaintainerIn, user: UserDep, session: SessionDep, catalog: CatalogDep
) -> ToolOut:
    """Add a maintainer."""
    return ToolOut.of(services.add_maintainer(session, user, tool_id, body.username), user, catalog)


@router.delete("/{tool_id}/maintainers/{username}")
def remove_maintainer(
    tool_id: int, username: str, user: UserDep, session: SessionDep, catalog: CatalogDep
) -> ToolOut:
    """Remove a maintainer (never the last one)."""
    return ToolOut.of(services.remove_maintainer(session, user, tool_id, username), user, catalog)


@router.get("/{tool_id}/versions")
def list_versions(tool_id: int, caller: CallerDep, session: SessionDep) -> VersionList:
    """The tool's versions the caller may see."""
    tool = services.visible_tool(session, caller, tool_id)
    versions = services.visible_versions(tool, caller)
    return VersionList(items=[VersionOut.of(tool, v) for v in versions], total=len(versions))


@router.post("/{tool_id}/versions", status_code=status.HTTP_201_CREATED)
def add_version(tool_id: int, body: VersionIn, user: UserDep, session: SessionDep) -> VersionOut:
    """Add a version by hand."""
    version = services.add_version(
        session, user, tool_id, body.name, hidden=body.hidden, images=_images(body.images)
    )
    return VersionOut.of(version.tool, version)


@router.get("/{tool_id}/versions/{name}")
def get_version(tool_id: int, name: str, caller: CallerDep, session: SessionDep) -> VersionOut:
    """One version with its images and files."""
    tool = services.visible_tool(session, caller, tool_id)
    return VersionOut.of(tool, services.visible_version(tool, caller, name))


@router.patch("/{tool_id}/versions/{name}")
def update_version(
    tool_id: int, name: str, body: VersionPatch, user: UserDep, session: SessionDep
) -> VersionOut:
    """Hide or show a version, or replace its images."""
    version = services.update_version(
        session,
        user,
        tool_id,
        name,
        hidden=body.hidden,
        images=_images(body.images) if body.images is not None else None,
    )
    return VersionOut.of(version.tool, version)


@router.delete("/{tool_id}/versions/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_version(tool_id: int, name: str, user: UserDep, session: SessionDep) -> Response:
    """Delete a version and its files."""
    services.delete_version(session, user, tool_id, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{tool_id}/versions/{name}/files")
def replace_files(
    tool_id: int, name: str, body: FilesIn, user: UserDep, session: SessionDep
) -> VersionOut:
    """Replace all of a version's files."""
    version = services.replace_files(
        session,
        user,
        tool_id,
        name,
        [(f.path, f.file_type, f.descriptor_type, f.content) for f in body.files],
    )
    return VersionOut.of(version.tool, version)


@router.get("/{tool_id}/versions/{name}/files/{path:path}", response_class=PlainTextResponse)
def get_file(
    tool_id: int, name: str, path: str, caller: CallerDep, session: SessionDep
) -> PlainTextResponse:
    """The content of one file, as plain text."""
    tool = services.visible_tool(session, caller, tool_id)
    file = services.version_file(tool, caller, name, path)
    return PlainTextResponse(file.content, headers={"X-Checksum-Sha256": file.sha256})


def _images(images: list[ImageModel]) -> list[services.ImageSpec]:
    return [services.ImageSpec(**image.model_dump()) for image in images]
