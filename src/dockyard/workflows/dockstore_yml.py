"""A repository's `.dockstore.yml` (version 1.2): the workflows it declares, checked.

Read from `/.dockstore.yml` or `/.github/.dockstore.yml`. Each `workflows:` entry names a
descriptor language (`subclass`: CWL, WDL, NFL, GALAXY or SMK, in any case), its primary
descriptor and optional test parameter files, authors, a publish switch and filters of the
branches and tags that become versions. `tools:` and `service:` entries are for other kinds of
entries and are left alone. A file that breaks these rules is refused with the key and the
line to change.

Filters follow Dockstore: with none, every branch and tag is a version; with any, a branch
(or tag) must match one of the branch (or tag) patterns. A pattern is a glob (`*` within one
path segment, `**` across them, `{a,b}`, `?`, `[...]`), or a regular expression matched
against the whole name when written between slashes (`/v\\d+.*/`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from wcmatch import glob

from dockyard.catalog.rules import DescriptorType
from dockyard.errors import InvalidInput

#: Where Dockstore looks for the file, first to last.
LOCATIONS = ("/.dockstore.yml", "/.github/.dockstore.yml")
#: The largest `.dockstore.yml` read; a bigger one is refused.
MAX_BYTES = 256 * 1024
#: Workflow names: alphanumerics with internal underscores and hyphens (Dockstore's rule).
NAME = re.compile(r"[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*")
MAX_NAME = 256
_GLOB_FLAGS = glob.GLOBSTAR | glob.BRACE | glob.DOTGLOB
_WORKFLOW_KEYS = frozenset(
    {
        "name",
        "subclass",
        "primaryDescriptorPath",
        "testParameterFiles",
        "authors",
        "publish",
        "filters",
        "readMePath",
        "topic",
        "latestTagAsDefault",
        "enableAutoDois",
    }
)
_AUTHOR_KEYS = frozenset({"name", "email", "orcid", "affiliation", "role"})


@dataclass(frozen=True)
class Author:
    """Who wrote the workflow, as the file says."""

    name: str | None = None
    email: str | None = None
    orcid: str | None = None
    affiliation: str | None = None


@dataclass(frozen=True)
class Filters:
    """Which branches and tags become versions."""

    branches: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def admits(self, kind: str, name: str) -> bool:
        """Whether the branch (`kind` "branch") or tag ("tag") named `name` is a version."""
        if not self.branches and not self.tags:
            return True
        patterns = self.branches if kind == "branch" else self.tags
        return any(_matches(pattern, name) for pattern in patterns)


@dataclass(frozen=True)
class WorkflowEntry:
    """One workflow of a `.dockstore.yml`."""

    subclass: DescriptorType
    primary_descriptor_path: str
    name: str | None = None
    test_parameter_files: tuple[str, ...] = ()
    authors: tuple[Author, ...] = ()
    #: True publishes, False unpublishes, None leaves the workflow as it is.
    publish: bool | None = None
    filters: Filters = field(default_factory=Filters)
    readme_path: str | None = None
    topic: str | None = None
    #: The line of the entry in the file, for messages about it.
    line: int = 0


def parse(text: str, where: str = "/.dockstore.yml") -> list[WorkflowEntry]:
    """The workflows `text` declares; `InvalidInput` says which key on which line is wrong."""
    if len(text.encode()) > MAX_BYTES:
        raise InvalidInput(f"{where} is larger than {MAX_BYTES // 1024} KiB")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" on line {mark.line + 1}" if mark is not None else ""
        reason = getattr(error, "problem", None) or "it is not YAML"
        raise InvalidInput(f"{where} cannot be read{at}: {reason}") from None
    if not isinstance(root, yaml.MappingNode):
        raise InvalidInput(f"{where} must be a mapping with `version: 1.2` and `workflows:`")
    top = _mapping(root, where)
    version = top.get("version")
    if version is None or _scalar(version[1]) not in {"1.2", "1.20"}:
        line = version[0] if version else 1
        raise InvalidInput(
            f"{where} line {line}: `version` must be 1.2 (the version dockyard reads)"
        )
    entries_node = top.get("workflows")
    if entries_node is None:
        return []
    line, node = entries_node
    if not isinstance(node, yaml.SequenceNode):
        raise InvalidInput(f"{where} line {line}: `workflows` must be a list of workflows")
    entries = [_entry(item, where) for item in node.value]
    names = [entry.name for entry in entries]
    if len(entries) > 1 and None in names:
        missing = entries[names.index(None)]
        raise InvalidInput(
            f"{where} line {missing.line}: with several workflows each needs a `name`"
        )
    seen: set[str] = set()
    for entry in entries:
        if entry.name is not None:
            if entry.name.lower() in seen:
                raise InvalidInput(
                    f"{where} line {entry.line}: two workflows are named {entry.name!r}"
                )
            seen.add(entry.name.lower())
    return entries


def _entry(node: yaml.Node, where: str) -> WorkflowEntry:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        raise InvalidInput(f"{where} line {line}: each workflow is a mapping of keys")
    keys = _mapping(node, where)
    unknown = sorted(set(keys) - _WORKFLOW_KEYS)
    if unknown:
        raise InvalidInput(
            f"{where} line {keys[unknown[0]][0]}: unknown key {unknown[0]!r} (the keys are "
            f"{', '.join(sorted(_WORKFLOW_KEYS))})"
        )
    subclass = _required_text(keys, "subclass", where, line)
    try:
        kind = DescriptorType(subclass.upper())
    except ValueError:
        raise InvalidInput(
            f"{where} line {keys['subclass'][0]}: subclass {subclass!r} is not one of "
            f"{', '.join(DescriptorType)}"
        ) from None
    name = _optional_text(keys, "name", where)
    if name is not None and (len(name) > MAX_NAME or not NAME.fullmatch(name)):
        raise InvalidInput(
            f"{where} line {keys['name'][0]}: name {name!r} may hold only letters, digits and "
            f"inner '-' or '_', at most {MAX_NAME} characters"
        )
    return WorkflowEntry(
        subclass=kind,
        primary_descriptor_path=_path(keys, "primaryDescriptorPath", where, line),
        name=name,
        test_parameter_files=tuple(_paths(keys, "testParameterFiles", where)),
        authors=tuple(_authors(keys, where)),
        publish=_optional_bool(keys, "publish", where),
        filters=_filters(keys, where),
        readme_path=_path(keys, "readMePath", where, line) if "readMePath" in keys else None,
        topic=_optional_text(keys, "topic", where),
        line=line,
    )


def _mapping(node: yaml.MappingNode, where: str) -> dict[str, tuple[int, yaml.Node]]:
    keys: dict[str, tuple[int, yaml.Node]] = {}
    for key, value in node.value:
        text = _scalar(key)
        line = key.start_mark.line + 1
        if text is None:
            raise InvalidInput(f"{where} line {line}: keys are plain words")
        if text in keys:
            raise InvalidInput(f"{where} line {line}: {text!r} is given twice")
        keys[text] = (line, value)
    return keys


def _scalar(node: yaml.Node) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _required_text(keys: dict[str, tuple[int, yaml.Node]], key: str, where: str, line: int) -> str:
    if key not in keys:
        raise InvalidInput(f"{where} line {line}: the workflow needs `{key}`")
    text = _optional_text(keys, key, where)
    if not text:
        raise InvalidInput(f"{where} line {keys[key][0]}: `{key}` cannot be empty")
    return text


def _optional_text(keys: dict[str, tuple[int, yaml.Node]], key: str, where: str) -> str | None:
    if key not in keys:
        return None
    line, node = keys[key]
    text = _scalar(node)
    if text is None:
        raise InvalidInput(f"{where} line {line}: `{key}` must be text")
    return text.strip()


def _optional_bool(keys: dict[str, tuple[int, yaml.Node]], key: str, where: str) -> bool | None:
    if key not in keys:
        return None
    line, node = keys[key]
    value = yaml.safe_load(yaml.serialize(node)) if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(value, bool):
        raise InvalidInput(f"{where} line {line}: `{key}` must be true or false")
    return value


def _path(keys: dict[str, tuple[int, yaml.Node]], key: str, where: str, line: int) -> str:
    text = _required_text(keys, key, where, line)
    return _checked_path(text, where, keys[key][0], key)


def _checked_path(text: str, where: str, line: int, key: str) -> str:
    path = "/" + text.lstrip("/")
    parts = path.split("/")[1:]
    if any(part in {"", ".", ".."} for part in parts) or "\x00" in path:
        raise InvalidInput(
            f"{where} line {line}: `{key}` {text!r} must be a path inside the repository"
        )
    return path


def _sequence(
    keys: dict[str, tuple[int, yaml.Node]], key: str, where: str
) -> list[tuple[int, yaml.Node]]:
    if key not in keys:
        return []
    line, node = keys[key]
    if not isinstance(node, yaml.SequenceNode):
        raise InvalidInput(f"{where} line {line}: `{key}` must be a list")
    return [(item.start_mark.line + 1, item) for item in node.value]


def _paths(keys: dict[str, tuple[int, yaml.Node]], key: str, where: str) -> list[str]:
    paths = []
    for line, item in _sequence(keys, key, where):
        text = _scalar(item)
        if not text:
            raise InvalidInput(f"{where} line {line}: each of `{key}` is a path")
        paths.append(_checked_path(text.strip(), where, line, key))
    return paths


def _authors(keys: dict[str, tuple[int, yaml.Node]], where: str) -> list[Author]:
    authors = []
    for line, item in _sequence(keys, "authors", where):
        if not isinstance(item, yaml.MappingNode):
            raise InvalidInput(
                f"{where} line {line}: each author is a mapping (name, email, orcid)"
            )
        fields = _mapping(item, where)
        unknown = sorted(set(fields) - _AUTHOR_KEYS)
        if unknown:
            raise InvalidInput(
                f"{where} line {fields[unknown[0]][0]}: unknown author key {unknown[0]!r}"
            )
        values: dict[str, Any] = {
            key: _optional_text(fields, key, where)
            for key in ("name", "email", "orcid", "affiliation")
        }
        if not values["name"] and not values["orcid"]:
            raise InvalidInput(f"{where} line {line}: an author needs a `name` or an `orcid`")
        authors.append(Author(**values))
    return authors


def _filters(keys: dict[str, tuple[int, yaml.Node]], where: str) -> Filters:
    if "filters" not in keys:
        return Filters()
    line, node = keys["filters"]
    if not isinstance(node, yaml.MappingNode):
        raise InvalidInput(f"{where} line {line}: `filters` maps `branches` and `tags` to lists")
    kinds = _mapping(node, where)
    unknown = sorted(set(kinds) - {"branches", "tags"})
    if unknown:
        raise InvalidInput(
            f"{where} line {kinds[unknown[0]][0]}: filters are `branches` and `tags`, not "
            f"{unknown[0]!r}"
        )
    found: dict[str, tuple[str, ...]] = {}
    for kind in ("branches", "tags"):
        patterns = []
        for item_line, item in _sequence(kinds, kind, where):
            text = _scalar(item)
            if not text:
                raise InvalidInput(f"{where} line {item_line}: each of `{kind}` is a pattern")
            _check_pattern(text, where, item_line)
            patterns.append(text)
        found[kind] = tuple(patterns)
    return Filters(branches=found["branches"], tags=found["tags"])


def _check_pattern(pattern: str, where: str, line: int) -> None:
    if _is_regex(pattern):
        try:
            re.compile(pattern[1:-1])
        except re.error as error:
            raise InvalidInput(
                f"{where} line {line}: {pattern!r} is not a regular expression ({error})"
            ) from None


def _is_regex(pattern: str) -> bool:
    return len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/")


def _matches(pattern: str, name: str) -> bool:
    if _is_regex(pattern):
        return re.fullmatch(pattern[1:-1], name) is not None
    return bool(glob.globmatch(name, pattern, flags=_GLOB_FLAGS))
