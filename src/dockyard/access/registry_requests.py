"""Asking the operator for a registry dockyard does not know yet, and the operator's answer."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dockyard.access import rules
from dockyard.access.events import newest_first
from dockyard.access.models import RegistryRequest
from dockyard.accounts.models import User
from dockyard.db.types import utcnow
from dockyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied, UnknownRegistry
from dockyard.registries.catalog import GENERIC_REGISTRY, Catalog
from dockyard.registries.reference import split_domain


def request_registry(
    session: Session, catalog: Catalog, user: User, host: str, reason: str
) -> RegistryRequest:
    """Ask the operators to support a registry; refused when it is already supported."""
    host = host.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    domain, rest = split_domain(host + "/x")
    if domain is None or rest != "x":
        raise InvalidInput(
            f"{host!r} is not a registry host: give a host name with an optional :port, "
            "like registry.example.org or registry.example.org:5000"
        )
    try:
        registry = catalog.match(host)
    except UnknownRegistry:
        registry = GENERIC_REGISTRY
    if registry.id != GENERIC_REGISTRY.id:
        raise Conflict(f"{host} is already supported, as {registry.name} ({registry.id})")
    reason = rules.check_text(reason, "reason", rules.MESSAGE_MAX_LENGTH)
    if not reason:
        raise InvalidInput("say why you need this registry: give a reason")
    duplicate = session.scalar(
        select(RegistryRequest).where(
            func.lower(RegistryRequest.host) == host, RegistryRequest.status == "open"
        )
    )
    if duplicate is not None:
        raise Conflict(f"{host} was already asked for (request {duplicate.id}) and is open")
    request = RegistryRequest(requester=user, host=host, reason=reason)
    session.add(request)
    session.flush()
    return request


def registry_requests(
    session: Session, user: User, *, status: str | None, limit: int, offset: int
) -> tuple[list[RegistryRequest], int]:
    """All registry requests for admins; a user's own for everyone else."""
    statement = select(RegistryRequest)
    if not user.is_admin:
        statement = statement.where(RegistryRequest.requester_id == user.id)
    if status is not None:
        statement = statement.where(RegistryRequest.status == status)
    return newest_first(session, statement, RegistryRequest.id, limit, offset)


def resolve_registry_request(
    session: Session, user: User, request_id: int, status: str, note: str
) -> RegistryRequest:
    """An admin closes a registry request as added or declined."""
    if not user.is_admin:
        raise PermissionDenied("only admins resolve registry requests")
    request = session.get(RegistryRequest, request_id)
    if request is None:
        raise NotFound(f"no registry request {request_id}")
    if status not in {"added", "declined"}:
        raise InvalidInput("status must be added or declined")
    if request.status != "open":
        raise Conflict(f"registry request {request_id} is already {request.status}")
    request.status = status
    request.note = rules.check_text(note, "note", rules.MESSAGE_MAX_LENGTH) or None
    request.resolved_at = utcnow()
    request.resolved_by_id = user.id
    session.flush()
    return request
