"""REST adapter for the registry catalog and reference resolution."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from dockyard.http import CatalogDep
from dockyard.registries.services import describe

router = APIRouter(prefix="/api/registries", tags=["registries"])


@router.get("")
def list_registries(catalog: CatalogDep) -> dict[str, object]:
    """Every registry this instance supports, built-in and operator-defined."""
    items = [registry.as_dict() for registry in catalog.all()]
    return {"items": items, "total": len(items)}


@router.get("/resolve")
def resolve_image(
    catalog: CatalogDep,
    image: Annotated[str, Query(description="an image reference, as for `docker pull`")],
    registry_path: Annotated[str | None, Query(description="registry host, when needed")] = None,
    registry: Annotated[
        str | None, Query(description="registry id the image must belong to")
    ] = None,
) -> JSONResponse:
    """Parse, normalize and match an image reference to its registry (422 when invalid)."""
    valid, answer = describe(catalog, image, registry_path=registry_path, registry_id=registry)
    return JSONResponse(answer, status_code=200 if valid else 422)
