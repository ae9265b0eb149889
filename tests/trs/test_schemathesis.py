"""schemathesis against the official TRS 2.0.1 document: no server error, no bad response."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import Engine

from tests.support.app import bearer
from tests.support.descriptors import FILES
from tests.support.git_repos import Repo
from tests.support.workflows import register_workflow

SPEC = Path(__file__).parent / "trs-openapi-2.0.1.yaml"
PIPELINE = """\
cwlVersion: v1.2
class: Workflow
inputs: {bam: File}
outputs: {sam: {type: File, outputSource: view/sam}}
steps:
  view:
    run: lib/view.cwl
    in: {bam: bam}
    out: [sam]
"""
VIEW = """\
cwlVersion: v1.2
class: CommandLineTool
hints:
  DockerRequirement: {dockerPull: "quay.io/biocontainers/samtools:1.17--h00cdaf9_0"}
baseCommand: [samtools, view]
inputs: {bam: {type: File, inputBinding: {position: 1}}}
outputs: {sam: stdout}
"""
SCHEMATHESIS = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")


def test_schemathesis_finds_no_server_error_and_no_response_violating_the_schema(
    live_server: str, engine: Engine, make_user: object, tmp_path: Path
) -> None:
    _, token = make_user("ada")  # type: ignore[operator]
    with httpx.Client(base_url=live_server, headers=bearer(token)) as http:
        tool = http.post(
            "/api/tools",
            json={"image": "quay.io/biocontainers/samtools", "description": "SAM and BAM"},
        ).json()
        http.post(
            f"/api/tools/{tool['id']}/versions",
            json={
                "name": "1.17",
                "images": [
                    {
                        "digest": "sha256:" + "c" * 64,
                        "os": "linux",
                        "architecture": "amd64",
                        "size": 10,
                    }
                ],
            },
        )
        http.put(f"/api/tools/{tool['id']}/versions/1.17/files", json={"files": FILES})
        assert http.post(f"/api/tools/{tool['id']}/publish").status_code == 200
        # A workflow in the catalog too, so that listings mix both classes.
        repo = Repo(tmp_path / "lab" / "pipeline")
        repo.commit({"tools/pipeline.cwl": PIPELINE, "tools/lib/view.cwl": VIEW})
        registered = register_workflow(
            http,
            git_url=repo.url,
            descriptor_type="CWL",
            primary_descriptor_path="/tools/pipeline.cwl",
        )
        wid = registered["items"][0]["id"]
        assert http.patch(f"/api/workflows/{wid}", json={"published": True}).status_code == 200
    # Ids supplied so that every operation reaches a real tool (then workflow), version and
    # descriptor type.
    _run(tmp_path, live_server, "quay.io/biocontainers/samtools", "1.17", tested=11)
    # A workflow has no containerfile: that operation only ever answers 404 for it.
    _run(
        tmp_path,
        live_server,
        "#workflow/localhost/lab/pipeline",
        "main",
        tested=10,
        exclude=["/tools/{id}/versions/{version_id}/containerfile"],
    )


def _run(
    tmp_path: Path,
    live_server: str,
    entry: str,
    version: str,
    *,
    tested: int,
    exclude: list[str] | None = None,
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[parameters]\n"
        f'id = "{entry}"\n'
        f'version_id = "{version}"\n'
        'type = "CWL"\n'
        'relative_path = "lib/view.cwl"\n'
    )
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(config),
            "run",
            str(SPEC),
            "--url",
            f"{live_server}/ga4gh/trs/v2",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            "30",
            "--seed",
            "20261127",
            "--phases",
            "examples,coverage,fuzzing",
            *(option for path in exclude or [] for option in ("--exclude-path", path)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert f"Tested: {tested}" in output
    assert "Missing test data" not in output, output[-6000:]
