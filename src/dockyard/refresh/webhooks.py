"""Registry push webhooks: a per-tool secret, and the receiver that marks the tool due.

Registries present the secret differently: Docker Hub and Quay can only call a URL (so the
secret is in its query, `?token=`), GitLab sends `X-Gitlab-Token`, Harbor sends the
`Authorization` header it was configured with. Only the secret's SHA-256 is stored. A wrong
secret and an unknown tool get the same 404, so tool ids reveal nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy.orm import Session

from dockyard.accounts.models import User
from dockyard.catalog import services
from dockyard.catalog.models import Tool
from dockyard.db.types import utcnow
from dockyard.errors import InvalidInput, NotFound


def create_secret(session: Session, user: User, tool_id: int) -> tuple[Tool, str]:
    """A new webhook secret for the tool (the old one stops working); shown this once."""
    tool = services.changeable_tool(session, user, tool_id)
    secret = secrets.token_urlsafe(32)
    tool.webhook_secret_hash = _digest(secret)
    session.flush()
    return tool, secret


def disable(session: Session, user: User, tool_id: int) -> None:
    """Stop accepting webhooks for the tool."""
    tool = services.changeable_tool(session, user, tool_id)
    tool.webhook_secret_hash = None
    session.flush()


def presented_secret(query_token: str | None, headers: dict[str, str]) -> str | None:
    """The secret as the registry sent it: query token, GitLab header or Authorization."""
    if query_token:
        return query_token
    if headers.get("x-gitlab-token"):
        return headers["x-gitlab-token"]
    authorization = headers.get("authorization", "")
    return authorization.removeprefix("Bearer ").strip() or None


def receive(session: Session, tool_id: int, secret: str | None, payload: Any) -> Tool:
    """Verify a push notification and mark the tool due for refresh."""
    tool = session.get(Tool, tool_id)
    if (
        tool is None
        or tool.webhook_secret_hash is None
        or secret is None
        or not hmac.compare_digest(tool.webhook_secret_hash, _digest(secret))
    ):
        raise NotFound(f"no webhook for tool {tool_id} accepts this secret")
    named = repository_named(payload)
    if named is not None and named.lower() != tool.repository.lower():
        raise InvalidInput(
            f"this notification is about repository {named!r}, but the webhook belongs to "
            f"{tool.path}: point the registry's webhook at that tool's URL"
        )
    tool.next_refresh_at = utcnow()
    session.flush()
    return tool


def repository_named(payload: Any) -> str | None:
    """The repository a Docker Hub, Quay, GitLab or Harbor push notification names, if any."""
    if not isinstance(payload, dict):
        return None
    repository = payload.get("repository")
    if isinstance(repository, dict) and isinstance(repository.get("repo_name"), str):
        return str(repository["repo_name"])  # Docker Hub
    if isinstance(repository, str) and isinstance(payload.get("updated_tags"), list):
        return repository  # Quay
    event_data = payload.get("event_data")
    if isinstance(event_data, dict):
        harbor = event_data.get("repository")
        if isinstance(harbor, dict) and isinstance(harbor.get("repo_full_name"), str):
            return str(harbor["repo_full_name"])  # Harbor
    return None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
