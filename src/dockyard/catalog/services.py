"""Tools: the one place their rules are enforced, for the API, the CLI and the web UI.

Visibility (rule 6): a tool that is not published exists only for its maintainers and admins;
for everyone else every lookup answers "not found", never "forbidden". Services flush and
never commit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Select, UnaryExpression, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from dockyard.accounts.models import User
from dockyard.accounts.services import find_user, validate_email
from dockyard.catalog import rules
from dockyard.catalog.models import (
    Tool,
    ToolCredential,
    ToolMaintainer,
    ToolVersion,
    VersionFile,
    VersionImage,
)
from dockyard.catalog.search import INDEXED_SORTS, matches, query_terms
from dockyard.db.types import utcnow
from dockyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from dockyard.registries.catalog import Catalog, Registry
from dockyard.registries.reference import DIGEST_ALGORITHMS
from dockyard.registries.services import resolve
from dockyard.sources.rules import parse_source

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
    "-uses": (Tool.uses.desc(), Tool.id.desc()),
}


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


@dataclass(frozen=True)
class ImageSpec:
    """One platform image of a version, as a maintainer states it."""

    digest: str
    os: str | None = None
    architecture: str | None = None
    variant: str | None = None
    size: int | None = None
    created: datetime | None = None


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


#: Loader options that bring each version's images and files with the tool, in two queries.
VERSION_CONTENTS = (
    selectinload(Tool.versions).selectinload(ToolVersion.images),
    selectinload(Tool.versions).selectinload(ToolVersion.files),
)


def tool_by_path(session: Session, user: User | None, path: str) -> Tool:
    """The visible tool whose path this is (case-insensitively), with its versions' contents."""
    tool = session.scalar(
        select(Tool)
        .where(func.lower(Tool.path) == path.lower())
        .options(selectinload(Tool.maintainers), *VERSION_CONTENTS)
    )
    if tool is None or not can_view(tool, user):
        raise NotFound(f"no tool with path {path!r}")
    return tool


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
    description = _check_description(registration.description)
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


def _check_description(description: str) -> str:
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
) -> Tool:
    """Change a tool's editable fields; its path and registry never change."""
    tool = changeable_tool(session, user, tool_id)
    registry = registry_of(catalog, tool)
    if description is not None:
        tool.description = _check_description(description)
        tool.search_text = rules.search_text(tool.path, registry, tool.description)
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
    _touch(tool)
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
        _touch(tool)
        session.flush()
    return tool


def unpublish(session: Session, user: User, tool_id: int) -> Tool:
    """Hide a tool from everyone but its maintainers; admins may do it to moderate."""
    tool = changeable_tool(session, user, tool_id, moderation=True)
    if tool.published:
        tool.published = False
        _touch(tool)
        session.flush()
    return tool


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


# --- versions and files -----------------------------------------------------------------------


def add_version(
    session: Session,
    user: User,
    tool_id: int,
    name: str,
    *,
    hidden: bool = False,
    images: Sequence[ImageSpec] = (),
    description: str = "",
) -> ToolVersion:
    """Add a version (a tag of the image) by hand."""
    tool = changeable_tool(session, user, tool_id)
    rules.check_version_name(name)
    if any(version.name == name for version in tool.versions):
        raise Conflict(f"{tool.path} already has a version {name!r}")
    version = ToolVersion(
        name=name,
        hidden=hidden,
        images=_images(images),
        description=_check_description(description),
    )
    tool.versions.append(version)
    if tool.default_version is None and not hidden:
        tool.default_version = version
    _touch(tool)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"{tool.path} already has a version {name!r}") from None
    return version


def update_version(
    session: Session,
    user: User,
    tool_id: int,
    name: str,
    *,
    hidden: bool | None = None,
    images: Sequence[ImageSpec] | None = None,
    description: str | None = None,
) -> ToolVersion:
    """Hide or show a version, describe it, or replace its images."""
    tool = changeable_tool(session, user, tool_id)
    version = visible_version(tool, user, name)
    if description is not None:
        version.description = _check_description(description)
    if hidden is not None and hidden != version.hidden:
        if hidden:
            _keep_one_visible(tool, version, "hide")
        version.hidden = hidden
        if hidden and tool.default_version is version:
            tool.default_version = _first_visible(tool)
    if images is not None:
        version.images = _images(images)
    version.updated_at = utcnow()
    refresh_derived(tool)
    _touch(tool)
    session.flush()
    return version


def delete_version(session: Session, user: User, tool_id: int, name: str) -> None:
    """Delete a version and its files."""
    tool = changeable_tool(session, user, tool_id)
    version = visible_version(tool, user, name)
    if not version.hidden:
        _keep_one_visible(tool, version, "delete")
    if tool.default_version is version:
        tool.default_version = _first_visible(tool, besides=version)
        session.flush()
    tool.versions.remove(version)
    refresh_derived(tool)
    _touch(tool)
    session.flush()


def replace_files(
    session: Session,
    user: User,
    tool_id: int,
    name: str,
    files: list[tuple[str, str, str | None, str]],
) -> ToolVersion:
    """Replace all files of a version with these (path, file_type, descriptor_type, content)."""
    tool = changeable_tool(session, user, tool_id)
    version = visible_version(tool, user, name)
    if version.source_commit is not None:
        raise Conflict(
            f"the files of version {version.name} come from git ({version.source_reference} at "
            f"{version.source_commit[:12]}): change them in the repository and refresh"
        )
    store_files(session, version, rules.check_files(files))
    refresh_derived(tool)
    _touch(tool)
    session.flush()
    return version


def store_files(session: Session, version: ToolVersion, specs: list[rules.FileSpec]) -> None:
    """Replace a version's files with these checked ones."""
    version.files.clear()
    session.flush()
    version.files.extend(
        VersionFile(
            path=spec.path,
            file_type=spec.file_type.value,
            descriptor_type=spec.descriptor_type.value if spec.descriptor_type else None,
            content=spec.content,
            sha256=spec.sha256,
            size=spec.size,
        )
        for spec in sorted(specs, key=lambda spec: spec.path)
    )
    version.updated_at = utcnow()


def version_file(tool: Tool, user: User | None, name: str, path: str) -> VersionFile:
    """One file of a visible version, by its normalized path."""
    version = visible_version(tool, user, name)
    wanted = rules.normalize_file_path(path)
    for file in version.files:
        if file.path == wanted:
            return file
    raise NotFound(f"version {name!r} of {tool.path} has no file {wanted!r}")


def _images(images: Sequence[ImageSpec]) -> list[VersionImage]:
    result = []
    for image in images:
        algorithm, _, encoded = image.digest.partition(":")
        if DIGEST_ALGORITHMS.get(algorithm) != len(encoded) or encoded.lower() != encoded:
            raise InvalidInput(
                f"image digest {image.digest!r} must be sha256:<64 lowercase hex digits>"
            )
        if image.size is not None and image.size < 0:
            raise InvalidInput("an image size cannot be negative")
        result.append(image_row(image))
    return result


#: What an image row holds, and a stated (`ImageSpec`) or read (`PlatformImage`) image too.
IMAGE_FIELDS = tuple(f.name for f in fields(ImageSpec))


def image_row(image: Any) -> VersionImage:
    """A row for an image as stated by a maintainer or read from a registry."""
    return VersionImage(**{name: getattr(image, name) for name in IMAGE_FIELDS})


def _keep_one_visible(tool: Tool, version: ToolVersion, verb: str) -> None:
    if tool.published and _first_visible(tool, besides=version) is None:
        raise InvalidInput(
            f"{version.name} is the last visible version of the published tool {tool.path}: "
            f"unpublish the tool before you {verb} it"
        )


def _first_visible(tool: Tool, besides: ToolVersion | None = None) -> ToolVersion | None:
    return next((v for v in tool.versions if not v.hidden and v is not besides), None)


def refresh_derived(tool: Tool) -> None:
    """Recompute what the tool keeps for search from its visible versions."""
    kinds = sorted(
        {
            file.descriptor_type
            for version in tool.versions
            if not version.hidden
            for file in version.files
            if file.file_type == rules.FileType.PRIMARY_DESCRIPTOR and file.descriptor_type
        }
    )
    tool.descriptor_types = f",{','.join(kinds)}," if kinds else ""


def _touch(tool: Tool) -> None:
    tool.updated_at = utcnow()


# --- finding tools --------------------------------------------------------------------------


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
    maintained = select(ToolMaintainer.tool_id).where(
        ToolMaintainer.user_id == (user.id if user else -1)
    )
    if query.mine:
        statement = statement.where(Tool.id.in_(maintained))
    elif user is None:
        statement = statement.where(Tool.published.is_(True))
    elif not user.is_admin:
        statement = statement.where(or_(Tool.published.is_(True), Tool.id.in_(maintained)))
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
