"""Collections: made and curated by an organization's admins and maintainers; anyone sees a
collection, and in it the entries they may see (a tool or workflow that is not published is
left out for those who may not see it).

Services flush and never commit; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CompoundSelect, Connection, bindparam, func, literal, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dockyard.accounts import organizations as orgs
from dockyard.accounts.models import Organization, User
from dockyard.accounts.organizations import (
    checked_text,
    get_organization,
    require_maintainer,
    validate_name,
)
from dockyard.catalog import services as tools
from dockyard.catalog.models import Tool
from dockyard.collections.models import Collection, CollectionEntry
from dockyard.db.types import utcnow
from dockyard.errors import Conflict, InvalidInput, NotFound
from dockyard.workflows import services as workflows
from dockyard.workflows.models import Workflow
from dockyard.workflows.rules import TRS_PREFIX

MAX_ENTRIES = 500
#: An entry given as a string: a tool's TRS id, or a workflow's (`#workflow/...`).
Entry = int | str


@dataclass(frozen=True)
class Shown:
    """One entry as a viewer sees it: the tool or the workflow."""

    tool: Tool | None
    workflow: Workflow | None


def create_collection(
    session: Session,
    user: User,
    organization: str,
    *,
    name: str,
    display_name: str | None = None,
    description: str | None = None,
    entries: Sequence[Entry] = (),
) -> Collection:
    """A new collection in the organization, with its entries in the order given."""
    owner = get_organization(session, organization)
    require_maintainer(owner, user)
    validate_name(name, what="a collection")
    if find_collection(session, owner, name) is not None:
        raise Conflict(f"{owner.name} has a collection named {name!r}: choose another name")
    collection = Collection(
        organization=owner,
        name=name,
        display_name=checked_text(display_name, field="display_name", limit=100) or name,
        description=checked_text(description, field="description", limit=5000),
    )
    collection.entries = _entries(session, user, entries)
    session.add(collection)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            f"{owner.name} has a collection named {name!r}: choose another name"
        ) from None
    return collection


def update_collection(
    session: Session,
    user: User,
    organization: str,
    name: str,
    *,
    display_name: str | None = None,
    description: str | None = None,
    entries: Sequence[Entry] | None = None,
) -> Collection:
    """Change a collection's texts, or replace its entries (in the new order)."""
    collection = get_collection(session, organization, name)
    require_maintainer(collection.organization, user)
    if display_name is not None:
        collection.display_name = (
            checked_text(display_name, field="display_name", limit=100) or collection.name
        )
    if description is not None:
        collection.description = checked_text(description, field="description", limit=5000)
    if entries is not None:
        collection.entries = _entries(session, user, entries)
    collection.updated_at = utcnow()
    session.flush()
    return collection


def delete_collection(session: Session, user: User, organization: str, name: str) -> None:
    """Remove a collection (its tools and workflows stay)."""
    collection = get_collection(session, organization, name)
    require_maintainer(collection.organization, user)
    session.delete(collection)
    session.flush()


def find_collection(session: Session, organization: Organization, name: str) -> Collection | None:
    query = select(Collection).where(
        Collection.organization_id == organization.id,
        func.lower(Collection.name) == name.lower(),
    )
    return session.scalar(query)


def get_collection(session: Session, organization: str, name: str) -> Collection:
    """The organization's collection of this name, or `NotFound`."""
    found = find_collection(session, get_organization(session, organization), name)
    if found is None:
        raise NotFound(f"{organization} has no collection named {name!r}")
    return found


def collections_of(session: Session, organization: Organization) -> list[Collection]:
    """An organization's collections, by name."""
    query = (
        select(Collection)
        .where(Collection.organization_id == organization.id)
        .order_by(func.lower(Collection.name))
    )
    return list(session.scalars(query))


def shown_entries(collection: Collection, user: User | None) -> list[Shown]:
    """The entries `user` may see, in the collection's order."""
    shown = []
    for entry in collection.entries:
        if entry.tool is not None and tools.can_view(entry.tool, user):
            shown.append(Shown(entry.tool, None))
        elif entry.workflow is not None and workflows.can_view(entry.workflow, user):
            shown.append(Shown(None, entry.workflow))
    return shown


def collection_label(collection: Collection) -> str:
    """The label a collection's tools carry (TRS `aliases`, search): `collection:{org}/{name}`."""
    return f"collection:{collection.organization.name}/{collection.name}"


def holdings(
    session: Session, user: User | None, organization: Organization
) -> tuple[list[Tool], list[Workflow]]:
    """The tools and workflows of an organization that `user` may see, by path."""
    found_tools = session.scalars(
        select(Tool)
        .where(Tool.organization_id == organization.id, tools.tools_visible_to(user))
        .order_by(Tool.path)
    )
    found_workflows = session.scalars(
        select(Workflow)
        .where(Workflow.organization_id == organization.id, workflows.workflows_visible_to(user))
        .order_by(Workflow.path)
    )
    return list(found_tools.unique()), list(found_workflows.unique())


_ALIASES: CompoundSelect[Any] = union_all(
    select(Tool.id, literal("organization:") + Organization.name)
    .join(Organization, Organization.id == Tool.organization_id)
    .where(Tool.id.in_(bindparam("tools", expanding=True))),
    select(
        CollectionEntry.tool_id,
        literal("collection:") + Organization.name + literal("/") + Collection.name,
    )
    .join(Collection, Collection.id == CollectionEntry.collection_id)
    .join(Organization, Organization.id == Collection.organization_id)
    .where(CollectionEntry.tool_id.in_(bindparam("tools", expanding=True))),
)


def tool_aliases(executor: Session | Connection, tool_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each tool's labels from its organization and collections, in one query; sorted, so
    that every path to an answer writes them alike."""
    found: dict[int, list[str]] = {}
    if tool_ids:
        for tool_id, alias in executor.execute(_ALIASES, {"tools": list(tool_ids)}):
            found.setdefault(tool_id, []).append(alias)
    return {tool_id: sorted(aliases) for tool_id, aliases in found.items()}


def tools_with_alias(session: Session, alias: str) -> list[int]:
    """The ids of the tools a label names (an organization's or a collection's); none for
    any other alias."""
    kind, _, rest = alias.partition(":")
    if kind == "organization":
        found = orgs.find_organization(session, rest)
        if found is None:
            return []
        return list(session.scalars(select(Tool.id).where(Tool.organization_id == found.id)))
    if kind == "collection" and "/" in rest:
        organization, _, name = rest.partition("/")
        owner = orgs.find_organization(session, organization)
        collection = find_collection(session, owner, name) if owner else None
        if collection is None:
            return []
        return [entry.tool_id for entry in collection.entries if entry.tool_id is not None]
    return []


def _entries(session: Session, user: User, given: Sequence[Entry]) -> list[CollectionEntry]:
    if len(given) > MAX_ENTRIES:
        raise InvalidInput(f"a collection holds at most {MAX_ENTRIES} entries")
    made: list[CollectionEntry] = []
    seen: set[tuple[str, int]] = set()
    for position, entry in enumerate(given):
        tool, workflow = _resolve(session, user, entry)
        key = ("tool", tool.id) if tool else ("workflow", workflow.id)  # type: ignore[union-attr]
        if key in seen:
            raise InvalidInput(f"{entry!r} is in the list twice")
        seen.add(key)
        made.append(CollectionEntry(position=position, tool=tool, workflow=workflow))
    return made


def _resolve(session: Session, user: User, entry: Entry) -> tuple[Tool | None, Workflow | None]:
    """A tool (by id or TRS id) or a workflow (by `#workflow/...` TRS id) the user may see."""
    if isinstance(entry, bool) or not isinstance(entry, int | str):
        raise InvalidInput("an entry is a tool id, a tool's TRS id, or a workflow's TRS id")
    try:
        if isinstance(entry, int):
            return tools.visible_tool(session, user, entry), None
        if entry.startswith(TRS_PREFIX):
            return None, workflows.workflow_by_path(session, user, entry.removeprefix(TRS_PREFIX))
        return tools.tool_by_path(session, user, entry), None
    except NotFound:
        raise InvalidInput(
            f"no tool or workflow {entry!r} that you can see: give a tool's id or TRS id "
            "(docker.io/biocontainers/bwa) or a workflow's (#workflow/github.com/lab/align)"
        ) from None
