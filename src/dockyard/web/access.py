"""Access requests in the browser: asking, the maintainer's inbox, decisions, pull lines."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote_plus

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from dockyard.access import decisions, events, pulls, rules, services
from dockyard.access.models import AccessRequest
from dockyard.accounts.models import User
from dockyard.catalog import services as tool_services
from dockyard.db import unit_of_work
from dockyard.errors import DockyardError, PermissionDenied
from dockyard.http import ContextDep, Id, SessionDep, link_base
from dockyard.web.security import (
    CsrfDep,
    NeedsSignIn,
    WebUserDep,
    browser_user,
    redirect,
    render,
    signed_in,
)

router = APIRouter(prefix="/access", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def inbox(request: Request, user: WebUserDep, session: SessionDep) -> HTMLResponse:
    """Requests to decide (for maintainers) and the user's own requests."""
    me = signed_in(request, user)
    to_decide, _ = services.list_requests(
        session, me, services.RequestQuery(role="inbox", limit=200)
    )
    mine, _ = services.list_requests(session, me, services.RequestQuery(role="mine", limit=200))
    notices, unread = events.notifications(session, me, unread=True, limit=20, offset=0)
    return render(
        request,
        "access_inbox.html",
        {
            "title": "Access requests",
            "pending": [r for r in to_decide if r.status == "pending"],
            "decided": [r for r in to_decide if r.status != "pending"],
            "mine": mine,
            "notices": notices,
            "unread": unread,
        },
    )


@router.post("/notifications/read", dependencies=[CsrfDep])
def read_all(request: Request, user: WebUserDep, session: SessionDep) -> Response:
    """Mark all notices read."""
    events.mark_read(session, signed_in(request, user), None)
    return redirect(request, "/access")


@router.post("/request", dependencies=[CsrfDep])
def request_access(
    request: Request,
    user: WebUserDep,
    session: SessionDep,
    context: ContextDep,
    background: BackgroundTasks,
    tool_id: Annotated[int, Form()],
    registry_username: Annotated[str, Form(max_length=300)],
    message: Annotated[str, Form(max_length=rules.MESSAGE_MAX_LENGTH)] = "",
) -> Response:
    """Ask a private tool's maintainers for pull permission."""
    me = signed_in(request, user)
    try:
        created = services.request_access(
            session,
            context.catalog,
            me,
            tool_id,
            registry_identity=registry_username,
            message=message,
            base_url=link_base(request),
        )
    except DockyardError as error:
        session.rollback()
        tool = tool_services.visible_tool(session, me, tool_id)
        back = f"/tools/{tool.path}?error={quote_plus(error.message)}#access"
        return redirect(request, back)
    background.add_task(context.send_queued_mail)
    return redirect(
        request, f"/access/requests/{created.id}?notice=Your+request+was+sent+to+the+maintainers."
    )


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(
    request: Request, request_id: Id, user: WebUserDep, session: SessionDep, context: ContextDep
) -> HTMLResponse:
    """One request: decisions for maintainers; status and pull lines for the requester."""
    me = signed_in(request, user)
    found = services.visible_request(session, me, request_id)
    maintainer = found.tool.is_maintained_by(me)
    image = services.tool_image(context.catalog, found.tool)
    plan = None  # what dockyard itself would do in the registry on a grant
    if maintainer and found.status == "pending":
        plan = services.plan_decision(session, context.catalog, me, found.id, "grant")
    pull = None
    if found.status == "granted" and found.requester_id == me.id:
        try:
            pull = pulls.pull_instructions(session, context.catalog, me, found.tool.id, None)
            context.usage.add(found.tool.id)
        except PermissionDenied:
            pull = None
    return render(
        request,
        "access_request.html",
        {
            "title": f"Access request {found.id}",
            "item": found,
            "maintainer": maintainer,
            "steps": rules.grant_steps(image, found.registry_identity) if maintainer else [],
            "identity": rules.identity_rule(image.registry_id, image.registry_name),
            "pull": pull,
            "plan": plan,
            "error": request.query_params.get("error"),
        },
    )


def _decide(
    request: Request,
    context: ContextDep,
    background: BackgroundTasks,
    request_id: int,
    action: str,
    reason: str = "",
    apply: bool = True,
) -> Response:
    def caller(session: Session) -> User:
        return signed_in(request, browser_user(request, session))

    def shape(decided: AccessRequest, user: User, step: decisions.Step) -> str:
        said = f"Request {decided.id} is {decided.status}."
        if step.method != "manual":
            return f"{said} {step.detail}."
        if action == "grant":
            return (
                f"{said} dockyard did not change {decided.tool.host}: you gave "
                f"{decided.registry_identity} pull permission there yourself."
            )
        if action == "revoke":
            return (
                f"{said} dockyard did not change {decided.tool.host}: take the pull permission "
                f"of {decided.registry_identity} away there yourself."
            )
        return said

    page = f"/access/requests/{request_id}"
    try:
        notice = decisions.decide(
            context,
            caller,
            request_id,
            action,
            reason=reason,
            apply=apply,
            base_url=link_base(request),
            shape=shape,
        )
    except NeedsSignIn:
        raise
    except DockyardError as error:
        return redirect(request, f"{page}?error={quote_plus(error.message)}")
    background.add_task(context.send_queued_mail)
    return redirect(request, f"{page}?notice={quote_plus(notice)}")


@router.post("/requests/{request_id}/grant", dependencies=[CsrfDep])
def grant(
    request: Request,
    request_id: Id,
    context: ContextDep,
    background: BackgroundTasks,
    manual: Annotated[bool, Form()] = False,
) -> Response:
    """Grant: dockyard gives the permission in the registry where it can; where it cannot,
    the maintainer says they gave it (`manual`), or nothing is recorded."""
    if not manual:
        with unit_of_work(context.sessions, write=False) as session:
            me = signed_in(request, browser_user(request, session))
            try:
                plan = services.plan_decision(session, context.catalog, me, request_id, "grant")
            except DockyardError as error:
                return redirect(
                    request, f"/access/requests/{request_id}?error={quote_plus(error.message)}"
                )
        if plan.method == "manual":
            refused = (
                f"dockyard cannot give the permission in {plan.host} for this tool: give "
                f"{plan.identity} pull permission there yourself, then tick "
                "'I gave the permission myself' and grant again. Nothing was recorded."
            )
            return redirect(request, f"/access/requests/{request_id}?error={quote_plus(refused)}")
    return _decide(request, context, background, request_id, "grant", apply=not manual)


@router.post("/requests/{request_id}/deny", dependencies=[CsrfDep])
def deny(
    request: Request,
    request_id: Id,
    context: ContextDep,
    background: BackgroundTasks,
    reason: Annotated[str, Form(max_length=rules.REASON_MAX_LENGTH)] = "",
) -> Response:
    """Deny with a reason."""
    return _decide(request, context, background, request_id, "deny", reason=reason)


@router.post("/requests/{request_id}/revoke", dependencies=[CsrfDep])
def revoke(
    request: Request,
    request_id: Id,
    context: ContextDep,
    background: BackgroundTasks,
    reason: Annotated[str, Form(max_length=rules.REASON_MAX_LENGTH)] = "",
) -> Response:
    """Take back a granted request."""
    return _decide(request, context, background, request_id, "revoke", reason=reason)


@router.post("/requests/{request_id}/withdraw", dependencies=[CsrfDep])
def withdraw(
    request: Request, request_id: Id, context: ContextDep, background: BackgroundTasks
) -> Response:
    """The requester withdraws a pending request."""
    return _decide(request, context, background, request_id, "withdraw", apply=False)
