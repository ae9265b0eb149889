"""Organizations: made by any signed-in user (who becomes its first admin), with members in
roles. Admins manage the organization and its members; admins and maintainers maintain what
belongs to it (`Tool.is_maintained_by`, `maintained_tool_ids`).

Services flush and never commit; the caller owns the transaction.
"""

from __future__ import annotations

import re

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dockyard.accounts.models import (
    MAINTAINING_ROLES,
    ORGANIZATION_ROLES,
    Organization,
    OrganizationMember,
    User,
)
from dockyard.accounts.services import USERNAME_PATTERN, get_user
from dockyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied

#: Organization and collection names: as usernames (they share the address space's rules).
NAME_PATTERN = USERNAME_PATTERN
MAX_DESCRIPTION = 5000


def validate_name(name: str, *, what: str = "an organization") -> str:
    """The name if it can be part of an address and a TRS label."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise InvalidInput(
            f"{name!r} cannot name {what}: use 1-40 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit (e.g. 'smith-lab')"
        )
    return name


def checked_text(value: str | None, *, field: str, limit: int) -> str:
    """Free text, trimmed, within its length."""
    text = (value or "").strip()
    if len(text) > limit:
        raise InvalidInput(f"{field} must have at most {limit} characters")
    return text


def create_organization(
    session: Session,
    user: User,
    *,
    name: str,
    display_name: str | None = None,
    description: str | None = None,
) -> Organization:
    """A new organization with `user` as its first admin."""
    organization = Organization(
        name=validate_name(name),
        display_name=checked_text(display_name, field="display_name", limit=100) or name,
        description=checked_text(description, field="description", limit=MAX_DESCRIPTION),
    )
    if find_organization(session, name) is not None:
        raise Conflict(f"an organization named {name!r} exists: choose another name")
    organization.members.append(OrganizationMember(user_id=user.id, role="admin"))
    session.add(organization)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"an organization named {name!r} exists: choose another name") from None
    return organization


def find_organization(session: Session, name: str) -> Organization | None:
    """The organization with this name (case-insensitive), if any."""
    query = select(Organization).where(func.lower(Organization.name) == name.lower())
    return session.scalar(query)


def get_organization(session: Session, name: str) -> Organization:
    """The organization with this name, or `NotFound`."""
    found = find_organization(session, name)
    if found is None:
        raise NotFound(f"no organization named {name!r}")
    return found


def list_organizations(session: Session) -> list[Organization]:
    """Every organization, by name (organizations are public; what they hold may not be)."""
    return list(session.scalars(select(Organization).order_by(func.lower(Organization.name))))


def organizations_of(session: Session, user: User) -> list[Organization]:
    """The organizations `user` is a member of, by name."""
    query = (
        select(Organization)
        .join(OrganizationMember)
        .where(OrganizationMember.user_id == user.id)
        .order_by(func.lower(Organization.name))
    )
    return list(session.scalars(query))


def require_admin(organization: Organization, user: User) -> None:
    """`PermissionDenied` unless `user` is an admin of the organization (or of dockyard)."""
    if not user.is_admin and organization.role_of(user) != "admin":
        raise PermissionDenied(
            f"only admins of {organization.name} can do this: ask one of them "
            f"({', '.join(admin_names(organization))})"
        )


def require_maintainer(organization: Organization, user: User) -> None:
    """`PermissionDenied` unless `user` maintains what belongs to the organization."""
    if not user.is_admin and not organization.maintained_by(user):
        raise PermissionDenied(f"only admins and maintainers of {organization.name} can do this")


def admin_names(organization: Organization) -> list[str]:
    return [m.user.username for m in organization.members if m.role == "admin"]


def update_organization(
    session: Session,
    user: User,
    name: str,
    *,
    display_name: str | None = None,
    description: str | None = None,
) -> Organization:
    """Change an organization's display name or description (its admins)."""
    organization = get_organization(session, name)
    require_admin(organization, user)
    if display_name is not None:
        organization.display_name = (
            checked_text(display_name, field="display_name", limit=100) or organization.name
        )
    if description is not None:
        organization.description = checked_text(
            description, field="description", limit=MAX_DESCRIPTION
        )
    session.flush()
    return organization


def set_member(
    session: Session, user: User, name: str, *, username: str, role: str
) -> OrganizationMember:
    """Add a member, or change a member's role (its admins). The last admin keeps the role."""
    organization = get_organization(session, name)
    require_admin(organization, user)
    if role not in ORGANIZATION_ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ORGANIZATION_ROLES)}, not {role!r}")
    person = get_user(session, username)
    member = next((m for m in organization.members if m.user_id == person.id), None)
    if member is None:
        member = OrganizationMember(user_id=person.id, role=role, user=person)
        organization.members.append(member)
    else:
        if member.role == "admin" and role != "admin":
            _keep_an_admin(organization, person)
        member.role = role
    session.flush()
    return member


def remove_member(session: Session, user: User, name: str, *, username: str) -> None:
    """Remove a member (its admins; anyone may leave), never the last admin."""
    organization = get_organization(session, name)
    person = get_user(session, username)
    if person.id != user.id:
        require_admin(organization, user)
    member = next((m for m in organization.members if m.user_id == person.id), None)
    if member is None:
        raise NotFound(f"{person.username} is not a member of {organization.name}")
    if member.role == "admin":
        _keep_an_admin(organization, person)
    organization.members.remove(member)
    session.flush()


def _keep_an_admin(organization: Organization, leaving: User) -> None:
    others = [m for m in organization.members if m.role == "admin" and m.user_id != leaving.id]
    if not others:
        raise Conflict(
            f"{leaving.username} is the last admin of {organization.name}: make another "
            "member admin first"
        )


def maintaining_organizations(user: User) -> Select[int]:
    """The ids of the organizations whose tools and workflows `user` maintains."""
    return select(OrganizationMember.organization_id).where(
        OrganizationMember.user_id == user.id,
        OrganizationMember.role.in_(MAINTAINING_ROLES),
    )
