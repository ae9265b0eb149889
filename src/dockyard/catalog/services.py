"""Tools: the one place their rules are enforced, for the API, the CLI and the web UI.

Visibility (rule 6): a tool that is not published exists only for its maintainers and admins;
for everyone else every lookup answers "not found", never "forbidden". This module holds
visibility, registration and changes to a tool; `contents` its versions and files, `listing`
finding tools, `files` which files answer a TRS request. Services flush and never commit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, delete, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from dockyard.accounts.models import MAINTAINING_ROLES, Organization, OrganizationMember, User
from dockyard.accounts.organizations import (
    get_organization,
    maintaining_organizations,
    require_maintainer,
)
from dockyard.accounts.services import find_user, validate_email
from dockyard.catalog import rules
from dockyard.catalog.models import (
    Tool,
    ToolCredential,
    ToolMaintainer,
    ToolStar,
    ToolVersion,
)
from dockyard.db.types import utcnow
from dockyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from dockyard.registries.catalog import Catalog, Registry
from dockyard.registries.services import resolve
from dockyard.sources.rules import parse_source


@dataclass(frozen=True)
class Registration:
    """What a maintainer gives to register a tool."""

    image: str
    registry: str | None = None
    registry_path: str | None = None
    toolname: str | None = None
    private: bool = False
    maintainer_email: str | None = None
    description: str = ""
    source: dict[str, Any] | None = None


# --- visibility ---------------------------------------------------------------------------


def can_view(tool: Tool, user: User | None) -> bool:
    """Rule 6: published tools for everyone, the rest for maintainers and admins."""
    return tool.published or (user is not None and user.is_admin) or tool.is_maintained_by(user)


def can_change(tool: Tool, user: User | None) -> bool:
    """Rule 7: only maintainers change a tool."""
    return tool.is_maintained_by(user)


def visible_tool(session: Session, user: User | None, tool_id: int) -> Tool:
    """The tool, if the caller may see it; otherwise `NotFound`, whether or not it exists."""
    tool = session.get(Tool, tool_id)
    if tool is None or not can_view(tool, user):
        raise NotFound(f"no tool with id {tool_id}")
    return tool


@dataclass(frozen=True)
class ToolPage:
    """A tool as its page shows it, read as rows (no object graph): the tool's columns, the
    names of the versions the caller may see, in order, and its maintainers."""

    tool: Any  # a Row of the tools columns and `organization_name`
    versions: list[tuple[int, str]]
    maintainers: list[tuple[int, str]]
    #: The users who maintain it through its organization (its admins and maintainers).
    through_organization: frozenset[int] = frozenset()

    def maintained_by(self, user: User | None) -> bool:
        if user is None:
            return False
        return user.id in self.through_organization or any(
            uid == user.id for uid, _ in self.maintainers
        )

    @property
    def default_version(self) -> str | None:
        """The default version's name, if the caller may see it."""
        wanted = self.tool.default_version_id
        return next((name for vid, name in self.versions if vid == wanted), None)


_PAGE_COLUMNS = select(
    *Tool.__table__.columns, Organization.name.label("organization_name")
).outerjoin(Organization, Organization.id == Tool.organization_id)


def tool_page(session: Session, user: User | None, tool_id: int) -> ToolPage:
    """`visible_tool` in three queries of columns, for answers that need no more."""
    tool = session.execute(_PAGE_COLUMNS.where(Tool.id == tool_id, tools_visible_to(user))).first()
    if tool is None:
        raise NotFound(f"no tool with id {tool_id}")
    versions = session.execute(
        select(ToolVersion.id, ToolVersion.name)
        .where(ToolVersion.tool_id == tool_id, versions_visible_to(user))
        .order_by(ToolVersion.id)
    )
    maintainers = session.execute(
        select(ToolMaintainer.user_id, User.username)
        .join(User, User.id == ToolMaintainer.user_id)
        .where(ToolMaintainer.tool_id == tool_id)
        .order_by(ToolMaintainer.id)
    )
    through: frozenset[int] = frozenset()
    if tool.organization_id is not None:
        through = frozenset(
            session.scalars(
                select(OrganizationMember.user_id).where(
                    OrganizationMember.organization_id == tool.organization_id,
                    OrganizationMember.role.in_(MAINTAINING_ROLES),
                )
            )
        )
    return ToolPage(
        tool,
        [(vid, name) for vid, name in versions],
        [(uid, username) for uid, username in maintainers],
        through,
    )


def tools_visible_to(user: User | None) -> ColumnElement[bool]:
    """Rule 6 as a query condition on tools: what `can_view` says of each row."""
    if user is not None and user.is_admin:
        return true()
    published = Tool.published.is_(True)
    if user is None:
        return published
    return or_(published, Tool.id.in_(maintained_tool_ids(user)))


def maintained_tool_ids(user: User) -> CompoundSelect[int]:
    """The ids of the tools `user` maintains: as one of their maintainers, or as an admin
    or maintainer of the organization they belong to (`Tool.is_maintained_by` as a query)."""
    direct = select(ToolMaintainer.tool_id).where(ToolMaintainer.user_id == user.id)
    through = select(Tool.id).where(Tool.organization_id.in_(maintaining_organizations(user)))
    return direct.union(through)


def versions_visible_to(user: User | None) -> ColumnElement[bool]:
    """`visible_versions` as a query condition on versions: hidden ones only for the tool's
    maintainers and admins."""
    if user is not None and user.is_admin:
        return true()
    shown = ToolVersion.hidden.is_(False)
    if user is None:
        return shown
    return or_(shown, ToolVersion.tool_id.in_(maintained_tool_ids(user)))


#: Loader options that bring each version's images and files with the tool, in two queries.
VERSION_CONTENTS = (
    selectinload(Tool.versions).selectinload(ToolVersion.images),
    selectinload(Tool.versions).selectinload(ToolVersion.files),
)


def tool_by_path(session: Session, user: User | None, path: str) -> Tool:
    """The visible tool whose path this is (case-insensitively), with its versions' contents."""
    tool = first_visible_tool(session, user, [path])
    if tool is None:
        raise NotFound(f"no tool with path {path!r}")
    return tool


def first_visible_tool(session: Session, user: User | None, paths: Sequence[str]) -> Tool | None:
    """Of the tools at these paths (case-insensitively), the first in `paths` that the caller
    may see, with its versions' contents: one query, however many paths."""
    wanted = [path.lower() for path in paths]
    if not wanted:
        return None
    found = session.scalars(
        select(Tool)
        .where(func.lower(Tool.path).in_(wanted))
        .options(selectinload(Tool.maintainers), *VERSION_CONTENTS)
    )
    visible = {tool.path.lower(): tool for tool in found if can_view(tool, user)}
    return next((visible[path] for path in wanted if path in visible), None)


def changeable_tool(
    session: Session, user: User, tool_id: int, *, moderation: bool = False
) -> Tool:
    """The tool, if the caller maintains it (or, for `moderation`, is an admin)."""
    tool = visible_tool(session, user, tool_id)
    if can_change(tool, user) or (moderation and user.is_admin):
        return tool
    raise PermissionDenied(f"only the maintainers of {tool.path} can change it")


def visible_versions(tool: Tool, user: User | None) -> list[ToolVersion]:
    """The tool's versions the caller may see: hidden ones only for maintainers and admins."""
    if can_change(tool, user) or (user is not None and user.is_admin):
        return list(tool.versions)
    return [version for version in tool.versions if not version.hidden]


def visible_version(tool: Tool, user: User | None, name: str) -> ToolVersion:
    """One version the caller may see, by name."""
    for version in visible_versions(tool, user):
        if version.name == name:
            return version
    raise NotFound(f"{tool.path} has no version {name!r}")


# --- registration and changes ---------------------------------------------------------------


def register_tool(
    session: Session, catalog: Catalog, user: User, registration: Registration
) -> Tool:
    """Register an image as a tool, enforcing every registration rule."""
    resolution = resolve(
        catalog,
        registration.image,
        registry_path=registration.registry_path,
        registry_id=registration.registry,
    )
    reference, registry = resolution.reference, resolution.registry
    if reference.tag or reference.digest:
        raise InvalidInput(
            f"register the repository without a tag or digest ({reference.name}); its tags "
            "become the tool's versions"
        )
    toolname = rules.check_toolname(registration.toolname) if registration.toolname else None
    email = validate_email(registration.maintainer_email) if registration.maintainer_email else None
    rules.check_privacy(registry, private=registration.private, maintainer_email=email)
    description = check_description(registration.description)
    path = rules.tool_path(reference.domain, reference.path, toolname)
    if session.scalar(select(Tool.id).where(func.lower(Tool.path) == path.lower())) is not None:
        raise _path_taken(path)
    tool = Tool(
        path=path,
        registry_id=registry.id,
        host=reference.domain.lower(),
        repository=reference.path,
        toolname=toolname,
        namespace=reference.path.split("/")[0],
        name=toolname or reference.path.rsplit("/", 1)[-1],
        private=registration.private,
        maintainer_email=email,
        description=description,
        source=_checked_source(registration.source),
        search_text=rules.search_text(path, registry, description),
    )
    tool.maintainers.append(ToolMaintainer(user=user))
    session.add(tool)
    try:
        session.flush()
    except IntegrityError:
        raise _path_taken(path) from None
    return tool


def _path_taken(path: str) -> Conflict:
    return Conflict(
        f"a tool with path {path} is already registered: choose a toolname to register the "
        "same image again (its path then ends in /<toolname>)"
    )


def _checked_source(source: dict[str, Any] | None) -> dict[str, Any] | None:
    """The git source as given, once it is known to be usable."""
    if source is not None:
        parse_source(source)
    return source


def check_description(description: str) -> str:
    if len(description) > rules.DESCRIPTION_MAX_LENGTH:
        raise InvalidInput(
            f"the description has {len(description):,} characters; at most "
            f"{rules.DESCRIPTION_MAX_LENGTH:,} are allowed"
        )
    return description


_UNSET: Any = object()


def update_tool(
    session: Session,
    catalog: Catalog,
    user: User,
    tool_id: int,
    *,
    description: str | None = None,
    maintainer_email: str | None = _UNSET,
    private: bool | None = None,
    default_version: str | None = _UNSET,
    source: dict[str, Any] | None = _UNSET,
    tag_pattern: str | None = _UNSET,
    labels: list[str] | None = None,
    organization: str | None = _UNSET,
) -> Tool:
    """Change a tool's editable fields; its path and registry never change. Moving it into
    an organization takes one of that organization's admins or maintainers."""
    tool = changeable_tool(session, user, tool_id)
    registry = registry_of(catalog, tool)
    if description is not None:
        tool.description = check_description(description)
    if maintainer_email is not _UNSET:
        tool.maintainer_email = validate_email(maintainer_email) if maintainer_email else None
    if private is not None:
        rules.check_visibility_change(registry, was_private=tool.private, private=private)
        tool.private = private
    rules.check_privacy(registry, private=tool.private, maintainer_email=tool.maintainer_email)
    if default_version is not _UNSET:
        tool.default_version = (
            visible_version(tool, user, default_version) if default_version else None
        )
    if source is not _UNSET:
        tool.source = _checked_source(source)
    if tag_pattern is not _UNSET:
        tool.tag_pattern = _check_tag_pattern(tag_pattern) if tag_pattern else None
    if labels is not None:
        tool.labels = rules.framed_labels(labels)
    if description is not None or labels is not None:  # the words search matches
        tool.search_text = rules.search_text(tool.path, registry, tool.description, tool.label_list)
    if organization is not _UNSET:
        if organization:
            found = get_organization(session, organization)
            require_maintainer(found, user)
            tool.organization = found
        else:
            tool.organization = None
    touch(tool)
    session.flush()
    return tool


def _check_tag_pattern(pattern: str) -> str:
    if len(pattern) > 500:
        raise InvalidInput("tag_pattern is longer than 500 characters")
    try:
        re.compile(pattern)
    except re.error as error:
        raise InvalidInput(
            f"tag_pattern is not a valid regular expression ({error}); for example "
            "'v?[0-9]+(\\.[0-9]+)*' keeps release tags"
        ) from None
    return pattern


def set_credentials(
    session: Session, user: User, tool_id: int, *, kind: str, username: str, sealed_secret: str
) -> ToolCredential:
    """Store (or replace) a tool's registry credentials; the secret arrives sealed."""
    tool = changeable_tool(session, user, tool_id)
    if kind not in {"basic", "aws"}:
        raise InvalidInput("credential kind must be 'basic' (username and password) or 'aws'")
    if kind == "aws" and tool.registry_id != "ecr":
        raise InvalidInput("AWS credentials are only for tools from private Amazon ECR")
    stored = session.scalar(select(ToolCredential).where(ToolCredential.tool_id == tool.id))
    if stored is None:
        stored = ToolCredential(tool_id=tool.id, kind=kind, username=username, secret=sealed_secret)
        session.add(stored)
    else:
        stored.kind, stored.username, stored.secret = kind, username, sealed_secret
        stored.updated_at = utcnow()
    session.flush()
    return stored


def get_credentials(session: Session, user: User, tool_id: int) -> ToolCredential | None:
    """A tool's stored credentials (for its maintainers; the secret stays sealed)."""
    tool = changeable_tool(session, user, tool_id)
    return session.scalar(select(ToolCredential).where(ToolCredential.tool_id == tool.id))


def delete_credentials(session: Session, user: User, tool_id: int) -> None:
    """Forget a tool's registry credentials."""
    stored = get_credentials(session, user, tool_id)
    if stored is not None:
        session.delete(stored)
        session.flush()


def registry_of(catalog: Catalog, tool: Tool) -> Registry:
    """The registry a tool was registered from (the catch-all if the operator removed it)."""
    return registry_for(catalog, tool.registry_id, tool.host)


def registry_for(catalog: Catalog, registry_id: str, host: str) -> Registry:
    """A registry by id, or by host when the operator no longer defines that id."""
    try:
        return catalog.get(registry_id)
    except InvalidInput:
        return catalog.match(host)


def publish(session: Session, user: User, tool_id: int) -> Tool:
    """Rule 6: a tool is published only with at least one visible version."""
    tool = changeable_tool(session, user, tool_id)
    visible = [version for version in tool.versions if not version.hidden]
    if not visible:
        raise InvalidInput(
            f"{tool.path} has no visible version: add a version (or refresh from the registry) "
            "before publishing"
        )
    if all(version.source_problem for version in visible):
        raise InvalidInput(
            f"every visible version of {tool.path} is invalid (version {visible[0].name}: "
            f"{visible[0].source_problem}); fix the git source and refresh before publishing"
        )
    if not tool.published:
        tool.published = True
        tool.published_at = utcnow()
        touch(tool)
        session.flush()
    return tool


def unpublish(session: Session, user: User, tool_id: int) -> Tool:
    """Hide a tool from everyone but its maintainers; admins may do it to moderate."""
    tool = changeable_tool(session, user, tool_id, moderation=True)
    if tool.published:
        tool.published = False
        touch(tool)
        session.flush()
    return tool


# --- stars --------------------------------------------------------------------------------


def star(session: Session, user: User, tool_id: int) -> int:
    """Star a tool the user may see (again: no change); its number of stars."""
    visible_tool(session, user, tool_id)
    if session.get(ToolStar, (user.id, tool_id)) is None:
        try:
            with session.begin_nested():
                session.add(ToolStar(user_id=user.id, tool_id=tool_id))
        except IntegrityError:  # starred at the same moment elsewhere: that star counted
            pass
        else:
            _count_stars(session, tool_id, +1)
    return _stars_of(session, tool_id)


def unstar(session: Session, user: User, tool_id: int) -> int:
    """Take the user's star off a tool they may see (none: no change); its number of stars."""
    visible_tool(session, user, tool_id)
    removed = session.execute(
        delete(ToolStar).where(ToolStar.user_id == user.id, ToolStar.tool_id == tool_id)
    )
    if removed.rowcount:  # type: ignore[attr-defined]
        _count_stars(session, tool_id, -1)
    return _stars_of(session, tool_id)


def starred_by(session: Session, user: User | None, tool_ids: Sequence[int]) -> set[int]:
    """Which of these tools the user has starred."""
    if user is None or not tool_ids:
        return set()
    return set(
        session.scalars(
            select(ToolStar.tool_id).where(
                ToolStar.user_id == user.id, ToolStar.tool_id.in_(tool_ids)
            )
        )
    )


def starred_tools(session: Session, user: User) -> list[Tool]:
    """The tools the user starred and may still see, the latest star first."""
    return list(
        session.scalars(
            select(Tool)
            .join(ToolStar, ToolStar.tool_id == Tool.id)
            .where(ToolStar.user_id == user.id, tools_visible_to(user))
            .order_by(ToolStar.created_at.desc(), Tool.id.desc())
        )
    )


def _count_stars(session: Session, tool_id: int, change: int) -> None:
    # One UPDATE that adds to the stored count: two stars at once never lose one.
    session.execute(
        update(Tool).where(Tool.id == tool_id).values(stars=Tool.stars + change),
        execution_options={"synchronize_session": False},
    )


def _stars_of(session: Session, tool_id: int) -> int:
    return session.scalar(select(Tool.stars).where(Tool.id == tool_id)) or 0


def delete_tool(session: Session, user: User, tool_id: int) -> None:
    """Delete a tool with its versions and files; admins may do it to moderate."""
    tool = changeable_tool(session, user, tool_id, moderation=True)
    tool.default_version = None
    session.flush()
    session.delete(tool)
    session.flush()


def add_maintainer(session: Session, user: User, tool_id: int, username: str) -> Tool:
    """Make another user a maintainer of the tool."""
    tool = changeable_tool(session, user, tool_id)
    other = find_user(session, username)
    if other is None:
        raise NotFound(f"no user named {username!r}")
    if not tool.is_maintained_by(other):
        tool.maintainers.append(ToolMaintainer(user=other))
        session.flush()
    return tool


def remove_maintainer(session: Session, user: User, tool_id: int, username: str) -> Tool:
    """Remove a maintainer; the last one stays."""
    tool = changeable_tool(session, user, tool_id)
    entry = next((m for m in tool.maintainers if m.user.username.lower() == username.lower()), None)
    if entry is None:
        raise NotFound(f"{username!r} is not a maintainer of {tool.path}")
    if len(tool.maintainers) == 1:
        raise InvalidInput(
            f"{username} is the last maintainer of {tool.path}: add another maintainer first, "
            "or delete the tool"
        )
    tool.maintainers.remove(entry)
    session.flush()
    return tool


def touch(tool: Tool) -> None:
    tool.updated_at = utcnow()
