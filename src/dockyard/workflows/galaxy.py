"""The tools a Galaxy workflow (`.ga`, Galaxy's native JSON) runs, with their lines.

A `.ga` file names the Galaxy tools of its steps (and of its subworkflows), not container
images: Galaxy chooses each tool's container when it runs, from the tool's requirements and
the server's configuration (BioContainers' mulled images, by default). So the reading lists
each tool step's tool id, version and Tool Shed repository; what image a server would use is
not in the file and is not guessed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from dockyard.errors import InvalidInput

MAX_FILE_BYTES = 8 * 1024 * 1024
#: Subworkflows nested deeper than this are refused (a file can nest without end).
MAX_DEPTH = 20


@dataclass(frozen=True)
class GalaxyTool:
    """One tool step of a Galaxy workflow."""

    tool_id: str
    version: str | None
    #: `tool_shed/owner/name` of the repository the tool comes from, when it is a shed tool.
    repository: str | None
    changeset: str | None
    #: The step's label, or its number, with the subworkflows it is inside: `align > 3`.
    step: str
    file: str
    line: int


def read_tools(root: Path, primary: str) -> list[GalaxyTool]:
    """The tool steps of the `.ga` workflow at `primary` (a repository path)."""
    base = root.resolve()
    path = (base / primary.lstrip("/")).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        raise InvalidInput(f"the repository has no file {primary}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInput(f"{primary} is larger than 8 MiB")
    try:
        # JSON read as YAML (of which it is a subset) for the line of every value.
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(f"{primary}{at} is not a Galaxy workflow (.ga JSON)") from None
    workflow = _mapping(node)
    if workflow is None or _text(workflow.get("a_galaxy_workflow")) != "true":
        raise InvalidInput(f"{primary} is not a Galaxy workflow: it has no `a_galaxy_workflow`")
    return list(_tools(workflow, "/" + path.relative_to(base).as_posix(), (), 0))


def _tools(
    workflow: dict[str, yaml.Node], file: str, inside: tuple[str, ...], depth: int
) -> Iterator[GalaxyTool]:
    if depth > MAX_DEPTH:
        raise InvalidInput(f"{file} nests subworkflows more than {MAX_DEPTH} deep")
    steps = _mapping(workflow.get("steps"))
    for key, step_node in (steps or {}).items():
        step = _mapping(step_node) or {}
        label = _text(step.get("label")) or f"step {key}"
        kind = _text(step.get("type"))
        if kind == "subworkflow":
            nested = _mapping(step.get("subworkflow"))
            if nested is not None:
                yield from _tools(nested, file, (*inside, label), depth + 1)
            continue
        tool_id = _text(step.get("tool_id"))
        if kind != "tool" or not tool_id:
            continue
        shed = _mapping(step.get("tool_shed_repository")) or {}
        parts = [_text(shed.get(k)) for k in ("tool_shed", "owner", "name")]
        yield GalaxyTool(
            tool_id=tool_id,
            version=_text(step.get("tool_version")),
            repository="/".join(p for p in parts if p) if all(parts) else None,
            changeset=_text(shed.get("changeset_revision")),
            step=" > ".join((*inside, label)),
            file=file,
            line=step["tool_id"].start_mark.line + 1,
        )


def _mapping(node: yaml.Node | None) -> dict[str, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return {str(key.value): value for key, value in node.value if isinstance(key, yaml.ScalarNode)}


def _text(node: yaml.Node | None) -> str | None:
    if isinstance(node, yaml.ScalarNode) and node.value not in {"", "null"}:
        return str(node.value)
    return None
