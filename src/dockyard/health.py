"""Liveness and readiness probes for operators and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from dockyard import db
from dockyard.http import ContextDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_class=PlainTextResponse)
def healthz() -> str:
    """The process is alive."""
    return "ok"


@router.get("/readyz")
def readyz(context: ContextDep) -> dict[str, str]:
    """The database answers (503 with the reason when it does not)."""
    db.ping(context.engine)
    return {"status": "ready", "database": context.engine.dialect.name}
