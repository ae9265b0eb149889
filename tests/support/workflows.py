"""Workflow repositories for the tests: files written out for the readers, a CWL workflow
whose one step echoes its input in a container, and registration through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

#: A CWL workflow with one step, `run: tools/echo.cwl` (see `echo_tool`).
ECHO_WORKFLOW = """\
cwlVersion: v1.2
class: Workflow
inputs:
  message: string
outputs:
  out:
    type: File
    outputSource: echo/out
steps:
  echo:
    run: tools/echo.cwl
    in:
      message: message
    out: [out]
"""

_ECHO = """\
cwlVersion: v1.2
class: CommandLineTool
{section}:
  DockerRequirement:
    dockerPull: {image}
baseCommand: echo
inputs:
  message:
    type: string
    inputBinding:
      position: 1
outputs:
  out:
    type: stdout
stdout: out.txt
"""


def echo_tool(image: str, section: str = "requirements") -> str:
    """The echo step, its image in `requirements` (or `hints`) at line 5."""
    return _ECHO.format(image=image, section=section)


def echo_files(image: str, section: str = "requirements") -> dict[str, str]:
    """The files of the echo workflow's repository."""
    return {"workflow.cwl": ECHO_WORKFLOW, "tools/echo.cwl": echo_tool(image, section)}


def repository(root: Path, files: dict[str, str]) -> Path:
    """`root` holding `files` (repository path -> text); returns `root`."""
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def register_workflow(
    http: httpx.Client | TestClient, headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    """POST /api/workflows with `body`; the answer (201 asserted)."""
    answer = http.post("/api/workflows", json=body, headers=headers or {})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())
