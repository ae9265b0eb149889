"""The app factory: settings in, ASGI app out; domain errors become HTTP answers here."""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from dockyard import __version__, db, errors
from dockyard.access.grants import Granter
from dockyard.access.mail import mailer_for, sender_address
from dockyard.access.tasks import run_mail_sender
from dockyard.accounts.providers import load_providers
from dockyard.api.access import notifications_router, registry_requests_router
from dockyard.api.access import router as access_router
from dockyard.api.accounts import router as accounts_router
from dockyard.api.organizations import router as organizations_router
from dockyard.api.registries import router as registries_router
from dockyard.api.tools import hooks_router
from dockyard.api.tools import router as tools_router
from dockyard.api.workflows import hooks_router as workflow_hooks_router
from dockyard.api.workflows import router as workflows_router
from dockyard.app_errors import status_for
from dockyard.boundary import Boundary, redact_access_log
from dockyard.catalog.launch import load_templates
from dockyard.context import AppContext
from dockyard.health import router as health_router
from dockyard.observe import Observe
from dockyard.refresh.tasks import build_queue, run_embedded_scheduler
from dockyard.refresh.usage import UsageCounter, run_usage_flusher
from dockyard.registries.catalog import Catalog
from dockyard.registries.config import catalog_for
from dockyard.registries.credentials import secret_box
from dockyard.settings import Settings, load_settings
from dockyard.trs.api import PREFIXES as TRS_PREFIXES
from dockyard.trs.api import build_router as trs_router
from dockyard.trs.cache import TrsCache, generation_source
from dockyard.trs.fast import FastReads
from dockyard.web import HERE as WEB_DIR
from dockyard.web.security import NeedsSignIn, error_page
from dockyard.web.views import router as web_router

log = logging.getLogger("dockyard")


def create_app(settings: Settings, *, catalog: Catalog | None = None) -> FastAPI:
    """A dockyard ASGI app for these settings; the database must already be migrated."""
    if catalog is None:
        catalog = catalog_for(settings)
    engine = db.make_engine(settings.database_url)
    sessions = db.make_sessionmaker(engine)
    context = AppContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        catalog=catalog,
        mailer=mailer_for(settings),
        granter=Granter(secret_box(settings)),
        usage=UsageCounter(),
        queue=None if settings.embedded else build_queue(settings, sessions),
        providers=load_providers(settings),
        launch=load_templates(settings),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        scheduler = None
        if settings.embedded and settings.background_refresh:
            scheduler = asyncio.create_task(
                run_embedded_scheduler(settings, context.sessions, context.catalog, stop)
            )
        mail = asyncio.create_task(
            run_mail_sender(context.sessions, context.mailer, sender_address(settings), stop)
        )
        usage = asyncio.create_task(run_usage_flusher(context.usage, context.sessions, stop))
        # What start-up made (modules, parsers' grammars, the registries) lives as long as the
        # process: out of the collector's sight, a full collection no longer walks it, which
        # otherwise paused every request in flight for tenths of a second.
        gc.collect()
        gc.freeze()
        yield
        if context.queue is not None:
            await context.queue.close()
        stop.set()
        await mail
        await usage
        if scheduler is not None:
            await scheduler
        engine.dispose()

    app = FastAPI(
        title="dockyard",
        version=__version__,
        summary="A registry of containerized tools",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.context = context
    _install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(registries_router)
    app.include_router(accounts_router)
    app.include_router(organizations_router)
    app.include_router(tools_router)
    app.include_router(workflows_router)
    app.include_router(workflow_hooks_router)
    app.include_router(hooks_router)
    app.include_router(access_router)
    app.include_router(notifications_router)
    app.include_router(registry_requests_router)
    for prefix in TRS_PREFIXES:
        app.include_router(trs_router(prefix))
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    # Innermost: anonymous reads of tools, versions and pages from rows (the cache keeps them).
    if settings.trs_fast_reads:
        app.add_middleware(
            FastReads, prefixes=TRS_PREFIXES, engine=engine, count_use=context.usage.add
        )
    if settings.trs_cache_mb:
        app.add_middleware(
            TrsCache,
            prefixes=TRS_PREFIXES,
            source=generation_source(settings.database_url),
            max_bytes=settings.trs_cache_mb << 20,
        )
    app.add_middleware(Boundary, hosts=settings.answered_hosts)  # before the cache
    app.add_middleware(Observe, trs_prefixes=TRS_PREFIXES)  # outermost: ids and metrics for all
    redact_access_log()
    return app


def create_app_from_env() -> FastAPI:
    """The factory `dockyard serve` hands to uvicorn: settings from `DOCKYARD_*` variables."""
    return create_app(load_settings())


#: Paths answered in JSON; everything else is a page for browsers.
MACHINE_PATHS = ("/api/", "/healthz", "/readyz", "/metrics", "/static/", *TRS_PREFIXES)


def _error_response(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """dockyard's error envelope, TRS's `Error` object under a TRS base, or an error page."""
    if not request.url.path.startswith(MACHINE_PATHS) and request.url.path != "/api":
        page = error_page(request, status, message)
        page.headers.update(headers or {})
        return page
    if request.url.path.startswith(TRS_PREFIXES):
        trs_headers = {"Access-Control-Allow-Origin": "*", **(headers or {})}
        return JSONResponse({"code": status, "message": message}, status, headers=trs_headers)
    return JSONResponse(errors.error_body(code, message), status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.DockyardError)
    async def domain_error(request: Request, error: errors.DockyardError) -> Response:
        if isinstance(error, NeedsSignIn):
            return RedirectResponse(f"/signin?next={quote(error.back, safe='')}", status_code=303)
        status = status_for(error)
        headers = {}
        if isinstance(error, errors.RateLimited):
            headers["Retry-After"] = str(error.retry_after)
        if isinstance(error, errors.AuthenticationRequired):
            headers["WWW-Authenticate"] = 'Bearer realm="dockyard"'
        if status >= 500:
            log.error("request failed", extra={"code": error.code, "error": error.message})
        return _error_response(request, status, error.code, error.message, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        return _error_response(request, 422, "invalid_input", _describe_validation(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        message = str(error.detail) if error.detail else "request failed"
        if error.status_code == 404:
            message = "no such resource: check the URL"
        return _error_response(
            request, error.status_code, code, message, getattr(error, "headers", None)
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> Response:
        reference = uuid.uuid4().hex[:12]
        log.exception("unexpected error", extra={"reference": reference})
        return _error_response(
            request,
            500,
            "internal_error",
            f"dockyard failed to answer this request; the operator can find it in the log "
            f"under reference {reference}",
        )


def _describe_validation(error: RequestValidationError) -> str:
    problems = []
    for item in error.errors()[:5]:
        location = ".".join(str(part) for part in item["loc"] if part != "body")
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location else message)
    return "; ".join(problems)
