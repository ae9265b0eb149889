"""What a requester, or anyone, may do with a tool's image: pull instructions for the caller,
the ECR repository policy that grants access, and Quay grant tokens."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from dockyard.access import rules
from dockyard.access.models import AccessRequest, GrantToken
from dockyard.access.services import tool_image
from dockyard.accounts.models import User
from dockyard.catalog.models import Tool
from dockyard.catalog.services import changeable_tool, registry_of, visible_tool, visible_version
from dockyard.db.types import utcnow
from dockyard.errors import InvalidInput, NotFound, PermissionDenied
from dockyard.registries.catalog import Catalog
from dockyard.registries.ecr import parse_ecr_host


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
