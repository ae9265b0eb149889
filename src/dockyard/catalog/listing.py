"""Finding tools: the filters the REST API, TRS and the web UI share, what a listing shows
each caller (published tools, and a signed-in caller's own), order and pages."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Select, UnaryExpression, false, func, or_, select
from sqlalchemy.orm import Session, selectinload

from dockyard.accounts.models import Organization, User
from dockyard.catalog import rules
from dockyard.catalog.models import Tool, ToolMaintainer
from dockyard.catalog.search import INDEXED_SORTS, matches, query_terms
from dockyard.catalog.services import VERSION_CONTENTS, maintained_tool_ids, tools_visible_to
from dockyard.errors import InvalidInput

MAX_PAGE = 100
#: Text searches count their matches up to this many; an exact count of tens of thousands of
#: scattered rows costs more than the page itself.
SEARCH_COUNT_LIMIT = 1000
SORTS: dict[str, tuple[UnaryExpression[Any], UnaryExpression[Any]]] = {
    "name": (Tool.name.asc(), Tool.path.asc()),
    "-name": (Tool.name.desc(), Tool.path.desc()),
    "updated": (Tool.updated_at.asc(), Tool.id.asc()),
    "-updated": (Tool.updated_at.desc(), Tool.id.desc()),
    "created": (Tool.created_at.asc(), Tool.id.asc()),
    "-created": (Tool.created_at.desc(), Tool.id.desc()),
    "stars": (Tool.stars.asc(), Tool.name.asc()),
    "-stars": (Tool.stars.desc(), Tool.name.asc()),
    "-uses": (Tool.uses.desc(), Tool.id.desc()),
}


@dataclass(frozen=True)
class ToolQuery:
    """Search terms, filters, order and page of a tool listing."""

    q: str | None = None
    path: str | None = None
    mine: bool = False
    registry: str | None = None
    namespace: str | None = None
    private: bool | None = None
    published: bool | None = None
    descriptor_type: str | None = None
    #: TRS filters: registry host, image name, toolname, description words, maintainer.
    host: str | None = None
    image_name: str | None = None
    toolname: str | None = None
    description_contains: str | None = None
    maintainer: str | None = None
    #: The organization (by name) the tools belong to, and a label they carry.
    organization: str | None = None
    label: str | None = None
    #: Only these tools (a collection's, for TRS `alias=collection:...`).
    tool_ids: tuple[int, ...] | None = None
    sort: str = "name"
    limit: int = 20
    offset: int = 0
    max_limit: int = MAX_PAGE
    #: Load each version's images and files with the page (TRS shows them in listings).
    with_contents: bool = False


@dataclass
class Page:
    """One page of tools and how many there are in all."""

    items: list[Tool]
    total: int
    limit: int
    offset: int = 0
    #: False when `total` is a lower bound (a text search with more matches than it counts).
    total_exact: bool = True


def find_tools(session: Session, user: User | None, query: ToolQuery) -> Page:
    """One page of the tools the caller may see that match the query."""
    if query.sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}")
    if not 1 <= query.limit <= query.max_limit:
        raise InvalidInput(f"limit must be between 1 and {query.max_limit}")
    if query.offset < 0:
        raise InvalidInput("offset cannot be negative")
    if query.mine and user is None:
        raise InvalidInput("mine=true needs a signed-in caller: send your API token")
    statement = _filtered(session, user, query)
    counted = statement.with_only_columns(Tool.id).order_by(None)
    cap = max(SEARCH_COUNT_LIMIT, query.offset + query.limit)
    searching = bool(query.q and query_terms(query.q))
    if searching:
        counted = counted.limit(cap + 1)
    total = session.scalar(select(func.count()).select_from(counted.subquery())) or 0
    exact = not searching or total <= cap
    if searching and not exact and query.sort in INDEXED_SORTS:
        statement = _filtered(session, user, query, dense=True)
    items = session.scalars(
        statement.options(
            selectinload(Tool.maintainers),
            selectinload(Tool.versions),
            selectinload(Tool.default_version),
            *(VERSION_CONTENTS if query.with_contents else ()),
        )
        .order_by(*SORTS[query.sort])
        .limit(query.limit)
        .offset(query.offset)
    ).all()
    return Page(
        items=list(items),
        total=total if exact else cap,
        limit=query.limit,
        offset=query.offset,
        total_exact=exact,
    )


def _filtered(
    session: Session, user: User | None, query: ToolQuery, *, dense: bool = False
) -> Select[Tool]:
    statement = select(Tool)
    if query.mine:
        if user is None:
            statement = statement.where(false())
        else:
            statement = statement.where(Tool.id.in_(maintained_tool_ids(user)))
    elif user is None or not user.is_admin:
        statement = statement.where(tools_visible_to(user))
    if query.path is not None:
        statement = statement.where(func.lower(Tool.path) == query.path.lower())
    if query.registry is not None:
        statement = statement.where(Tool.registry_id == query.registry)
    if query.namespace is not None:
        statement = statement.where(Tool.namespace == query.namespace)
    if query.private is not None:
        statement = statement.where(Tool.private.is_(query.private))
    if query.host is not None:
        statement = statement.where(func.lower(Tool.host) == query.host.lower())
    if query.image_name is not None:
        name = query.image_name.lower()
        statement = statement.where(
            or_(
                func.lower(Tool.repository) == name,
                func.lower(Tool.repository).endswith("/" + name),
            )
        )
    if query.toolname is not None:
        statement = statement.where(Tool.toolname == query.toolname)
    if query.description_contains is not None:
        statement = statement.where(
            func.lower(Tool.description).contains(
                query.description_contains.lower(), autoescape=True
            )
        )
    if query.maintainer is not None:
        statement = statement.where(
            Tool.id.in_(
                select(ToolMaintainer.tool_id)
                .join(User, User.id == ToolMaintainer.user_id)
                .where(func.lower(User.username) == query.maintainer.lower())
            )
        )
    if query.published is not None:
        statement = statement.where(Tool.published.is_(query.published))
    if query.tool_ids is not None:
        statement = statement.where(Tool.id.in_(query.tool_ids) if query.tool_ids else false())
    if query.organization is not None:
        statement = statement.where(
            Tool.organization_id.in_(
                select(Organization.id).where(
                    func.lower(Organization.name) == query.organization.lower()
                )
            )
        )
    if query.label is not None:
        statement = statement.where(
            Tool.labels.contains(f",{query.label.strip().lower()},", autoescape=True)
        )
    if query.descriptor_type is not None:
        kind = query.descriptor_type.upper().removeprefix("PLAIN_")
        if kind not in rules.DescriptorType.__members__:
            raise InvalidInput(f"descriptor_type must be one of {', '.join(rules.DescriptorType)}")
        statement = statement.where(Tool.descriptor_types.contains(f",{kind},"))
    if query.q:
        terms = query_terms(query.q)
        if terms:
            statement = statement.where(matches(session, terms, dense=dense))
    return statement


@dataclass(frozen=True)
class Facet:
    """One value of a facet and how many tools of the search have it."""

    value: str
    label: str
    count: int


#: The facets a search counts, each over the search with its other filters kept.
FACETS = ("registry", "descriptor_type", "access", "organization", "label")
#: Labels shown in a facet, the most common first.
MAX_LABEL_VALUES = 15


def tool_facets(
    session: Session, user: User | None, query: ToolQuery, *, registry_names: dict[str, str]
) -> dict[str, list[Facet]]:
    """For each facet, its values with counts among the tools the search finds once that
    facet's own filter is left out (so each count says what choosing the value gives)."""
    without = {
        "registry": replace(query, registry=None),
        "descriptor_type": replace(query, descriptor_type=None),
        "access": replace(query, private=None),
        "organization": replace(query, organization=None),
        "label": replace(query, label=None),
    }

    def ids(facet: str) -> Any:
        return _filtered(session, user, without[facet]).with_only_columns(Tool.id).order_by(None)

    found: dict[str, list[Facet]] = {}
    rows = session.execute(
        select(Tool.registry_id, func.count())
        .where(Tool.id.in_(ids("registry")))
        .group_by(Tool.registry_id)
    )
    found["registry"] = sorted(
        (Facet(rid, registry_names.get(rid, rid), n) for rid, n in rows),
        key=lambda f: (-f.count, f.label),
    )
    kinds = [kind.value for kind in rules.DescriptorType]
    counts = session.execute(
        select(
            *(func.count().filter(Tool.descriptor_types.contains(f",{kind},")) for kind in kinds)
        ).where(Tool.id.in_(ids("descriptor_type")))
    ).one()
    found["descriptor_type"] = [
        Facet(kind, kind, n) for kind, n in zip(kinds, counts, strict=True) if n
    ]
    public, private = session.execute(
        select(
            func.count().filter(Tool.private.is_(False)),
            func.count().filter(Tool.private.is_(True)),
        ).where(Tool.id.in_(ids("access")))
    ).one()
    found["access"] = [
        facet
        for facet in (Facet("public", "Public", public), Facet("private", "Private", private))
        if facet.count
    ]
    organizations = session.execute(
        select(Organization.name, Organization.display_name, func.count())
        .join(Tool, Tool.organization_id == Organization.id)
        .where(Tool.id.in_(ids("organization")))
        .group_by(Organization.name, Organization.display_name)
    )
    found["organization"] = sorted(
        (Facet(name, shown, n) for name, shown, n in organizations),
        key=lambda f: (-f.count, f.label),
    )
    tally: dict[str, int] = {}
    for (framed,) in session.execute(
        select(Tool.labels).where(Tool.id.in_(ids("label")), Tool.labels != "")
    ):
        for label in framed.split(","):
            if label:
                tally[label] = tally.get(label, 0) + 1
    ranked = sorted(tally.items(), key=lambda item: (-item[1], item[0]))[:MAX_LABEL_VALUES]
    found["label"] = [Facet(label, label, n) for label, n in ranked]
    return found
