"""Which of a version's files answer a request: the containerfile, the primary descriptor of a
type and the files next to it, the test files of a type, and every file a type's runner needs.

TRS asks these (one call per request); they read the version's loaded files and raise
`NotFound` with a message that says what is missing. They read any version whose files have
a path, a file type and a descriptor type: a tool's, or a workflow's.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Protocol, TypeVar

from dockyard.catalog.rules import DescriptorType, FileType
from dockyard.errors import NotFound


class FileRow(Protocol):
    """A stored file, as these rules read it."""

    @property
    def path(self) -> str: ...

    @property
    def file_type(self) -> str: ...

    @property
    def descriptor_type(self) -> str | None: ...

    @property
    def content(self) -> str: ...

    @property
    def sha256(self) -> str: ...


F = TypeVar("F", bound=FileRow)
F_co = TypeVar("F_co", bound=FileRow, covariant=True)


class VersionRow(Protocol[F_co]):
    """A stored version with its files."""

    @property
    def name(self) -> str: ...

    @property
    def files(self) -> Sequence[F_co]: ...


def containerfiles(owner: str, version: VersionRow[F]) -> list[F]:
    """The version's Dockerfiles; a version without one has nothing to answer. `owner` names
    the tool in messages."""
    files = [f for f in version.files if f.file_type == FileType.CONTAINERFILE]
    if not files:
        raise NotFound(f"version {version.name} of {owner} has no containerfile")
    return files


def primary_descriptor(version: VersionRow[F], descriptor: DescriptorType) -> F | None:
    """The version's primary descriptor of this type, if it has one."""
    return next(
        (
            f
            for f in version.files
            if f.file_type == FileType.PRIMARY_DESCRIPTOR and f.descriptor_type == descriptor
        ),
        None,
    )


def descriptor_file(
    owner: str, version: VersionRow[F], descriptor: DescriptorType, relative: str | None = None
) -> F:
    """The primary descriptor of this type, or the file at `relative` from its directory (an
    imported descriptor); never a path that climbs out of the version's files. `owner` names
    the tool or workflow in messages."""
    primary = primary_descriptor(version, descriptor)
    if primary is None:
        raise NotFound(f"version {version.name} of {owner} has no {descriptor} descriptor")
    if relative is None:
        return primary
    directory = primary.path.rpartition("/")[0]
    joined = posixpath.normpath(posixpath.join(directory, relative))
    if relative.startswith("/") or joined == ".." or joined.startswith("../") or "\x00" in relative:
        raise NotFound(f"{relative!r} is outside this version's files")
    for file in version.files:
        if file.path == joined:
            return file
    raise NotFound(f"version {version.name} has no file {relative!r} next to its descriptor")


def tests_of(version: VersionRow[F], descriptor: DescriptorType) -> list[F]:
    """The test parameter files for this type, and those for any type."""
    return [
        f
        for f in version.files
        if f.file_type == FileType.TEST_FILE and f.descriptor_type in (None, descriptor)
    ]


def runner_files(version: VersionRow[F], descriptor: DescriptorType) -> list[F]:
    """Every file a runner of this type needs: its descriptors and tests, the files for any
    type, and the containerfile."""
    return [
        f
        for f in version.files
        if f.descriptor_type in (None, descriptor) or f.file_type == FileType.CONTAINERFILE
    ]
