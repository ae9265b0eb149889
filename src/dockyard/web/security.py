"""What keeps the web UI safe: session cookies, CSRF tokens, and rendering with both.

- The session cookie (`dockyard_session`) is HttpOnly, SameSite=Lax, and Secure whenever the
  request came over HTTPS (directly or through a proxy that says so); the database keeps
  only its SHA-256.
- Every form carries a CSRF token: an HMAC, under the instance's secret key, of a random
  per-browser cookie (`dockyard_csrf`). A POST whose token does not match is refused with 403
  before anything else runs (signed double-submit; a page of another site can neither read the
  cookie nor compute the token).
- Templates escape everything they print (Jinja2 autoescape).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from dockyard import __version__
from dockyard.accounts.models import User
from dockyard.accounts.services import session_user
from dockyard.db import unit_of_work
from dockyard.errors import DockyardError, PermissionDenied
from dockyard.http import SessionDep, get_context
from dockyard.web import HERE

SESSION_COOKIE = "dockyard_session"
CSRF_COOKIE = "dockyard_csrf"
CSRF_FIELD = "csrf_token"
#: The message the next page shows ("Published."), kept in a signed cookie for one page: a
#: banner is never read from the address, where anyone could write one into a link.
NOTICE_COOKIE = "dockyard_notice"
NOTICE_SECONDS = 120
MAX_NOTICE = 500

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["version"] = __version__


def _replace_page(params: Any, page: int) -> str:
    """The query string with another page number (for Previous/Next links)."""
    kept = [(key, value) for key, value in params.multi_items() if key != "page"]
    return urlencode([*kept, ("page", str(page))])


templates.env.filters["replace_page"] = _replace_page


def _toggle(params: Any, key: str, value: str) -> str:
    """The query string with `key=value` chosen, or taken away when it is the one chosen
    (facet links); back to the first page either way."""
    chosen = params.get(key) == value
    kept = [(k, v) for k, v in params.multi_items() if k not in {key, "page"}]
    return urlencode(kept if chosen else [*kept, (key, value)])


templates.env.filters["toggle"] = _toggle


class CsrfRejected(PermissionDenied):
    """A form arrived without the CSRF token of this browser."""

    code = "csrf_rejected"


def _key(request: Request) -> bytes:
    secret = get_context(request).settings.secret_key
    material = secret.get_secret_value() if secret else "dockyard-without-a-secret-key"
    return hashlib.sha256(b"dockyard csrf\x00" + material.encode()).digest()


def browser_secret(request: Request) -> str:
    """This browser's CSRF cookie value, made (and later set) when it has none."""
    existing = get_cookie(request, CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing
    made: str | None = getattr(request.state, "new_csrf", None)
    if made is None:
        made = secrets.token_urlsafe(32)
        request.state.new_csrf = made
    return made


def csrf_token(request: Request) -> str:
    """The token this browser's forms carry, bound to its CSRF cookie and to its session
    (a token and cookie pair taken from one session is no good with another)."""
    session = get_cookie(request, SESSION_COOKIE) or ""
    material = f"{browser_secret(request)}\0{session}".encode()
    return hmac.new(_key(request), material, hashlib.sha256).hexdigest()


async def require_csrf(request: Request) -> None:
    """Refuse a form whose CSRF token is missing or belongs to another browser."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    cookie = get_cookie(request, CSRF_COOKIE)
    if (
        not isinstance(sent, str)
        or not cookie
        or not hmac.compare_digest(sent, csrf_token(request))
    ):
        raise CsrfRejected(
            "this form has expired or did not come from this site: reload the page and try again"
        )


CsrfDep = Depends(require_csrf)


def web_user(request: Request, session: SessionDep) -> User | None:
    """The signed-in user of this browser, if any (web pages only; the API takes tokens)."""
    user = browser_user(request, session)
    request.state.user = user
    return user


def browser_user(request: Request, session: Session) -> User | None:
    """The user this browser's session cookie names, read in `session`."""
    return session_user(session, get_cookie(request, SESSION_COOKIE))


WebUserDep = Annotated[User | None, Depends(web_user)]


def secure(request: Request) -> bool:
    """True when the browser talks to us over HTTPS."""
    return request.url.scheme == "https"


def cookie_name(request: Request, name: str) -> str:
    """The name a cookie has for this browser: `__Host-` prefixed under HTTPS, so only this
    host, over HTTPS, with path / can have set it (no subdomain or plain-HTTP page can)."""
    return f"__Host-{name}" if secure(request) else name


def get_cookie(request: Request, name: str) -> str | None:
    """A dockyard cookie's value, by its name for this browser."""
    return request.cookies.get(cookie_name(request, name))


def set_cookie(response: Response, request: Request, name: str, value: str, **extra: Any) -> None:
    """A cookie with the flags every dockyard cookie has."""
    response.set_cookie(
        cookie_name(request, name),
        value,
        httponly=True,
        samesite="lax",
        secure=secure(request),
        path="/",
        **extra,
    )


def delete_cookie(response: Response, request: Request, name: str) -> None:
    """Remove a dockyard cookie from the browser."""
    response.delete_cookie(
        cookie_name(request, name), path="/", secure=secure(request), httponly=True
    )


def with_csrf_cookie(request: Request, response: Response) -> Response:
    made = getattr(request.state, "new_csrf", None)
    if made is not None:
        set_cookie(response, request, CSRF_COOKIE, made, max_age=60 * 60 * 24 * 365)
    return response


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """A page with the signed-in user, the CSRF token and flash message filled in."""
    notice = _read_notice(request)
    values = {
        "user": getattr(request.state, "user", None),
        "csrf_token": csrf_token(request),
        "notice": notice,
        #: False without DOCKYARD_SMTP_URL: pages then say nobody is emailed.
        "email_on": get_context(request).settings.smtp_url is not None,
        **context,
    }
    response = templates.TemplateResponse(request, template, values, status_code=status_code)
    with_csrf_cookie(request, response)
    if get_cookie(request, NOTICE_COOKIE) is not None:
        delete_cookie(response, request, NOTICE_COOKIE)
    return response


def redirect(request: Request, url: str) -> RedirectResponse:
    """Back to a page after a form (303, so the browser GETs it). A `notice=` in `url`
    is taken out of it and shown by that page from a signed cookie."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    notice = next((value for key, value in query if key == "notice"), None)
    kept = urlencode([(key, value) for key, value in query if key != "notice"])
    response = RedirectResponse(urlunsplit(parts._replace(query=kept)), status_code=303)
    if notice:
        signed = _sign_notice(request, notice[:MAX_NOTICE])
        set_cookie(response, request, NOTICE_COOKIE, signed, max_age=NOTICE_SECONDS)
    return response


def _sign_notice(request: Request, text: str) -> str:
    return sign_text(request, "notice", text)


def _read_notice(request: Request) -> str | None:
    """The notice this server set for this page, if any (a forged one is ignored)."""
    return read_signed(request, "notice", get_cookie(request, NOTICE_COOKIE))


def sign_text(request: Request, purpose: str, text: str) -> str:
    """`text` with an HMAC under the instance's key, for one `purpose` (a value signed for
    one purpose is no good for another)."""
    encoded = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    digest = hmac.new(_key(request), purpose.encode() + b"\0" + encoded.encode(), hashlib.sha256)
    return f"{encoded}.{digest.hexdigest()}"


def read_signed(request: Request, purpose: str, value: str | None) -> str | None:
    """The text `sign_text` signed for `purpose`; None for anything forged or damaged."""
    if not value or "." not in value:
        return None
    encoded, _, sent = value.rpartition(".")
    expected = hmac.new(_key(request), purpose.encode() + b"\0" + encoded.encode(), hashlib.sha256)
    if not hmac.compare_digest(sent, expected.hexdigest()):
        return None
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def signed_in(request: Request, user: User | None) -> User:
    """The user, or `NeedsSignIn` carrying where to come back to."""
    if user is None:
        raise NeedsSignIn(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return user


class NeedsSignIn(DockyardError):
    """A page for signed-in users, asked for by a browser that is not signed in."""

    code = "sign_in_required"

    def __init__(self, back: str) -> None:
        super().__init__("sign in to see this page")
        self.back = back


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """dockyard's errors as a page, for browsers."""
    title = {403: "Not allowed", 404: "Not found", 429: "Slow down"}.get(
        status, "Something went wrong"
    )
    # The request's own unit of work is over; the page reads the user in one of its own.
    with get_context(request).sessions() as session:
        request.state.user = _quiet_user(session, request)
        return render(
            request, "error.html", {"title": title, "message": message}, status_code=status
        )


def _quiet_user(session: Session, request: Request) -> User | None:
    try:
        return browser_user(request, session)
    except SQLAlchemyError:  # an error page must render even when the database does not answer
        return None


#: A form's change: it runs in a unit of work with the signed-in user and says what it did.
FormAction = Callable[[Session, User], str]


def act_on_form(request: Request, page: str, action: FormAction) -> Response:
    """Run one form's change in its own unit of work and go back to `page`: with the notice
    it returns, or with the reason it failed as the page's error."""
    try:
        with unit_of_work(get_context(request).sessions) as session:
            me = signed_in(request, browser_user(request, session))
            notice = action(session, me)
    except NeedsSignIn:
        raise
    except DockyardError as error:
        return redirect(request, f"{page}?error={quote_plus(error.message)}")
    return redirect(request, f"{page}?notice={quote_plus(notice)}")
