"""The access workflow: requests, decisions, audit log, notifications, registry requests.

Every rule lives here; the REST API, the CLI (through the API) and the web UI call these.
Decisions that touch a registry come in two steps around the network call, so no database
transaction stays open while a registry answers: `plan_decision` checks and describes the
registry part, the caller performs it (`dockyard.access.grants`), `record_decision` stores it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dockyard.access import rules
from dockyard.access.events import newest_first, notify, notify_maintainers, record_event
from dockyard.access.models import AccessRequest, GrantToken
from dockyard.accounts.models import User
from dockyard.catalog.models import Tool, ToolCredential
from dockyard.catalog.services import maintained_tool_ids, registry_of, visible_tool
from dockyard.db.types import utcnow
from dockyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RateLimited
from dockyard.registries.catalog import Catalog

T = TypeVar("T")
STATUSES = ("pending", "granted", "denied", "revoked", "withdrawn")
#: Which decision may follow which status.
_ALLOWED = {
    "grant": {"pending"},
    "deny": {"pending"},
    "revoke": {"granted"},
    "withdraw": {"pending"},
}


def tool_image(catalog: Catalog, tool: Tool) -> rules.ToolImage:
    """What the instructions need to know of a tool's image."""
    registry = registry_of(catalog, tool)
    return rules.ToolImage(registry.id, registry.name, tool.host, tool.repository)


# --- requests ---------------------------------------------------------------------------------


def request_access(
    session: Session,
    catalog: Catalog,
    user: User,
    tool_id: int,
    *,
    registry_identity: str,
    message: str = "",
    base_url: str,
) -> AccessRequest:
    """Ask a private tool's maintainers for pull permission; they are notified."""
    tool = visible_tool(session, user, tool_id)
    if not tool.private:
        raise InvalidInput(
            f"{tool.path} is public: anyone can pull it without asking, e.g. with "
            f"`docker pull {tool.host}/{tool.repository}`"
        )
    if tool.is_maintained_by(user):
        raise InvalidInput(f"you maintain {tool.path}; maintainers need no access request")
    registry = registry_of(catalog, tool)
    identity = rules.check_identity(registry.id, registry.name, registry_identity, tool.host)
    text = rules.check_text(message, "message", rules.MESSAGE_MAX_LENGTH)
    _check_rate(session, user)
    pending = session.scalar(
        select(AccessRequest).where(
            AccessRequest.tool_id == tool.id,
            AccessRequest.requester_id == user.id,
            AccessRequest.status == "pending",
        )
    )
    if pending is not None:
        raise Conflict(
            f"you already asked for access to {tool.path} (request {pending.id}, pending); "
            "wait for the maintainers' answer or withdraw it first"
        )
    request = AccessRequest(
        tool=tool, requester=user, registry_identity=identity, message=text, status="pending"
    )
    session.add(request)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"you already have a pending request for {tool.path}") from None
    record_event(session, request, user, "requested", f"as {identity}")
    rule = rules.identity_rule(registry.id, registry.name)
    lines = [
        f"{user.username} asks for permission to pull {tool.host}/{tool.repository}.",
        f"{rule.label}: {identity}",
        *([f"Their message: {text}"] if text else []),
        "Grant or deny the request in dockyard.",
    ]
    link = f"{base_url}/access/requests/{request.id}"
    notify_maintainers(session, tool, request, "access-requested", lines, link)
    return request


def _check_rate(session: Session, user: User) -> None:
    since = utcnow() - timedelta(seconds=rules.REQUEST_WINDOW_SECONDS)
    recent = list(
        session.scalars(
            select(AccessRequest.created_at)
            .where(AccessRequest.requester_id == user.id, AccessRequest.created_at > since)
            .order_by(AccessRequest.created_at)
        )
    )
    if len(recent) >= rules.REQUESTS_PER_WINDOW:
        wait = recent[0] + timedelta(seconds=rules.REQUEST_WINDOW_SECONDS) - utcnow()
        raise RateLimited(
            f"you made {len(recent)} access requests in the last hour; try again in "
            f"{max(1, int(wait.total_seconds()) // 60 + 1)} minutes",
            retry_after=max(1, int(wait.total_seconds()) + 1),
        )


def visible_request(session: Session, user: User, request_id: int) -> AccessRequest:
    """A request its requester or the tool's maintainers may see; `NotFound` for anyone else."""
    request = session.get(AccessRequest, request_id)
    if request is None or not (
        request.requester_id == user.id or request.tool.is_maintained_by(user)
    ):
        raise NotFound(f"no access request {request_id}")
    return request


@dataclass
class RequestQuery:
    """Which requests to list: the caller's own, their inbox, or both."""

    role: str = "all"  # "all", "mine" (made by the caller) or "inbox" (to decide)
    status: str | None = None
    tool_id: int | None = None
    limit: int = 50
    offset: int = 0


def list_requests(
    session: Session, user: User, query: RequestQuery
) -> tuple[list[AccessRequest], int]:
    """Requests the caller made or may decide, newest first, with their total."""
    if query.status is not None and query.status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    if query.role not in {"all", "mine", "inbox"}:
        raise InvalidInput("role must be all, mine or inbox")
    mine = AccessRequest.requester_id == user.id
    inbox = AccessRequest.tool_id.in_(maintained_tool_ids(user))
    condition = {"mine": mine, "inbox": inbox, "all": or_(mine, inbox)}[query.role]
    statement = select(AccessRequest).where(condition)
    if query.status is not None:
        statement = statement.where(AccessRequest.status == query.status)
    if query.tool_id is not None:
        statement = statement.where(AccessRequest.tool_id == query.tool_id)
    return newest_first(session, statement, AccessRequest.id, query.limit, query.offset)


# --- decisions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryPlan:
    """What dockyard will do in the registry for a decision, and with which credential."""

    method: str  # "ecr-policy", "quay-api" or "manual"
    host: str
    repository: str
    identity: str
    #: The sealed secret and username (ECR: AWS access key id) of the credential used.
    sealed_secret: str | None = None
    username: str | None = None


def plan_decision(
    session: Session,
    catalog: Catalog,
    user: User,
    request_id: int,
    action: str,
    *,
    apply: bool = True,
) -> RegistryPlan:
    """Check that the caller may take `action` now; what the registry part will be."""
    request = _decidable(session, user, request_id, action)
    tool = request.tool
    registry = registry_of(catalog, tool)
    manual = RegistryPlan("manual", tool.host, tool.repository, request.registry_identity)
    if not apply or action == "deny":
        return manual
    if registry.id == "ecr":
        credential = session.scalar(
            select(ToolCredential).where(
                ToolCredential.tool_id == tool.id, ToolCredential.kind == "aws"
            )
        )
        if credential is not None:
            return replace(
                manual,
                method="ecr-policy",
                sealed_secret=credential.secret,
                username=credential.username,
            )
    if registry.id == "quay":
        token = session.scalar(select(GrantToken).where(GrantToken.tool_id == tool.id))
        if token is not None:
            return replace(manual, method="quay-api", sealed_secret=token.secret)
    return manual


def _decidable(session: Session, user: User, request_id: int, action: str) -> AccessRequest:
    request = visible_request(session, user, request_id)
    if action == "withdraw":
        if request.requester_id != user.id:
            raise PermissionDenied("only the requester can withdraw a request")
    elif not request.tool.is_maintained_by(user):
        raise PermissionDenied(f"only the maintainers of {request.tool.path} decide its requests")
    if request.status not in _ALLOWED[action]:
        raise Conflict(
            f"request {request.id} is {request.status}; only a "
            f"{' or '.join(sorted(_ALLOWED[action]))} request can be {_PAST[action]}"
        )
    return request


_PAST = {"grant": "granted", "deny": "denied", "revoke": "revoked", "withdraw": "withdrawn"}


def record_decision(
    session: Session,
    user: User,
    request_id: int,
    action: str,
    *,
    reason: str = "",
    method: str = "manual",
    base_url: str,
) -> AccessRequest:
    """Store a decision (after its registry part, if any) and tell the other side."""
    request = _decidable(session, user, request_id, action)
    reason = rules.check_text(reason, "reason", rules.REASON_MAX_LENGTH)
    if action == "deny" and not reason:
        raise InvalidInput("say why the request is denied: give a reason")
    request.status = _PAST[action]
    request.updated_at = utcnow()
    if action == "grant":
        request.grant_method = method
    if action in {"deny", "revoke"}:
        request.reason = reason or None
    if action != "withdraw":
        request.decided_by = user
        request.decided_at = request.updated_at
    detail = {"grant": f"registry part: {method}", "withdraw": ""}.get(action, reason)
    record_event(session, request, user, _PAST[action], detail)
    tool = request.tool
    link = f"{base_url}/access/requests/{request.id}"
    if action == "withdraw":
        lines = [f"{user.username} withdrew their request for access to {tool.path}."]
        notify_maintainers(session, tool, request, "access-withdrawn", lines, link)
        return request
    lines = {
        "grant": [
            f"Your request to pull {tool.host}/{tool.repository} was granted by {user.username}.",
            "The login and pull commands are on the request's page.",
        ],
        "deny": [
            f"Your request to pull {tool.host}/{tool.repository} was denied by {user.username}.",
            f"Reason: {reason}",
        ],
        "revoke": [
            f"Your permission to pull {tool.host}/{tool.repository} was revoked by "
            f"{user.username}.",
            *([f"Reason: {reason}"] if reason else []),
        ],
    }[action]
    notify(
        session,
        [request.requester],
        [request.requester.email],
        f"[dockyard] Access to {tool.path} {_PAST[action]}",
        lines,
        link,
        f"access-{_PAST[action]}",
        request,
    )
    return request


def record_registry_step(
    session: Session, user: User, request_id: int, action: str, detail: str
) -> None:
    """Put a registry step (done or failed) in the audit log."""
    request = visible_request(session, user, request_id)
    record_event(session, request, user, action, detail)
