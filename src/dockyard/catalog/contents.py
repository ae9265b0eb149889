"""A tool's versions and what they hold: their images and files, added by hand or by a
refresh, and what the tool keeps for search from them. Services flush and never commit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.interfaces import ORMOption

from dockyard.accounts.models import User
from dockyard.catalog import rules
from dockyard.catalog.models import Tool, ToolVersion, VersionFile, VersionImage
from dockyard.catalog.services import changeable_tool, check_description, touch, visible_version
from dockyard.db import unit_of_work
from dockyard.db.types import utcnow
from dockyard.errors import Conflict, InvalidInput, NotFound
from dockyard.registries.reference import DIGEST_ALGORITHMS


@dataclass(frozen=True)
class ImageSpec:
    """One platform image of a version, as a maintainer states it."""

    digest: str
    os: str | None = None
    architecture: str | None = None
    variant: str | None = None
    size: int | None = None
    created: datetime | None = None


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
        description=check_description(description),
    )
    tool.versions.append(version)
    if tool.default_version is None and not hidden:
        tool.default_version = version
    touch(tool)
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
        version.description = check_description(description)
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
    touch(tool)
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
    touch(tool)
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
    touch(tool)
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


def change_versions(
    sessions: sessionmaker[Session],
    tool_id: int,
    change: Callable[[Session, Tool, dict[str, ToolVersion]], None],
    *,
    names: Sequence[str] | None = None,
    loads: Sequence[ORMOption] = (),
) -> bool:
    """Write what was read for a tool's versions (a refresh's tags, a git source's files): in
    one unit of work, `change` gets the tool and its versions by name (only `names`, when
    given, loaded with `loads`). False, with nothing written, when the tool was deleted
    meanwhile."""
    with unit_of_work(sessions) as session:
        tool = session.get(Tool, tool_id)
        if tool is None:
            return False
        statement = select(ToolVersion).where(ToolVersion.tool_id == tool_id).options(*loads)
        if names is not None:
            statement = statement.where(ToolVersion.name.in_(names))
        change(session, tool, {version.name: version for version in session.scalars(statement)})
    return True
