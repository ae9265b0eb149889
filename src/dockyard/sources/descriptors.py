"""Descriptors as text: what they import, whether they parse. Pure functions.

Imports are followed only within the repository: a relative path is joined to the importing
file's directory, and a result that leaves the repository root is refused (never read).
Absolute URLs (`https://...`) and in-document references (`#name`) are left alone.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import Any

import yaml

from dockyard.catalog.rules import DescriptorType
from dockyard.errors import InvalidInput

#: CWL fields whose string value names another file, and what that file is: a CWL document
#: (`run`), YAML spliced in (`$import`) or text taken as it is (`$include`).
CWL_FILE_KEYS = {"run": "document", "$import": "yaml", "$include": "text"}
_WDL_IMPORT = re.compile(r"""^\s*import\s+(["'])(?P<path>[^"']+)\1""", re.MULTILINE)
_WDL_BODY = re.compile(r"\b(?:workflow|task|struct)\s+[A-Za-z_]\w*\s*\{")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class DescriptorProblem(InvalidInput):
    """A descriptor that does not parse, or imports something it may not."""

    code = "invalid_descriptor"


def imports(kind: DescriptorType, text: str, path: str) -> list[tuple[str, str]]:
    """What the descriptor at `path` imports: (repository path, "document", "yaml" or "text")."""
    if kind is DescriptorType.CWL:
        names = list(_cwl_references(_parse_cwl(text, path)))
    elif kind is DescriptorType.WDL:
        names = [(match.group("path"), "document") for match in _WDL_IMPORT.finditer(text)]
    else:
        return []
    found: list[tuple[str, str]] = []
    for name, role in names:
        target = resolve(path, name)
        if target is not None and all(target != seen for seen, _ in found):
            found.append((target, role))
    return found


def check_import(kind: DescriptorType, role: str, text: str, path: str) -> list[tuple[str, str]]:
    """Check an imported file for its role; what it imports in turn."""
    if role == "document":
        check(kind, text, path)
        return imports(kind, text, path)
    if role == "yaml":
        return imports(kind, text, path)  # parses it, and follows its own imports
    return []


def resolve(importer: str, name: str) -> str | None:
    """The repository path `name` means from `importer`; None for URLs and fragments."""
    name = name.split("#", 1)[0]
    if not name or _URL.match(name):
        if name.startswith("file://"):
            raise DescriptorProblem(f"{importer} imports {name}: file:// URLs are not followed")
        return None
    if name.startswith("/"):
        raise DescriptorProblem(
            f"{importer} imports {name!r}, an absolute path: use a path relative to the file"
        )
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(importer), name))
    if joined == ".." or joined.startswith("../"):
        raise DescriptorProblem(
            f"{importer} imports {name!r}, which leaves the repository: imports must stay inside it"
        )
    return joined


def check(kind: DescriptorType, text: str, path: str) -> None:
    """`DescriptorProblem` unless the descriptor parses as its kind."""
    if kind is DescriptorType.CWL:
        document = _parse_cwl(text, path)
        if not isinstance(document, dict) or not (
            "cwlVersion" in document or "class" in document or "$graph" in document
        ):
            raise DescriptorProblem(
                f"{path} is not a CWL document: it has no cwlVersion, class or $graph"
            )
    elif kind is DescriptorType.WDL and not _WDL_BODY.search(text):
        raise DescriptorProblem(f"{path} is not a WDL document: it has no workflow or task")


def _parse_cwl(text: str, path: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise DescriptorProblem(f"{path} is not valid YAML{where}") from None


def _cwl_references(node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in CWL_FILE_KEYS and isinstance(value, str):
                yield value, CWL_FILE_KEYS[key]
            else:
                yield from _cwl_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _cwl_references(item)
