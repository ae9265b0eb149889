"""Public pages: home, search, a tool's page and the registries; the rest are included here."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, quote_plus

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from dockyard.access import pulls, registry_requests
from dockyard.access import rules as access_rules
from dockyard.access.models import AccessRequest
from dockyard.access.services import tool_image
from dockyard.catalog import launch, listing, services
from dockyard.catalog.models import Tool, ToolVersion
from dockyard.catalog.rules import DescriptorType
from dockyard.errors import DockyardError, PermissionDenied
from dockyard.http import CatalogDep, SessionDep, external_url, get_context
from dockyard.registries.services import describe
from dockyard.sources.rules import source_link
from dockyard.web import access, account, manage, organizations, signin, workflows
from dockyard.web.files import rendered
from dockyard.web.security import CsrfDep, WebUserDep, redirect, render, signed_in
from dockyard.workflows import services as workflow_services
from dockyard.workflows.models import Workflow

router = APIRouter(include_in_schema=False)
PAGE = 20
DESCRIPTOR_TYPES = [kind.value for kind in DescriptorType]
SORTS = {
    "name": "Name",
    "-stars": "Most starred",
    "-updated": "Recently updated",
    "-created": "Newest",
}


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: WebUserDep, session: SessionDep) -> HTMLResponse:
    """Search, the newest tools and the most used ones."""

    def top(sort: str) -> list[Tool]:
        query = listing.ToolQuery(published=True, sort=sort, limit=8)
        return listing.find_tools(session, None, query).items

    return render(
        request,
        "home.html",
        {"title": "dockyard", "newest": top("-created"), "most_used": top("-uses")},
    )


FACET_NAMES = {
    "registry": "Registry",
    "descriptor_type": "Language",
    "access": "Image access",
    "organization": "Organization",
    "label": "Label",
}


@router.get("/search", response_class=HTMLResponse)
def search(
    request: Request,
    user: WebUserDep,
    session: SessionDep,
    catalog: CatalogDep,
    q: Annotated[str, Query(max_length=200)] = "",
    registry: Annotated[str, Query(max_length=40)] = "",
    descriptor_type: Annotated[str, Query(max_length=20)] = "",
    access_: Annotated[str, Query(alias="access", pattern="^(|public|private)$")] = "",
    kind: Annotated[str, Query(pattern="^(|tool|workflow)$")] = "",
    organization: Annotated[str, Query(max_length=40)] = "",
    label: Annotated[str, Query(max_length=30)] = "",
    sort: Annotated[str, Query(pattern="^(name|-stars|-updated|-created)$")] = "name",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    """Search results with filters."""
    query = listing.ToolQuery(
        q=q or None,
        registry=registry or None,
        descriptor_type=descriptor_type or None,
        private={"public": False, "private": True}.get(access_),
        organization=organization or None,
        label=label or None,
        sort=sort,
        limit=PAGE,
        offset=(page - 1) * PAGE,
    )
    names = {each.id: each.name for each in catalog.all()}
    facets = (
        listing.tool_facets(session, user, query, registry_names=names)
        if kind != "workflow"
        else {}
    )
    found = (
        listing.find_tools(session, user, query)
        if kind != "workflow"
        else listing.Page(items=[], total=0, total_exact=True, limit=PAGE, offset=0)
    )
    flows: list[Workflow] = []
    flow_total = 0
    # Workflows have no registry, private image, organization filter or labels of their own
    # here: those filters are tools'.
    if kind != "tool" and not (registry or access_ or organization or label):
        first = (page - 1) * PAGE if kind == "workflow" else 0
        flows, flow_total = workflow_services.find_workflows(
            session,
            user,
            workflow_services.WorkflowQuery(
                descriptor_type=descriptor_type or None,
                words=tuple(q.split()),
                limit=PAGE,
                offset=first,
            ),
        )
        if kind != "workflow" and page > 1:
            flows = []  # beside tools, the first page of workflows shows on the first page
    return render(
        request,
        "search.html",
        {
            "title": f"Search: {q}" if q else "All tools and workflows",
            "q": q,
            "found": found,
            "workflows": flows,
            "workflow_total": flow_total,
            "page": page,
            "pages": max(1, -(-max(found.total, flow_total if kind == "workflow" else 0) // PAGE)),
            "filters": {
                "registry": registry,
                "descriptor_type": descriptor_type,
                "access": access_,
                "sort": sort,
                "kind": kind,
                "organization": organization,
                "label": label,
            },
            "facets": facets,
            "tools_only": bool(registry or access_ or organization or label),
            "facet_names": FACET_NAMES,
            "registries": list(catalog.all()),
            "descriptor_types": DESCRIPTOR_TYPES,
            "sorts": SORTS,
        },
    )


@router.get("/tools/{path:path}", response_class=HTMLResponse)
def tool_page(
    request: Request,
    path: str,
    user: WebUserDep,
    session: SessionDep,
    catalog: CatalogDep,
    version: Annotated[str | None, Query(max_length=128)] = None,
) -> HTMLResponse:
    """A tool: description, registry, versions with their images, files, pull commands."""
    tool = services.tool_by_path(session, user, path)
    versions = services.visible_versions(tool, user)
    chosen = (
        services.visible_version(tool, user, version)
        if version
        else tool.default_version or (versions[0] if versions else None)
    )
    registry = services.registry_of(catalog, tool)
    image = tool_image(catalog, tool)
    mine = None
    if user is not None and tool.private:
        mine = session.scalar(
            select(AccessRequest)
            .where(AccessRequest.tool_id == tool.id, AccessRequest.requester_id == user.id)
            .order_by(AccessRequest.id.desc())
        )
    encoded = quote(tool.path, safe="")
    granted = None  # a private image's login and pull commands, for those who may pull it
    if tool.private and user is not None:
        try:
            granted = pulls.pull_instructions(
                session, catalog, user, tool.id, chosen.name if chosen else None
            )
        except PermissionDenied:
            granted = None
    return render(
        request,
        "tool.html",
        {
            "title": tool.path,
            "tool": tool,
            "versions": versions,
            "chosen": chosen,
            "registry": registry,
            "site_url": registry.site_url(tool.host, tool.repository),
            "files": [rendered(file) for file in chosen.files] if chosen else [],
            "pull": access_rules.pull_lines(
                image, chosen.name if chosen else None, chosen.digest if chosen else None
            ),
            "trs": {
                "tool": f"/ga4gh/trs/v2/tools/{encoded}",
                "versions": f"/ga4gh/trs/v2/tools/{encoded}/versions",
            },
            "maintainer": tool.is_maintained_by(user),
            "starred": tool.id in services.starred_by(session, user, [tool.id]),
            "identity": access_rules.identity_rule(registry.id, registry.name),
            "my_request": mine,
            "granted": granted,
            "run": _launch(request, tool, chosen),
            "source_url": (
                source_link(tool.source["git_url"], chosen.source_commit)
                if tool.source and chosen and chosen.source_commit
                else None
            ),
        },
    )


def _launch(request: Request, tool: Tool, version: ToolVersion | None) -> launch.Launch | None:
    """Launch-with links and engine commands for a version with primary descriptors."""
    if version is None:
        return None
    kinds = {
        f.descriptor_type
        for f in version.files
        if f.file_type == "PRIMARY_DESCRIPTOR" and f.descriptor_type
    }
    if not kinds:
        return None
    return launch.launch(
        get_context(request).launch,
        base=external_url(request),
        trs_id=tool.path,
        version=version.name,
        languages=kinds,
        git_url=tool.source["git_url"] if tool.source else None,
    )


@router.get("/registries", response_class=HTMLResponse)
def registries_page(
    request: Request,
    user: WebUserDep,
    catalog: CatalogDep,
    image: Annotated[str | None, Query(max_length=600)] = None,
    registry_path: Annotated[str | None, Query(max_length=300)] = None,
) -> HTMLResponse:
    """Supported registries, what each asks of a user, and a reference checker."""
    resolution = None
    if image:
        _, resolution = describe(catalog, image, registry_path=registry_path or None)
    registries = list(catalog.all())
    return render(
        request,
        "registries.html",
        {
            "title": "Registries",
            "public": [r for r in registries if r.public],
            "private": [r for r in registries if not r.public],
            "image": image or "",
            "registry_path": registry_path or "",
            "resolution": resolution,
            "generic_enabled": catalog.generic_enabled,
        },
    )


@router.post("/registries/requests", dependencies=[CsrfDep])
def request_registry(
    request: Request,
    user: WebUserDep,
    session: SessionDep,
    catalog: CatalogDep,
    host: Annotated[str, Form(max_length=300)],
    reason: Annotated[str, Form(max_length=2000)],
) -> Response:
    """Ask the administrators to support a registry."""
    me = signed_in(request, user)
    try:
        created = registry_requests.request_registry(session, catalog, me, host, reason)
    except DockyardError as error:
        session.rollback()
        return redirect(request, f"/registries?error={quote_plus(error.message)}#missing")
    notice = f"Your request for {created.host} was sent to the administrators."
    return redirect(request, f"/registries?notice={quote_plus(notice)}")


@router.post("/stars/{tool_id}", dependencies=[CsrfDep])
def star(
    request: Request,
    tool_id: int,
    user: WebUserDep,
    session: SessionDep,
    action: Annotated[str, Form(pattern="^(star|unstar)$")],
) -> Response:
    """Star a tool, or take the star off, and come back to its page."""
    me = signed_in(request, user)
    tool = services.visible_tool(session, me, tool_id)
    if action == "star":
        services.star(session, me, tool_id)
        notice = f"Starred {tool.path}: find it under Starred in your tools."
    else:
        services.unstar(session, me, tool_id)
        notice = f"Took the star off {tool.path}."
    return redirect(request, f"/tools/{tool.path}?notice={quote_plus(notice)}")


router.include_router(account.router)
router.include_router(signin.router)
router.include_router(organizations.router)
router.include_router(manage.router)
router.include_router(access.router)
router.include_router(workflows.router)
