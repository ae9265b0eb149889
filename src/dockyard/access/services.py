"""The access workflow: requests, decisions, audit log, notifications, registry requests.

Every rule lives here; the REST API, the CLI (through the API) and the web UI call these.
Decisions that touch a registry come in two steps around the network call, so no database
transaction stays open while a registry answers: `plan_decision` checks and describes the
registry part, the caller performs it (`dockyard.access.grants`), `record_decision` stores it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from dockyard.access import rules
from dockyard.access.models import (
    AccessEvent,
    AccessRequest,
    GrantToken,
    Notification,
    OutboxEmail,
    RegistryRequest,
)
from dockyard.accounts.models import User
from dockyard.catalog.models import Tool, ToolCredential, ToolMaintainer
from dockyard.catalog.services import changeable_tool, registry_of, visible_tool, visible_version
from dockyard.db.types import utcnow
from dockyard.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
    UnknownRegistry,
)
from dockyard.registries.catalog import GENERIC_REGISTRY, Catalog
from dockyard.registries.ecr import parse_ecr_host
from dockyard.registries.reference import split_domain

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


def _newest_first(
    session: Session, statement: Select[T], key: InstrumentedAttribute[int], limit: int, offset: int
) -> tuple[list[T], int]:
    """One page of a listing, newest (highest `key`) first, and how many there are in all."""
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    items = session.scalars(statement.order_by(key.desc()).limit(limit).offset(offset)).all()
    return list(items), total


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
    _log(session, request, user, "requested", f"as {identity}")
    rule = rules.identity_rule(registry.id, registry.name)
    lines = [
        f"{user.username} asks for permission to pull {tool.host}/{tool.repository}.",
        f"{rule.label}: {identity}",
        *([f"Their message: {text}"] if text else []),
        "Grant or deny the request in dockyard.",
    ]
    link = f"{base_url}/access/requests/{request.id}"
    _notify_maintainers(session, tool, request, "access-requested", lines, link)
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
    maintained = select(ToolMaintainer.tool_id).where(ToolMaintainer.user_id == user.id)
    mine = AccessRequest.requester_id == user.id
    inbox = AccessRequest.tool_id.in_(maintained)
    condition = {"mine": mine, "inbox": inbox, "all": or_(mine, inbox)}[query.role]
    statement = select(AccessRequest).where(condition)
    if query.status is not None:
        statement = statement.where(AccessRequest.status == query.status)
    if query.tool_id is not None:
        statement = statement.where(AccessRequest.tool_id == query.tool_id)
    return _newest_first(session, statement, AccessRequest.id, query.limit, query.offset)


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
    _log(session, request, user, _PAST[action], detail)
    tool = request.tool
    link = f"{base_url}/access/requests/{request.id}"
    if action == "withdraw":
        lines = [f"{user.username} withdrew their request for access to {tool.path}."]
        _notify_maintainers(session, tool, request, "access-withdrawn", lines, link)
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
    _notify(
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
    _log(session, request, user, action, detail)


# --- audit log and notifications --------------------------------------------------------------


def _log(
    session: Session, request: AccessRequest, actor: User | None, action: str, detail: str
) -> None:
    session.add(
        AccessEvent(
            tool_id=request.tool_id,
            request_id=request.id,
            actor=actor,
            action=action,
            detail=detail,
        )
    )


def audit_log(
    session: Session, user: User, tool_id: int, *, limit: int, offset: int
) -> tuple[list[AccessEvent], int]:
    """The tool's access events, newest first; for its maintainers only."""
    tool = visible_tool(session, user, tool_id)
    if not tool.is_maintained_by(user):
        raise PermissionDenied(f"only the maintainers of {tool.path} read its access log")
    statement = select(AccessEvent).where(AccessEvent.tool_id == tool.id)
    return _newest_first(session, statement, AccessEvent.id, limit, offset)


def _notify_maintainers(
    session: Session,
    tool: Tool,
    request: AccessRequest,
    kind: str,
    lines: list[str],
    link: str,
) -> None:
    users = [maintainer.user for maintainer in tool.maintainers]
    addresses = [tool.maintainer_email] if tool.maintainer_email else [u.email for u in users]
    subject = f"[dockyard] {request.requester.username} requests access to {tool.path}"
    if kind == "access-withdrawn":
        subject = f"[dockyard] {request.requester.username} withdrew a request for {tool.path}"
    _notify(session, users, addresses, subject, lines, link, kind, request)


def _notify(
    session: Session,
    users: Sequence[User],
    addresses: Sequence[str],
    subject: str,
    lines: list[str],
    link: str,
    kind: str,
    request: AccessRequest,
) -> None:
    """In-app notices for `users` and one queued email per address, in this transaction."""
    text = " ".join(line if line.endswith((".", "!", "?")) else f"{line}." for line in lines)
    for user in users:
        session.add(
            Notification(user_id=user.id, kind=kind, text=text, link=link, request_id=request.id)
        )
    body_text = "\n\n".join([*lines, link, "-- dockyard"]) + "\n"
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    body_html = (
        f"<!doctype html><html><body>{paragraphs}"
        f'<p><a href="{html.escape(link, quote=True)}">{html.escape(link)}</a></p>'
        "<p>-- dockyard</p></body></html>"
    )
    for address in dict.fromkeys(addresses):
        session.add(
            OutboxEmail(
                to_address=address, subject=subject, body_text=body_text, body_html=body_html
            )
        )


def notifications(
    session: Session, user: User, *, unread: bool, limit: int, offset: int
) -> tuple[list[Notification], int]:
    """The caller's notices, newest first."""
    statement = select(Notification).where(Notification.user_id == user.id)
    if unread:
        statement = statement.where(Notification.read_at.is_(None))
    return _newest_first(session, statement, Notification.id, limit, offset)


def mark_read(session: Session, user: User, notification_id: int | None) -> int:
    """Mark one of the caller's notices read (or all of them when None); how many changed."""
    statement = select(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None)
    )
    if notification_id is not None:
        statement = statement.where(Notification.id == notification_id)
    items = session.scalars(statement).all()
    if notification_id is not None and not items:
        owned = session.get(Notification, notification_id)
        if owned is None or owned.user_id != user.id:
            raise NotFound(f"no notification {notification_id}")
    now = utcnow()
    for item in items:
        item.read_at = now
    session.flush()
    return len(items)


# --- what a requester (or anyone) may do with the image -----------------------------------------


@dataclass(frozen=True)
class PullInstructions:
    """How the caller signs in to the registry and pulls the tool's image."""

    tool: Tool
    access: str  # "public", "maintainer" or "granted"
    version: str | None
    digest: str | None
    login: list[dict[str, str]]
    pull: list[dict[str, str]]


def pull_instructions(
    session: Session, catalog: Catalog, user: User | None, tool_id: int, version: str | None
) -> PullInstructions:
    """Login and pull commands; for a private tool only for maintainers and granted users."""
    tool = visible_tool(session, user, tool_id)
    access, identity = "public", None
    if tool.private:
        if user is None:
            raise PermissionDenied(
                f"{tool.path} is private: sign in and request access to get pull instructions"
            )
        if tool.is_maintained_by(user):
            access = "maintainer"
        else:
            granted = session.scalar(
                select(AccessRequest)
                .where(
                    AccessRequest.tool_id == tool.id,
                    AccessRequest.requester_id == user.id,
                    AccessRequest.status == "granted",
                )
                .order_by(AccessRequest.id.desc())
            )
            if granted is None:
                raise PermissionDenied(
                    f"{tool.path} is private and you have no granted access request: request "
                    "access first (POST /api/tools/{id}/access-requests)"
                )
            access, identity = "granted", granted.registry_identity
    chosen = visible_version(tool, user, version) if version is not None else tool.default_version
    image = tool_image(catalog, tool)
    digest = chosen.digest if chosen is not None else None
    return PullInstructions(
        tool=tool,
        access=access,
        version=chosen.name if chosen is not None else None,
        digest=digest,
        login=rules.login_commands(image, identity) if tool.private else [],
        pull=rules.pull_lines(image, chosen.name if chosen else None, digest),
    )


@dataclass(frozen=True)
class EcrPolicy:
    """The statement that lets one principal pull from an ECR tool's repository."""

    tool: Tool
    principal: str
    statement: dict[str, object]
    registry_id: str
    region: str
    command: str


def ecr_policy(
    session: Session, catalog: Catalog, user: User, tool_id: int, principal: str
) -> EcrPolicy:
    """The repository policy statement for `principal`; for the tool's maintainers."""
    tool = visible_tool(session, user, tool_id)
    if not tool.is_maintained_by(user):
        raise PermissionDenied(f"only the maintainers of {tool.path} manage its repository policy")
    if registry_of(catalog, tool).id != "ecr":
        raise InvalidInput(
            f"{tool.path} is not in a private Amazon ECR registry; repository policies are "
            "ECR's way of granting pull access"
        )
    ecr = parse_ecr_host(tool.host)
    identity = rules.check_identity("ecr", "Amazon ECR", principal, tool.host)
    arn = rules.principal_arn(identity, ecr)
    return EcrPolicy(
        tool=tool,
        principal=arn,
        statement=rules.pull_statement(arn),
        registry_id=ecr.registry_id,
        region=ecr.region,
        command=rules.set_policy_command(ecr, tool.repository),
    )


def set_grant_token(
    session: Session, catalog: Catalog, user: User, tool_id: int, sealed: str
) -> None:
    """Save (sealed) the Quay API token dockyard uses to grant and revoke read access."""
    tool = changeable_tool(session, user, tool_id)
    if registry_of(catalog, tool).id != "quay":
        raise InvalidInput(
            f"{tool.path} is not on Quay.io; a grant token is only used with Quay's "
            "permissions API (for ECR, save AWS credentials with `dockyard tool credentials set`)"
        )
    token = session.scalar(select(GrantToken).where(GrantToken.tool_id == tool.id))
    if token is None:
        session.add(GrantToken(tool_id=tool.id, secret=sealed))
    else:
        token.secret, token.updated_at = sealed, utcnow()
    session.flush()


def clear_grant_token(session: Session, user: User, tool_id: int) -> None:
    """Forget the tool's grant token."""
    tool = changeable_tool(session, user, tool_id)
    token = session.scalar(select(GrantToken).where(GrantToken.tool_id == tool.id))
    if token is None:
        raise NotFound(f"{tool.path} has no grant token")
    session.delete(token)
    session.flush()


# --- asking for a registry --------------------------------------------------------------------


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
    return _newest_first(session, statement, RegistryRequest.id, limit, offset)


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
