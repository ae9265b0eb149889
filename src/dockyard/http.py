"""FastAPI dependencies every HTTP adapter shares: the context, the request's unit of work,
the caller, and the bounds of ids and offsets in paths and queries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from dockyard.accounts.models import User
from dockyard.accounts.services import authenticate_token
from dockyard.context import AppContext
from dockyard.db import unit_of_work
from dockyard.errors import AuthenticationRequired
from dockyard.refresh.usage import UsageCounter
from dockyard.registries.catalog import Catalog

#: The largest id a database row has (PostgreSQL's INTEGER, 32 bits); a larger one names nothing.
MAX_ID = 2**31 - 1
#: The furthest a listing pages; past it there is nothing to read, and the database's own
#: integers are not reached.
MAX_OFFSET = 1_000_000_000
#: A row's id in a path: a positive integer that fits the database.
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
#: How far into a listing to start.
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
#: A row's id in a query, when one is given.
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def external_url(request: Request) -> str:
    """The URL users reach this server at: `DOCKYARD_BASE_URL`, else the request's own."""
    context: AppContext = request.app.state.context
    return context.settings.base_url or str(request.base_url).rstrip("/")


def link_base(request: Request) -> str:
    """Where links in emails and notifications start: `DOCKYARD_BASE_URL`, never the
    request's Host (a client chooses that); without one (and so without SMTP, which needs
    it) links are relative to this server."""
    context: AppContext = request.app.state.context
    return context.settings.base_url or ""


def get_context(request: Request) -> AppContext:
    """The context the app factory stored on the app."""
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_catalog(context: ContextDep) -> Catalog:
    """The registry catalog of this instance."""
    return context.catalog


CatalogDep = Annotated[Catalog, Depends(get_catalog)]


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request, context: ContextDep) -> Iterator[Session]:
    """The request's unit of work, committed after the handler returns, before the response."""
    with unit_of_work(context.sessions, write=request.method not in SAFE_METHODS) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_caller(request: Request, session: SessionDep) -> User | None:
    """The user a `Authorization: Bearer` token names; None for anonymous requests."""
    context: AppContext = request.app.state.context
    return caller_from_header(session, request.headers.get("authorization"), context.usage)


def caller_from_header(
    session: Session, header: str | None, usage: UsageCounter | None = None
) -> User | None:
    """The user an Authorization header's bearer token names; None without a header. The
    token's use is noted in `usage`, which writes it later."""
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise AuthenticationRequired("send the API token as 'Authorization: Bearer <token>'")
    used = usage.token_used if usage is not None else None
    return authenticate_token(session, credentials.strip(), used=used)


CallerDep = Annotated[User | None, Depends(get_caller)]


def require_user(caller: CallerDep) -> User:
    """The authenticated caller, or 401 for anonymous requests."""
    if caller is None:
        raise AuthenticationRequired(
            "sign in first: send 'Authorization: Bearer <token>' (create a token with "
            "`dockyard tokens create`)"
        )
    return caller


def user_from_header(
    session: Session, header: str | None, usage: UsageCounter | None = None
) -> User:
    """`require_user` for handlers that open their own units of work around slow calls."""
    return require_user(caller_from_header(session, header, usage))


UserDep = Annotated[User, Depends(require_user)]
