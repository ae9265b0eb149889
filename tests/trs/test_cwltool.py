"""cwltool, a real TRS client, resolves and validates a dockyard tool over TRS."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlalchemy import Engine

from dockyard.accounts.models import User
from dockyard.catalog.demo import SAMTOOLS_CWL
from tests.support.app import bearer

CWLTOOL = shutil.which("cwltool") or str(Path(sys.executable).parent / "cwltool")


def test_cwltool_resolves_a_tool_through_trs_and_validates_it(
    live_server: str, engine: Engine, make_user: Callable[..., tuple[User, str]], tmp_path: Path
) -> None:
    _, token = make_user("ada")
    with httpx.Client(base_url=live_server, headers=bearer(token)) as http:
        tool = http.post("/api/tools", json={"image": "quay.io/biocontainers/samtools"}).json()
        http.post(f"/api/tools/{tool['id']}/versions", json={"name": "1.17--h00cdaf9_0"})
        files = [
            {
                "path": "tools/samtools-view.cwl",
                "file_type": "PRIMARY_DESCRIPTOR",
                "descriptor_type": "CWL",
                "content": SAMTOOLS_CWL,
            }
        ]
        assert (
            http.put(
                f"/api/tools/{tool['id']}/versions/1.17--h00cdaf9_0/files", json={"files": files}
            ).status_code
            == 200
        )
        assert http.post(f"/api/tools/{tool['id']}/publish").status_code == 200

    result = subprocess.run(
        [
            CWLTOOL,
            "--add-ga4gh-tool-registry",
            live_server,
            "--validate",
            "quay.io/biocontainers/samtools:1.17--h00cdaf9_0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "is valid CWL" in output
    assert (
        "/api/ga4gh/v2/tools/quay.io%2Fbiocontainers%2Fsamtools/versions/1.17--h00cdaf9_0/plain-CWL/descriptor/samtools-view.cwl"
        in output
    )
