"""Sign-in, sign-out, and account settings with API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from dockyard.accounts import services as accounts
from dockyard.accounts.models import User
from dockyard.app_errors import status_for
from dockyard.db import unit_of_work
from dockyard.errors import AuthenticationRequired, DockyardError
from dockyard.http import ContextDep, Id, SessionDep, get_context
from dockyard.web.security import (
    SESSION_COOKIE,
    CsrfDep,
    WebUserDep,
    delete_cookie,
    get_cookie,
    redirect,
    render,
    set_cookie,
    signed_in,
)

router = APIRouter(include_in_schema=False)
#: How long a browser session cookie lives (as long as the session it names).
SESSION_SECONDS = int(accounts.SESSION_LIFETIME.total_seconds())


def safe_next(target: str | None) -> str:
    """Only paths on this site (never `//other.example` or a full URL)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/signin", response_class=HTMLResponse)
def signin_page(
    request: Request, context: ContextDep, user: WebUserDep, next: str = "/"
) -> HTMLResponse:
    """The sign-in form, and a button for each sign-in provider."""
    return render(
        request,
        "signin.html",
        {
            "title": "Sign in",
            "next": safe_next(next),
            "providers": list(context.providers.values()),
        },
    )


@router.post("/signin", dependencies=[CsrfDep])
def signin(
    request: Request,
    context: ContextDep,
    username: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the password (rate-limited) and start a browser session."""
    address = request.client.host if request.client else "unknown"
    request.state.user = None
    try:
        with unit_of_work(context.sessions) as session:
            accounts.check_sign_in_allowed(session, username, address)
            user = accounts.check_password(session, username, password)
            cookie = accounts.start_session(session, user)
    except AuthenticationRequired as error:
        with unit_of_work(context.sessions) as session:
            accounts.record_sign_in_failure(session, username, address)
        return signin_again(request, error, username=username, next=next)
    except DockyardError as error:  # rate-limited
        return signin_again(request, error, username=username, next=next)
    response = redirect(request, safe_next(next))
    set_cookie(response, request, SESSION_COOKIE, cookie, max_age=SESSION_SECONDS)
    return response


def signin_again(
    request: Request, error: DockyardError, *, username: str = "", next: str = "/"
) -> Response:
    """The sign-in page again, with what went wrong (its status the error's)."""
    request.state.user = None
    return render(
        request,
        "signin.html",
        {
            "title": "Sign in",
            "next": safe_next(next),
            "username": username,
            "error": error.message,
            "providers": list(get_context(request).providers.values()),
        },
        status_code=status_for(error),
    )


@router.post("/signout", dependencies=[CsrfDep])
def signout(request: Request, session: SessionDep) -> Response:
    """End the browser session."""
    accounts.end_session(session, get_cookie(request, SESSION_COOKIE))
    response = redirect(request, "/?notice=You+are+signed+out.")
    delete_cookie(response, request, SESSION_COOKIE)
    return response


@router.get("/account", response_class=HTMLResponse)
def account_settings(request: Request, user: WebUserDep, session: SessionDep) -> HTMLResponse:
    """Account settings: API tokens and the providers one signs in with."""
    return account_page(request, session, signed_in(request, user))


def account_page(
    request: Request,
    session: Session,
    me: User,
    *,
    new_token: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The account page, with a token shown once or what went wrong."""
    providers = get_context(request).providers
    identities = accounts.list_identities(session, me)
    return render(
        request,
        "account.html",
        {
            "title": "Account",
            "tokens": accounts.list_tokens(session, me),
            "new": new_token,
            "error": error,
            "identities": [(each, providers.get(each.provider)) for each in identities],
            "providers": list(providers.values()),
        },
        status_code=status_code,
    )


@router.post("/account/tokens", dependencies=[CsrfDep])
def create_token(
    request: Request,
    user: WebUserDep,
    session: SessionDep,
    name: Annotated[str, Form(max_length=100)],
) -> Response:
    """A new API token, shown once on the page that answers."""
    me = signed_in(request, user)
    _, plaintext = accounts.create_token(session, me, name=name)
    return account_page(request, session, me, new_token=plaintext)


@router.post("/account/tokens/{token_id}/revoke", dependencies=[CsrfDep])
def revoke_token(request: Request, token_id: Id, user: WebUserDep, session: SessionDep) -> Response:
    """Revoke one of the user's tokens."""
    accounts.revoke_token(session, signed_in(request, user), token_id)
    return redirect(request, "/account?notice=Token+revoked.")
