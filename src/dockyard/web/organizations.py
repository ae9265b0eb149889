"""Organizations and collections in the web UI: the list, an organization's page (members,
tools, workflows, collections, and the forms its admins and maintainers use), a collection's
page."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dockyard.accounts import organizations as orgs
from dockyard.accounts.models import ORGANIZATION_ROLES, User
from dockyard.app_errors import status_for
from dockyard.catalog import services as tools
from dockyard.catalog.models import Tool
from dockyard.collections import services as collections
from dockyard.db import unit_of_work
from dockyard.errors import DockyardError
from dockyard.http import ContextDep, SessionDep
from dockyard.web.security import (
    CsrfDep,
    FormAction,
    NeedsSignIn,
    WebUserDep,
    act_on_form,
    browser_user,
    redirect,
    render,
    signed_in,
)

router = APIRouter(prefix="/organizations", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def organizations_page(request: Request, user: WebUserDep, session: SessionDep) -> HTMLResponse:
    """Every organization, and a form to make one."""
    return render(
        request,
        "organizations.html",
        {
            "title": "Organizations",
            "organizations": orgs.list_organizations(session),
            "error": None,
            "values": {},
        },
    )


@router.post("", dependencies=[CsrfDep])
def create(
    request: Request,
    context: ContextDep,
    name: Annotated[str, Form(max_length=40)],
    display_name: Annotated[str, Form(max_length=100)] = "",
    description: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """Make an organization; its maker becomes its first admin."""
    try:
        with unit_of_work(context.sessions) as session:
            me = signed_in(request, browser_user(request, session))
            made = orgs.create_organization(
                session, me, name=name.strip(), display_name=display_name, description=description
            )
            target = f"/organizations/{quote(made.name)}"
    except NeedsSignIn:
        raise
    except DockyardError as error:
        with context.sessions() as session:
            request.state.user = browser_user(request, session)
            return render(
                request,
                "organizations.html",
                {
                    "title": "Organizations",
                    "organizations": orgs.list_organizations(session),
                    "error": error.message,
                    "values": {
                        "name": name,
                        "display_name": display_name,
                        "description": description,
                    },
                },
                status_code=status_for(error),
            )
    return redirect(request, f"{target}?notice=Organization+made;+you+are+its+admin.")


@router.get("/{name}", response_class=HTMLResponse)
def organization_page(
    request: Request, name: str, user: WebUserDep, session: SessionDep
) -> HTMLResponse:
    """An organization: who is in it, what belongs to it, its collections."""
    organization = orgs.get_organization(session, name)
    held_tools, held_workflows = collections.holdings(session, user, organization)
    role = organization.role_of(user)
    curates = user is not None and (user.is_admin or organization.maintained_by(user))
    return render(
        request,
        "organization.html",
        {
            "title": organization.display_name,
            "organization": organization,
            "tools": held_tools,
            "workflows": held_workflows,
            "collections": collections.collections_of(session, organization),
            "role": role,
            "manages": user is not None and (role == "admin" or user.is_admin),
            "curates": curates,
            "choices": _entry_choices(session, user, held_tools) if curates else [],
            "roles": ORGANIZATION_ROLES,
            "error": request.query_params.get("error"),
        },
    )


def _entry_choices(session: Session, user: User | None, held: list[Tool]) -> list[str]:
    """What a curator can put in a collection from the page, by TRS id: the organization's
    tools, then the tools they starred."""
    starred = tools.starred_tools(session, user) if user is not None else []
    return list(dict.fromkeys(tool.path for tool in [*held, *starred]))


def _act(request: Request, name: str, action: FormAction) -> Response:
    return act_on_form(request, f"/organizations/{quote(name)}", action)


@router.post("/{name}/members", dependencies=[CsrfDep])
def set_member(
    request: Request,
    name: str,
    context: ContextDep,
    username: Annotated[str, Form(max_length=40)],
    role: Annotated[str, Form(max_length=20)] = "member",
) -> Response:
    """Add a member, or change a member's role."""

    def act(session: Session, me: User) -> str:
        member = orgs.set_member(session, me, name, username=username.strip(), role=role)
        return f"{member.user.username} is a {member.role} of {name}."

    return _act(request, name, act)


@router.post("/{name}/members/{username}/remove", dependencies=[CsrfDep])
def remove_member(request: Request, name: str, username: str, context: ContextDep) -> Response:
    """Remove a member (or leave)."""

    def act(session: Session, me: User) -> str:
        orgs.remove_member(session, me, name, username=username)
        return f"{username} is no longer a member."

    return _act(request, name, act)


@router.post("/{name}/collections", dependencies=[CsrfDep])
async def create_collection(request: Request, name: str, context: ContextDep) -> Response:
    """Make a collection from the chosen tools, in the order they are listed."""
    form = await request.form()
    collection = str(form.get("collection_name", "")).strip()[:40]
    description = str(form.get("description", ""))[:5000]
    entries = [str(value) for value in form.getlist("entries")][: collections.MAX_ENTRIES]
    extra = str(form.get("more_entries", ""))[:20_000]
    entries += [line.strip() for line in extra.splitlines() if line.strip()]

    def act(session: Session, me: User) -> str:
        made = collections.create_collection(
            session, me, name, name=collection, description=description, entries=entries
        )
        count = len(made.entries)
        return (
            f"Collection {made.display_name} made with {count} entr{'y' if count == 1 else 'ies'}."
        )

    return await run_in_threadpool(_act, request, name, act)


@router.get("/{name}/collections/{collection}", response_class=HTMLResponse)
def collection_page(
    request: Request, name: str, collection: str, user: WebUserDep, session: SessionDep
) -> HTMLResponse:
    """A collection: its description and the entries the viewer may see, in order."""
    found = collections.get_collection(session, name, collection)
    return render(
        request,
        "collection.html",
        {
            "title": found.display_name,
            "collection": found,
            "entries": collections.shown_entries(found, user),
            "label": collections.collection_label(found),
        },
    )
