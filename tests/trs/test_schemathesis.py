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

SPEC = Path(__file__).parent / "trs-openapi-2.0.1.yaml"
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
    # Ids supplied so that every operation reaches a real tool, version and descriptor type.
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[parameters]\n"
        'id = "quay.io/biocontainers/samtools"\n'
        'version_id = "1.17"\n'
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
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "Tested: 11" in output
    assert "Missing test data" not in output, output[-6000:]
