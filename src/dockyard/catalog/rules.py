"""The rules for tools (docs/specification.md section 4), as plain functions over plain values.

No framework or database import: the services call these, and the tests try every rule on
every registry where it applies.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from dockyard.errors import InvalidInput
from dockyard.registries.catalog import PrivateTools, Registry

TOOLNAME_PATTERN = r"[a-zA-Z0-9]+(?:[-_]{1,2}[a-zA-Z0-9]+)*"
TOOLNAME_MAX_LENGTH = 256
VERSION_NAME_PATTERN = r"[\w][\w.-]{0,127}"
DESCRIPTION_MAX_LENGTH = 20_000

MAX_FILE_BYTES = 1024 * 1024
MAX_FILES_PER_VERSION = 200
MAX_VERSION_BYTES = 16 * 1024 * 1024
MAX_PATH_LENGTH = 1024


class FileType(StrEnum):
    """TRS `ToolFile.file_type`."""

    PRIMARY_DESCRIPTOR = "PRIMARY_DESCRIPTOR"
    SECONDARY_DESCRIPTOR = "SECONDARY_DESCRIPTOR"
    TEST_FILE = "TEST_FILE"
    CONTAINERFILE = "CONTAINERFILE"
    OTHER = "OTHER"


class DescriptorType(StrEnum):
    """TRS descriptor types: CWL, WDL, Nextflow, Galaxy, Snakemake."""

    CWL = "CWL"
    WDL = "WDL"
    NFL = "NFL"
    GALAXY = "GALAXY"
    SMK = "SMK"


_E = TypeVar("_E", bound=StrEnum)

DESCRIPTOR_FILE_TYPES = frozenset({FileType.PRIMARY_DESCRIPTOR, FileType.SECONDARY_DESCRIPTOR})


def check_toolname(toolname: str) -> str:
    """The toolname if it fits rule 5, else a message with the allowed form."""
    if len(toolname) > TOOLNAME_MAX_LENGTH:
        raise InvalidInput(
            f"toolname is {len(toolname)} characters long; at most {TOOLNAME_MAX_LENGTH} are "
            "allowed"
        )
    if not re.fullmatch(TOOLNAME_PATTERN, toolname):
        raise InvalidInput(
            f"toolname {toolname!r} is not allowed: use letters and digits, separated by one or "
            "two '-' or '_' (for example 'bamstats' or 'bam_stats'); it cannot start or end "
            "with a separator"
        )
    return toolname


def check_version_name(name: str) -> str:
    """A version is a tag: the same grammar as Docker's tags."""
    if not re.fullmatch(VERSION_NAME_PATTERN, name, re.ASCII):
        raise InvalidInput(
            f"version name {name!r} is not a valid tag: use up to 128 ASCII letters, digits, "
            "'_', '.' and '-', starting with a letter, digit or '_'"
        )
    return name


def check_privacy(registry: Registry, *, private: bool, maintainer_email: str | None) -> None:
    """Rules 1-3: what the registry demands of a tool's visibility and contact address."""
    if registry.private_tools is PrivateTools.REQUIRED and not private:
        raise InvalidInput(
            f"registry {registry.name} is private-only: register the tool as private "
            '("private": true) and give a maintainer email'
        )
    if registry.private_tools is PrivateTools.FORBIDDEN and private:
        raise InvalidInput(
            f'tools from {registry.name} are always public: register the tool with "private": false'
        )
    if private and not maintainer_email:
        raise InvalidInput(
            "a private tool needs a maintainer email, where access requests are sent: give "
            '"maintainer_email"'
        )


def check_visibility_change(registry: Registry, *, was_private: bool, private: bool) -> None:
    """Rule 2: an ECR tool keeps the visibility it was registered with."""
    if was_private != private and registry.id in {"ecr", "ecr-public"}:
        state = "private" if was_private else "public"
        raise InvalidInput(
            f"tools from {registry.name} cannot change visibility after registration: this one "
            f"stays {state}"
        )


def tool_path(host: str, repository: str, toolname: str | None) -> str:
    """The tool's TRS id: `host/repository[/toolname]`, host in lowercase."""
    path = f"{host.lower()}/{repository}"
    return f"{path}/{toolname}" if toolname else path


def search_text(path: str, registry: Registry, description: str, labels: Sequence[str] = ()) -> str:
    """The words search matches for a tool: path parts, registry id and name, description,
    labels."""
    text = f"{path} {registry.id} {registry.name} {description} {' '.join(labels)}"
    words = re.split(r"[^0-9A-Za-z]+", text)
    return " ".join(word.lower() for word in words if word)


LABEL_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,28}[a-z0-9])?"
MAX_LABELS = 10


def framed_labels(labels: Sequence[str]) -> str:
    """Labels as stored (",alignment,long-reads,"), checked and without repeats; `InvalidInput`
    saying what a label may be."""
    kept: list[str] = []
    for raw in labels:
        label = raw.strip().lower()
        if not re.fullmatch(LABEL_PATTERN, label):
            raise InvalidInput(
                f"label {raw!r} is not allowed: use 1-30 lowercase letters, digits and '-', "
                "e.g. 'alignment' or 'long-reads'"
            )
        if label not in kept:
            kept.append(label)
    if len(kept) > MAX_LABELS:
        raise InvalidInput(f"a tool has at most {MAX_LABELS} labels")
    return f",{','.join(kept)}," if kept else ""


def normalize_file_path(path: str) -> str:
    """A file path relative to the version's root, or `InvalidInput` when it could escape it."""
    if "\x00" in path:
        raise InvalidInput("file paths cannot contain NUL characters")
    if "\\" in path:
        raise InvalidInput(f"file path {path!r} uses '\\': separate directories with '/'")
    if path.startswith("/"):
        raise InvalidInput(
            f"file path {path!r} is absolute: give it relative to the version's root, as "
            f"{path.lstrip('/')!r}"
        )
    normalized = posixpath.normpath(path) if path else ""
    if normalized in {"", "."}:
        raise InvalidInput("a file needs a path, such as 'Dockstore.cwl'")
    if normalized == ".." or normalized.startswith("../"):
        raise InvalidInput(f"file path {path!r} leaves the version's files through '..'")
    if len(normalized) > MAX_PATH_LENGTH:
        raise InvalidInput(f"file path is longer than {MAX_PATH_LENGTH} characters")
    return normalized


@dataclass(frozen=True, slots=True)
class FileSpec:
    """A file as a maintainer uploads it, checked and normalized."""

    path: str
    file_type: FileType
    descriptor_type: DescriptorType | None
    content: str
    sha256: str
    size: int


def check_files(files: list[tuple[str, str, str | None, str]]) -> list[FileSpec]:
    """Validate a version's files (path, file_type, descriptor_type, content) as one set."""
    if len(files) > MAX_FILES_PER_VERSION:
        raise InvalidInput(
            f"a version holds at most {MAX_FILES_PER_VERSION} files; {len(files)} were given"
        )
    specs: list[FileSpec] = []
    seen: set[str] = set()
    primaries: set[DescriptorType] = set()
    total = 0
    for raw_path, raw_type, raw_descriptor, content in files:
        path = normalize_file_path(raw_path)
        if path in seen:
            raise InvalidInput(f"file {path!r} is given twice")
        seen.add(path)
        file_type = _enum(FileType, raw_type, "file_type", path)
        descriptor = (
            _enum(
                DescriptorType,
                raw_descriptor.upper().removeprefix("PLAIN_"),
                "descriptor_type",
                path,
            )
            if raw_descriptor
            else None
        )
        if file_type in DESCRIPTOR_FILE_TYPES and descriptor is None:
            raise InvalidInput(
                f"descriptor {path!r} needs a descriptor_type: one of {', '.join(DescriptorType)}"
            )
        if file_type is FileType.PRIMARY_DESCRIPTOR:
            if descriptor in primaries:
                raise InvalidInput(
                    f"there is already a primary {descriptor} descriptor: a version has at most "
                    "one primary descriptor per type; mark the others SECONDARY_DESCRIPTOR"
                )
            primaries.add(descriptor)  # type: ignore[arg-type]
        encoded = content.encode("utf-8")
        if len(encoded) > MAX_FILE_BYTES:
            raise InvalidInput(
                f"file {path!r} is {len(encoded):,} bytes; at most {MAX_FILE_BYTES:,} are allowed"
            )
        total += len(encoded)
        specs.append(
            FileSpec(
                path=path,
                file_type=file_type,
                descriptor_type=descriptor,
                content=content,
                sha256=hashlib.sha256(encoded).hexdigest(),
                size=len(encoded),
            )
        )
    if total > MAX_VERSION_BYTES:
        raise InvalidInput(
            f"the files add up to {total:,} bytes; a version holds at most {MAX_VERSION_BYTES:,}"
        )
    if sum(1 for spec in specs if spec.file_type is FileType.CONTAINERFILE) > 1:
        raise InvalidInput("a version has at most one CONTAINERFILE (its Dockerfile)")
    return specs


def _enum(kind: type[_E], value: str, field: str, path: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(
            f"file {path!r}: {field} {value!r} is not one of {', '.join(kind)}"
        ) from None
