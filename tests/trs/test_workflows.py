"""Workflows over TRS 2.0.1: class Workflow, `#workflow/...` ids, ImageData with the digests
the registry gave, every file of a version; and cwltool running a workflow by its TRS id."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastapi.testclient import TestClient

from tests.support.app import MakeUser, bearer
from tests.support.git_repos import Repo
from tests.support.registry import LocalRegistry
from tests.support.workflows import ECHO_WORKFLOW, echo_files, echo_tool, register_workflow

CWLTOOL = shutil.which("cwltool") or str(Path(sys.executable).parent / "cwltool")
TRS = "/ga4gh/trs/v2"


def _published(
    http: httpx.Client | TestClient, repo: Repo, registry_image: str, section: str = "requirements"
) -> dict[str, Any]:
    repo.commit({**echo_files(registry_image, section), "test.json": '{"message": "hello"}\n'})
    (workflow,) = register_workflow(
        http,
        git_url=repo.url,
        descriptor_type="CWL",
        primary_descriptor_path="/workflow.cwl",
        test_parameter_files=["/test.json"],
    )["items"]
    published = http.patch(f"/api/workflows/{workflow['id']}", json={"published": True})
    assert published.status_code == 200, published.text
    return dict(published.json())


def test_a_published_workflow_is_a_trs_tool_of_class_workflow(
    client: TestClient, make_user: MakeUser, tmp_path: Path, open_registry: LocalRegistry
) -> None:
    repository = f"lab/echo-{uuid.uuid4().hex[:8]}"
    digest = open_registry.push_image(repository, "1.0", salt=repository)
    image = f"{open_registry.host}/{repository}:1.0"
    _, ada = make_user("ada")
    client.headers.update(bearer(ada))
    workflow = _published(client, Repo(tmp_path / "lab" / "echo"), image)
    client.headers.pop("authorization")
    encoded = quote(workflow["trs_id"], safe="")

    tool = client.get(f"{TRS}/tools/{encoded}").json()
    assert tool["id"] == "#workflow/localhost/lab/echo"
    assert tool["toolclass"]["id"] == "Workflow"
    assert tool["organization"] == "lab" and tool["name"] == "echo"
    (version,) = tool["versions"]
    assert version["id"] == "main" and version["descriptor_type"] == ["CWL"]
    assert version["images"] == [
        {
            "registry_host": open_registry.host,
            "image_name": image,
            "size": version["images"][0]["size"],
            "updated": "2024-05-01T12:00:00.123456+00:00",
            "checksum": [{"checksum": digest.removeprefix("sha256:"), "type": "sha-256"}],
            "image_type": "Docker",
        }
    ]
    classes = client.get(f"{TRS}/toolClasses").json()
    assert [c["id"] for c in classes] == ["CommandLineTool", "Workflow"]
    listed = client.get(f"{TRS}/tools", params={"toolClass": "Workflow"}).json()
    assert [t["id"] for t in listed] == ["#workflow/localhost/lab/echo"]
    assert client.get(f"{TRS}/tools", params={"id": tool["id"]}).json()[0]["id"] == tool["id"]
    assert client.get(f"{TRS}/tools", params={"toolClass": "CommandLineTool"}).json() == []

    base = f"{TRS}/tools/{encoded}/versions/main"
    primary = client.get(f"{base}/PLAIN_CWL/descriptor")
    assert primary.text == ECHO_WORKFLOW
    nested = client.get(f"{base}/CWL/descriptor/tools/echo.cwl").json()
    assert nested["content"] == echo_tool(image)
    files = client.get(f"{base}/CWL/files").json()
    assert {f["path"]: f["file_type"] for f in files} == {
        "workflow.cwl": "PRIMARY_DESCRIPTOR",
        "tools/echo.cwl": "SECONDARY_DESCRIPTOR",
        "test.json": "TEST_FILE",
    }
    assert [t["content"] for t in client.get(f"{base}/CWL/tests").json()] == [
        '{"message": "hello"}\n'
    ]
    wrong = client.get(f"{base}/WDL/descriptor")
    assert wrong.status_code == 404 and "is a CWL workflow" in wrong.json()["message"]
    assert client.get(f"{base}/containerfile").status_code == 404


def test_an_unpublished_workflow_is_not_found_over_trs(
    client: TestClient, make_user: MakeUser, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "lab" / "hidden")
    repo.commit(echo_files("ubuntu:22.04"))
    _, ada = make_user("ada")
    register_workflow(
        client,
        bearer(ada),
        git_url=repo.url,
        descriptor_type="CWL",
        primary_descriptor_path="/workflow.cwl",
    )

    encoded = quote("#workflow/localhost/lab/hidden", safe="")
    assert client.get(f"{TRS}/tools/{encoded}").status_code == 404
    assert client.get(f"{TRS}/tools/{encoded}", headers=bearer(ada)).status_code == 200
    assert client.get(f"{TRS}/tools", params={"toolClass": "Workflow"}).json() == []


def test_cwltool_runs_a_workflow_fetched_by_its_trs_id(
    live_server: str, make_user: MakeUser, tmp_path: Path
) -> None:
    name = f"run-{uuid.uuid4().hex[:8]}"
    _, token = make_user("ada")
    with httpx.Client(base_url=live_server, headers=bearer(token), timeout=120) as http:
        # As hints, so that a run without containers may ignore it (cwltool refuses a
        # DockerRequirement under requirements with --no-container).
        workflow = _published(http, Repo(tmp_path / "lab" / name), "ubuntu:22.04", "hints")

    result = subprocess.run(
        [
            CWLTOOL,
            "--no-container",
            "--add-ga4gh-tool-registry",
            live_server,
            f"{workflow['trs_id']}:main",
            "--message",
            "hello from dockyard",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert (tmp_path / "out.txt").read_text() == "hello from dockyard\n"
    assert (
        f"/tools/{quote(workflow['trs_id'], safe='')}/versions/main/plain-CWL/descriptor" in output
    )
