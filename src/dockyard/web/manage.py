"""My tools: registration, publishing, versions and files, maintainers and refresh."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote_plus

from anyio import to_thread
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from dockyard.accounts.models import User
from dockyard.accounts.organizations import organizations_of
from dockyard.catalog import contents, listing, rules, services
from dockyard.catalog.models import Tool
from dockyard.errors import DockyardError
from dockyard.http import CatalogDep, ContextDep, Id, SessionDep
from dockyard.refresh.tasks import open_refresher
from dockyard.registries.catalog import Catalog, Registry
from dockyard.registries.services import resolve
from dockyard.web.security import (
    CsrfDep,
    FormAction,
    WebUserDep,
    act_on_form,
    redirect,
    render,
    signed_in,
)

router = APIRouter(prefix="/my/tools", include_in_schema=False)
FILE_TYPES = [kind.value for kind in rules.FileType]
DESCRIPTOR_TYPES = [kind.value for kind in rules.DescriptorType]
#: Largest file accepted by the upload form (descriptors and Dockerfiles are small).
MAX_UPLOAD_BYTES = 1 << 20


def registry_notes(registry: Registry) -> list[str]:
    """What a person should know about a registry before registering a tool from it."""
    notes = []
    if registry.private_only:
        notes.append(
            f"{registry.name} is a private registry: tools from it must be registered as "
            "private, with a maintainer email where access requests go. A public tool from it "
            "is refused."
        )
    if registry.private_tools.value == "forbidden":
        notes.append(f"{registry.name} images are always public: a tool from it cannot be private.")
    if registry.needs_registry_path:
        example = (
            f" such as {registry.registry_path_example}" if registry.registry_path_example else ""
        )
        notes.append(f"Give the registry path (your registry's host{example}) and the repository.")
    return notes


def _mine(session: Session, me: User) -> list[Tool]:
    """The tools the user maintains (the first hundred, by name)."""
    return listing.find_tools(session, me, listing.ToolQuery(mine=True, limit=100)).items


def _form_context(catalog: Catalog, chosen: str, values: dict[str, str]) -> dict[str, object]:
    registries = list(catalog.all())
    registry = next((r for r in registries if r.id == chosen), None)
    return {
        "registries": registries,
        "chosen": registry,
        "notes": registry_notes(registry) if registry else [],
        "values": values,
    }


@router.get("", response_class=HTMLResponse)
def my_tools(
    request: Request,
    user: WebUserDep,
    session: SessionDep,
    catalog: CatalogDep,
    registry: str = "",
) -> HTMLResponse:
    """The signed-in user's tools and the registration form."""
    me = signed_in(request, user)
    return render(
        request,
        "my_tools.html",
        {
            "title": "My tools",
            "tools": _mine(session, me),
            "starred": services.starred_tools(session, me),
            **_form_context(catalog, registry, {}),
        },
    )


@router.get("/registration-fields", response_class=HTMLResponse)
def registration_fields(
    request: Request, user: WebUserDep, catalog: CatalogDep, registry: str = ""
) -> HTMLResponse:
    """The part of the registration form that depends on the registry (for htmx)."""
    signed_in(request, user)
    return render(request, "_registration_fields.html", _form_context(catalog, registry, {}))


@router.get("/image-notes", response_class=HTMLResponse)
def image_notes(
    request: Request,
    user: WebUserDep,
    catalog: CatalogDep,
    image: Annotated[str, Query(max_length=600)] = "",
    private: str = "",
) -> HTMLResponse:
    """What the image says about its registry, before the form is sent (for htmx): the
    registry's notes, and Private ticked when the registry has only private images."""
    signed_in(request, user)
    found, problem = None, None
    if image.strip():
        try:
            found = resolve(catalog, image.strip())
        except DockyardError as error:
            problem = error.message
    return render(
        request,
        "_image_notes.html",
        {
            "found": found,
            "problem": problem,
            "notes": registry_notes(found.registry) if found else [],
            "values": {"private": private == "true"},
        },
    )


@router.post("", dependencies=[CsrfDep])
def register(
    request: Request,
    user: WebUserDep,
    session: SessionDep,
    catalog: CatalogDep,
    image: Annotated[str, Form(max_length=600)],
    registry: Annotated[str, Form(max_length=40)] = "",
    registry_path: Annotated[str, Form(max_length=300)] = "",
    toolname: Annotated[str, Form(max_length=256)] = "",
    private: Annotated[bool, Form()] = False,
    maintainer_email: Annotated[str, Form(max_length=254)] = "",
    description: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """Register a tool; the form comes back with the reason when a rule says no."""
    me = signed_in(request, user)
    values = {
        "image": image,
        "registry_path": registry_path,
        "toolname": toolname,
        "maintainer_email": maintainer_email,
        "description": description,
        "private": "on" if private else "",
    }
    try:
        tool = services.register_tool(
            session,
            catalog,
            me,
            services.Registration(
                image=image.strip(),
                registry=registry or None,
                registry_path=registry_path.strip() or None,
                toolname=toolname.strip() or None,
                private=private,
                maintainer_email=maintainer_email.strip() or None,
                description=description,
            ),
        )
    except DockyardError as error:
        session.rollback()
        return render(
            request,
            "my_tools.html",
            {
                "title": "My tools",
                "tools": _mine(session, me),
                "error": error.message,
                **_form_context(catalog, registry, values),
            },
            status_code=422,
        )
    return redirect(request, f"/my/tools/{tool.id}?notice=Registered+{quote_plus(tool.path)}.")


@router.get("/{tool_id}", response_class=HTMLResponse)
def manage_tool(
    request: Request, tool_id: Id, user: WebUserDep, session: SessionDep, catalog: CatalogDep
) -> HTMLResponse:
    """Everything a maintainer changes about one tool."""
    me = signed_in(request, user)
    tool = services.changeable_tool(session, me, tool_id)
    return render(
        request,
        "manage_tool.html",
        {
            "title": f"Manage {tool.path}",
            "tool": tool,
            "registry": services.registry_of(catalog, tool),
            "file_types": FILE_TYPES,
            "descriptor_types": DESCRIPTOR_TYPES,
            "error": request.query_params.get("error"),
            "organizations": [
                each for each in organizations_of(session, me) if each.maintained_by(me)
            ],
        },
    )


def _back(tool_id: int, notice: str) -> str:
    return f"/my/tools/{tool_id}?notice={quote_plus(notice)}"


def _act(request: Request, tool_id: int, action: FormAction) -> Response:
    return act_on_form(request, f"/my/tools/{tool_id}", action)


@router.post("/{tool_id}/publish", dependencies=[CsrfDep])
def publish(request: Request, tool_id: Id, context: ContextDep) -> Response:
    """Publish the tool."""

    def act(session: Session, me: User) -> str:
        services.publish(session, me, tool_id)
        return "Published."

    return _act(request, tool_id, act)


@router.post("/{tool_id}/unpublish", dependencies=[CsrfDep])
def unpublish(request: Request, tool_id: Id, context: ContextDep) -> Response:
    """Unpublish the tool."""

    def act(session: Session, me: User) -> str:
        services.unpublish(session, me, tool_id)
        return "Unpublished."

    return _act(request, tool_id, act)


@router.post("/{tool_id}/versions", dependencies=[CsrfDep])
def add_version(
    request: Request,
    tool_id: Id,
    context: ContextDep,
    name: Annotated[str, Form(max_length=128)],
    description: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """Add a version by hand."""

    def act(session: Session, me: User) -> str:
        contents.add_version(session, me, tool_id, name.strip(), description=description)
        return f"Version {name.strip()} added."

    return _act(request, tool_id, act)


@router.post("/{tool_id}/versions/{name}/files", dependencies=[CsrfDep])
async def upload_file(
    request: Request,
    tool_id: Id,
    name: str,
    context: ContextDep,
    upload: Annotated[UploadFile, File()],
    file_type: Annotated[str, Form(max_length=32)],
    descriptor_type: Annotated[str, Form(max_length=16)] = "",
    path: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    """Add (or replace) one file of a version."""
    raw = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(raw) > MAX_UPLOAD_BYTES:
        return redirect(request, _back(tool_id, f"{upload.filename} is over 1 MiB; not added."))
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError:
        return redirect(request, _back(tool_id, f"{upload.filename} is not UTF-8 text; not added."))
    target = path.strip() or (upload.filename or "file")

    def act(session: Session, me: User) -> str:
        tool = services.changeable_tool(session, me, tool_id)
        version = services.visible_version(tool, me, name)
        replaced = rules.normalize_file_path(target)
        kept = [
            (f.path, f.file_type, f.descriptor_type, f.content)
            for f in version.files
            if f.path != replaced
        ]
        new = (target, file_type, descriptor_type or None, content)
        contents.replace_files(session, me, tool_id, name, [*kept, new])
        return f"{target} saved in version {name}."

    return await to_thread.run_sync(_act, request, tool_id, act)


@router.post("/{tool_id}/finding", dependencies=[CsrfDep])
def set_finding(
    request: Request,
    tool_id: Id,
    context: ContextDep,
    labels: Annotated[str, Form(max_length=500)] = "",
    organization: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Set the tool's labels and the organization it belongs to."""

    def act(session: Session, me: User) -> str:
        tool = services.update_tool(
            session,
            context.catalog,
            me,
            tool_id,
            labels=[label for label in labels.replace(",", " ").split() if label],
            organization=organization.strip() or None,
        )
        where = f" It belongs to {tool.organization.display_name}." if tool.organization else ""
        return f"Labels saved.{where}"

    return _act(request, tool_id, act)


@router.post("/{tool_id}/maintainers", dependencies=[CsrfDep])
def add_maintainer(
    request: Request,
    tool_id: Id,
    context: ContextDep,
    username: Annotated[str, Form(max_length=40)],
) -> Response:
    """Add a maintainer."""

    def act(session: Session, me: User) -> str:
        services.add_maintainer(session, me, tool_id, username.strip())
        return f"{username.strip()} is now a maintainer."

    return _act(request, tool_id, act)


@router.post("/{tool_id}/maintainers/{username}/remove", dependencies=[CsrfDep])
def remove_maintainer(
    request: Request, tool_id: Id, username: str, context: ContextDep
) -> Response:
    """Remove a maintainer."""

    def act(session: Session, me: User) -> str:
        services.remove_maintainer(session, me, tool_id, username)
        return f"{username} is no longer a maintainer."

    return _act(request, tool_id, act)


@router.post("/{tool_id}/refresh", dependencies=[CsrfDep])
async def refresh(request: Request, tool_id: Id, context: ContextDep) -> Response:
    """Read the tool's tags, digests and platforms from its registry now."""

    def may_refresh(session: Session, me: User) -> str:
        services.changeable_tool(session, me, tool_id)
        return ""

    check = await to_thread.run_sync(_act, request, tool_id, may_refresh)
    if "error=" in check.headers.get("location", ""):
        return check
    async with open_refresher(context.settings, context.sessions, context.catalog) as refresher:
        report = await refresher.refresh(tool_id)
    if report.status == "failed":  # an error, on the page it concerns (and kept on the tool)
        failed = quote_plus(f"Refresh failed: {report.message}")
        return redirect(request, f"/my/tools/{tool_id}?error={failed}")
    return redirect(request, _back(tool_id, f"Refresh {report.status}: {report.tags} tags"))
