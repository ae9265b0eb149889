"""REST adapter for organizations, their members and their collections."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from dockyard.accounts import organizations as orgs
from dockyard.accounts.models import Organization, User
from dockyard.api.schemas.organizations import (
    CollectionIn,
    CollectionList,
    CollectionOut,
    CollectionPatch,
    MemberIn,
    MemberOut,
    OrganizationIn,
    OrganizationList,
    OrganizationOut,
    OrganizationPatch,
)
from dockyard.collections import services as collections
from dockyard.http import CallerDep, SessionDep, UserDep

router = APIRouter(prefix="/api/organizations", tags=["organizations"])


def _out(session: Session, caller: User | None, organization: Organization) -> OrganizationOut:
    tools, workflows = collections.holdings(session, caller, organization)
    return OrganizationOut.of(
        organization, tools, workflows, collections.collections_of(session, organization)
    )


@router.get("")
def list_organizations(caller: CallerDep, session: SessionDep) -> OrganizationList:
    """Every organization, by name."""
    items = [_out(session, caller, each) for each in orgs.list_organizations(session)]
    return OrganizationList(items=items, total=len(items))


@router.post("", status_code=status.HTTP_201_CREATED)
def create_organization(
    body: OrganizationIn, user: UserDep, session: SessionDep
) -> OrganizationOut:
    """A new organization; the caller becomes its first admin."""
    made = orgs.create_organization(
        session, user, name=body.name, display_name=body.display_name, description=body.description
    )
    return _out(session, user, made)


@router.get("/{name}")
def get_organization(name: str, caller: CallerDep, session: SessionDep) -> OrganizationOut:
    """An organization, its members, and the tools, workflows and collections it holds."""
    return _out(session, caller, orgs.get_organization(session, name))


@router.patch("/{name}")
def update_organization(
    name: str, body: OrganizationPatch, user: UserDep, session: SessionDep
) -> OrganizationOut:
    """Change the display name or description (its admins)."""
    changed = orgs.update_organization(
        session, user, name, display_name=body.display_name, description=body.description
    )
    return _out(session, user, changed)


@router.post("/{name}/members", status_code=status.HTTP_201_CREATED)
def set_member(name: str, body: MemberIn, user: UserDep, session: SessionDep) -> MemberOut:
    """Add a member with a role, or give a member another role (its admins)."""
    member = orgs.set_member(session, user, name, username=body.username, role=body.role)
    return MemberOut(username=member.user.username, role=body.role)


@router.delete("/{name}/members/{username}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(name: str, username: str, user: UserDep, session: SessionDep) -> Response:
    """Remove a member (its admins), or leave (anyone); never the last admin."""
    orgs.remove_member(session, user, name, username=username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{name}/collections")
def list_collections(name: str, caller: CallerDep, session: SessionDep) -> CollectionList:
    """The organization's collections, each with the entries the caller may see."""
    organization = orgs.get_organization(session, name)
    items = [
        CollectionOut.of(each, collections.shown_entries(each, caller))
        for each in collections.collections_of(session, organization)
    ]
    return CollectionList(items=items, total=len(items))


@router.post("/{name}/collections", status_code=status.HTTP_201_CREATED)
def create_collection(
    name: str, body: CollectionIn, user: UserDep, session: SessionDep
) -> CollectionOut:
    """A new collection (its admins and maintainers)."""
    made = collections.create_collection(
        session,
        user,
        name,
        name=body.name,
        display_name=body.display_name,
        description=body.description,
        entries=body.entries,
    )
    return CollectionOut.of(made, collections.shown_entries(made, user))


@router.get("/{name}/collections/{collection}")
def get_collection(
    name: str, collection: str, caller: CallerDep, session: SessionDep
) -> CollectionOut:
    """One collection, with the entries the caller may see, in order."""
    found = collections.get_collection(session, name, collection)
    return CollectionOut.of(found, collections.shown_entries(found, caller))


@router.patch("/{name}/collections/{collection}")
def update_collection(
    name: str, collection: str, body: CollectionPatch, user: UserDep, session: SessionDep
) -> CollectionOut:
    """Change a collection's texts, or give all its entries in their new order."""
    changed = collections.update_collection(
        session,
        user,
        name,
        collection,
        display_name=body.display_name,
        description=body.description,
        entries=body.entries,
    )
    return CollectionOut.of(changed, collections.shown_entries(changed, user))


@router.delete("/{name}/collections/{collection}", status_code=status.HTTP_204_NO_CONTENT)
def delete_collection(name: str, collection: str, user: UserDep, session: SessionDep) -> Response:
    """Remove a collection; its tools and workflows stay."""
    collections.delete_collection(session, user, name, collection)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
