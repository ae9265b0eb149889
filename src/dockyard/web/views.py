"""HTML pages, rendered on the server; they read the same services as the API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from dockyard import __version__
from dockyard.http import CatalogDep
from dockyard.registries.services import describe

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["version"] = __version__

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """The landing page."""
    return templates.TemplateResponse(request, "home.html", {"title": "dockyard"})


@router.get("/registries", response_class=HTMLResponse)
def registries_page(
    request: Request,
    catalog: CatalogDep,
    image: Annotated[str | None, Query(max_length=600)] = None,
    registry_path: Annotated[str | None, Query(max_length=300)] = None,
) -> HTMLResponse:
    """Supported registries, what each asks of a user, and a reference checker."""
    resolution = None
    if image:
        _, resolution = describe(catalog, image, registry_path=registry_path or None)
    registries = list(catalog.all())
    return templates.TemplateResponse(
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
