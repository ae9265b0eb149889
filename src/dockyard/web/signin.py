"""Sign-in through the operator's providers (OpenID Connect, GitHub), and connecting more
of them to an account.

    GET  /signin/oidc/{key}           to the provider, with state, nonce and a PKCE challenge
    GET  /signin/oidc/{key}/callback  the provider's answer: checked, then a browser session
    POST /signin/oidc/finish          a new account's details the provider did not give
    GET  /signin/oidc/{key}?connect=  a signed-in user connects another provider
    POST /account/identities/{id}/remove

The state is stored (by digest) with the browser that started the sign-in and is used once:
a forged or replayed answer, or one carried to another browser, finds nothing to finish.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from dockyard.accounts import services as accounts
from dockyard.accounts.models import User
from dockyard.accounts.providers import Identity, Provider
from dockyard.context import AppContext
from dockyard.db import unit_of_work
from dockyard.errors import (
    Conflict,
    DockyardError,
    InvalidInput,
    NotFound,
    ProviderUnavailable,
    SignInRefused,
)
from dockyard.http import ContextDep, Id, SessionDep, external_url
from dockyard.web.account import SESSION_SECONDS, account_page, safe_next, signin_again
from dockyard.web.security import (
    SESSION_COOKIE,
    CsrfDep,
    CsrfRejected,
    WebUserDep,
    browser_secret,
    csrf_token,
    read_signed,
    redirect,
    render,
    set_cookie,
    sign_text,
    signed_in,
    with_csrf_cookie,
)

router = APIRouter(include_in_schema=False)

#: How long a new account's details form stays good after the provider's answer.
DETAILS_SECONDS = 15 * 60


def _provider(context: AppContext, key: str) -> Provider:
    provider = context.providers.get(key)
    if provider is None:
        known = ", ".join(context.providers) or "none is configured"
        raise NotFound(f"no sign-in provider {key!r} here ({known})")
    return provider


def _callback(request: Request, provider: Provider) -> str:
    return f"{external_url(request)}/signin/oidc/{provider.key}/callback"


@router.get("/signin/oidc/{key}")
def start(
    request: Request,
    key: str,
    context: ContextDep,
    user: WebUserDep,
    next: str = "/",
    connect: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """Send the browser to the provider's sign-in. With `connect` (the page's CSRF token,
    from the account page's link) the identity is connected to the signed-in account.

    A link, not a form: a form's submission may not be redirected to another site under
    the pages' Content-Security-Policy (`form-action 'self'`)."""
    provider = _provider(context, key)
    link_user_id = None
    if connect is not None:
        if not hmac.compare_digest(connect, csrf_token(request)):
            raise CsrfRejected("this link has expired: open your account page and try again")
        link_user_id = signed_in(request, user).id
        next = "/account"
    with unit_of_work(context.sessions) as session:
        begun = accounts.start_sign_in(
            session,
            provider=provider.key,
            browser=browser_secret(request),
            next_path=safe_next(next),
            link_user_id=link_user_id,
        )
    return _to_provider(request, context, provider, begun)


def _to_provider(
    request: Request, context: AppContext, provider: Provider, begun: accounts.SignInStart
) -> Response:
    try:
        target = context.signin.begin(
            provider,
            redirect_uri=_callback(request, provider),
            state=begun.state,
            nonce=begun.nonce,
            code_verifier=begun.code_verifier,
        )
    except DockyardError as error:
        return signin_again(request, error)
    response = RedirectResponse(target, status_code=303)
    with_csrf_cookie(request, response)  # the browser the state is bound to
    return response


@router.get("/signin/oidc/{key}/callback")
async def callback(request: Request, key: str, context: ContextDep) -> Response:
    """The provider's answer: check it all, then sign the browser in (or say why not)."""
    query = request.query_params
    try:
        provider = _provider(context, key)
        if "error" in query:
            # The person cancelled, or the provider refused; its words, shortened.
            said = (query.get("error_description") or query["error"])[:200]
            raise SignInRefused(f"{provider.display_name} did not sign you in: {said}")
        state, code = query.get("state"), query.get("code")
        if not state or not code:
            raise SignInRefused("this sign-in answer has no code or state: sign in again")
        return await run_in_threadpool(_finish, request, context, provider, state, code)
    except (SignInRefused, ProviderUnavailable, NotFound, Conflict) as error:
        return signin_again(request, error)


def _finish(
    request: Request, context: AppContext, provider: Provider, state: str, code: str
) -> Response:
    # Taken (and so spent) in its own transaction, before the provider is asked anything.
    with unit_of_work(context.sessions) as session:
        attempt = accounts.take_sign_in(
            session, provider=provider.key, state=state, browser=browser_secret(request)
        )
        next_path, link_user_id = attempt.next_path, attempt.link_user_id
        nonce, verifier = attempt.nonce, attempt.code_verifier
    identity = context.signin.finish(
        provider,
        redirect_uri=_callback(request, provider),
        code=code,
        code_verifier=verifier,
        nonce=nonce,
        issuer_parameter=request.query_params.get("iss"),
    )
    return _sign_in(request, context, provider, identity, next_path, link_user_id)


def _sign_in(
    request: Request,
    context: AppContext,
    provider: Provider,
    identity: Identity,
    next_path: str,
    link_user_id: int | None,
    *,
    username: str | None = None,
    email: str | None = None,
) -> Response:
    try:
        with unit_of_work(context.sessions) as session:
            link_user = session.get(User, link_user_id) if link_user_id else None
            outcome = accounts.sign_in_with_identity(
                session,
                provider=provider.key,
                identity=identity,
                self_signup=context.settings.self_signup,
                link_user=link_user,
                username=username,
                email=email,
            )
            cookie = accounts.start_session(session, outcome.user) if outcome.user else None
    except accounts.NeedsDetails as error:
        return _details_page(request, provider, identity, next_path, error.message)
    except (InvalidInput, Conflict) as error:  # the username or email the details form gave
        if username is None and email is None:
            raise
        return _details_page(request, provider, identity, next_path, error.message, username, email)
    if outcome.awaiting_approval:
        return render(
            request,
            "signin_waiting.html",
            {"title": "Waiting for approval", "provider": provider, "created": outcome.created},
            status_code=202 if outcome.created else 403,
        )
    if outcome.linked:
        return redirect(
            request, f"/account?notice={provider.display_name}+is+connected+to+your+account."
        )
    target = next_path
    if outcome.created:
        target = "/account?notice=Welcome!+Your+account+is+made;+you+are+signed+in."
    response = redirect(request, target)
    assert cookie is not None
    set_cookie(response, request, SESSION_COOKIE, cookie, max_age=SESSION_SECONDS)
    return response


def _details_page(
    request: Request,
    provider: Provider,
    identity: Identity,
    next_path: str,
    message: str,
    username: str | None = None,
    email: str | None = None,
) -> Response:
    """Ask for what a new account needs and the provider did not give. The identity travels
    in a signed, short-lived ticket: the provider's answer was checked once already."""
    ticket = json.dumps(
        {
            "provider": provider.key,
            "issuer": identity.issuer,
            "subject": identity.subject,
            "username_hint": identity.username_hint,
            "name": identity.name,
            "next": next_path,
            "expires": int(time.time()) + DETAILS_SECONDS,
        }
    )
    return render(
        request,
        "signin_details.html",
        {
            "title": "Finish signing up",
            "provider": provider,
            "ticket": sign_text(request, "signup", ticket),
            "username": username or identity.username_hint or "",
            "email": email or "",
            "error": message,
        },
        status_code=200 if username is None else 422,
    )


@router.post("/signin/oidc/finish", dependencies=[CsrfDep])
def finish_details(
    request: Request,
    context: ContextDep,
    ticket: Annotated[str, Form(max_length=4000)],
    username: Annotated[str, Form(max_length=40)],
    email: Annotated[str, Form(max_length=254)],
) -> Response:
    """Make the account with the details the person gave."""
    text = read_signed(request, "signup", ticket)
    data = json.loads(text) if text else None
    if not isinstance(data, dict) or data.get("expires", 0) < time.time():
        return signin_again(request, SignInRefused("this sign-up form has expired: sign in again"))
    provider = _provider(context, str(data["provider"]))
    identity = Identity(
        issuer=data["issuer"],
        subject=data["subject"],
        username_hint=data.get("username_hint"),
        name=data.get("name"),
        email=None,
    )
    return _sign_in(
        request,
        context,
        provider,
        identity,
        safe_next(data.get("next")),
        None,
        username=username.strip(),
        email=email.strip(),
    )


@router.post("/account/identities/{identity_id}/remove", dependencies=[CsrfDep])
def remove_identity(
    request: Request, identity_id: Id, user: WebUserDep, session: SessionDep
) -> Response:
    """Disconnect a provider from the account (not its last way in)."""
    me = signed_in(request, user)
    try:
        accounts.unlink_identity(session, me, identity_id)
    except Conflict as error:
        return account_page(request, session, me, error=error.message, status_code=409)
    return redirect(request, "/account?notice=Sign-in+removed.")
