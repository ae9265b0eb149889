"""The tool steps of a Galaxy `.ga` workflow, a subworkflow's too, with their lines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dockyard.errors import InvalidInput
from dockyard.workflows.galaxy import GalaxyTool, read_tools

FASTQC = "toolshed.g2.bx.psu.edu/repos/devteam/fastqc/fastqc/0.74+galaxy0"
BWA = "toolshed.g2.bx.psu.edu/repos/devteam/bwa/bwa_mem/0.7.17.2"
WORKFLOW = {
    "a_galaxy_workflow": "true",
    "format-version": "0.1",
    "name": "QC and align",
    "steps": {
        "0": {"id": 0, "type": "data_input", "label": "reads", "tool_id": None},
        "1": {
            "id": 1,
            "type": "tool",
            "tool_id": FASTQC,
            "tool_version": "0.74+galaxy0",
            "tool_shed_repository": {
                "changeset_revision": "5ec9f6bceaee",
                "name": "fastqc",
                "owner": "devteam",
                "tool_shed": "toolshed.g2.bx.psu.edu",
            },
        },
        "2": {
            "id": 2,
            "type": "subworkflow",
            "label": "align",
            "subworkflow": {
                "a_galaxy_workflow": "true",
                "steps": {
                    "0": {
                        "id": 0,
                        "type": "tool",
                        "label": "map reads",
                        "tool_id": BWA,
                        "tool_version": "0.7.17.2",
                    },
                    "1": {"id": 1, "type": "tool", "tool_id": "sort1", "tool_version": "1.2.0"},
                },
            },
        },
    },
}


def test_tool_steps_are_listed_with_their_repository_and_line(tmp_path: Path) -> None:
    text = json.dumps(WORKFLOW, indent=4)
    (tmp_path / "qc.ga").write_text(text)
    lines = text.splitlines()

    def line_of(value: str) -> int:
        return next(n for n, line in enumerate(lines, 1) if f'"tool_id": "{value}"' in line)

    assert read_tools(tmp_path, "/qc.ga") == [
        GalaxyTool(
            tool_id=FASTQC,
            version="0.74+galaxy0",
            repository="toolshed.g2.bx.psu.edu/devteam/fastqc",
            changeset="5ec9f6bceaee",
            step="step 1",
            file="/qc.ga",
            line=line_of(FASTQC),
        ),
        GalaxyTool(BWA, "0.7.17.2", None, None, "align > map reads", "/qc.ga", line_of(BWA)),
        GalaxyTool("sort1", "1.2.0", None, None, "align > step 1", "/qc.ga", line_of("sort1")),
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"steps": {}}', "is not a Galaxy workflow: it has no `a_galaxy_workflow`"),
        ('{"a_galaxy_workflow": "true", "steps": {', "/qc.ga line 1 is not a Galaxy workflow"),
    ],
)
def test_what_is_not_a_galaxy_workflow_says_so(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "qc.ga").write_text(text)
    with pytest.raises(InvalidInput, match=re.escape(says)):
        read_tools(tmp_path, "/qc.ga")


def test_endless_nesting_is_refused(tmp_path: Path) -> None:
    nested: dict[str, object] = {"a_galaxy_workflow": "true", "steps": {}}
    for _ in range(25):
        nested = {
            "a_galaxy_workflow": "true",
            "steps": {"0": {"type": "subworkflow", "subworkflow": nested}},
        }
    (tmp_path / "deep.ga").write_text(json.dumps(nested))
    with pytest.raises(InvalidInput, match="nests subworkflows more than 20 deep"):
        read_tools(tmp_path, "/deep.ga")
