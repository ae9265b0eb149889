"""Workflows through the REST API: registered from git (explicitly or from `.dockstore.yml`),
each branch and tag a version, images resolved in a real registry, a moved tag flagged on an
unfrozen version and left alone on a frozen one, the pinned bundle, bad input per version."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3
from fastapi.testclient import TestClient

from tests.support.app import MakeUser, bearer
from tests.support.git_repos import Repo
from tests.support.registry import LocalRegistry
from tests.support.workflows import ECHO_WORKFLOW, echo_files, echo_tool, register_workflow

DOCKSTORE_YML = """\
version: 1.2
workflows:
  - name: align
    subclass: cwl
    primaryDescriptorPath: /workflow.cwl
    testParameterFiles:
      - /test.json
    authors:
      - name: Ada Lovelace
        orcid: 0000-0002-1825-0097
  - name: count
    subclass: WDL
    primaryDescriptorPath: /count.wdl
    filters:
      branches: [main]
"""

COUNT = """\
version 1.0
task count {
  input { File f }
  command <<< wc -l ~{f} >>>
  output { Int n = read_int(stdout()) }
  runtime { docker: "ubuntu:22.04" }
}
workflow counting {
  input { File f }
  call count { input: f = f }
}
"""


def _pushed(registry: LocalRegistry, salt: str = "") -> tuple[str, str, str]:
    """A new repository with tag 1.0 in the registry: (repository, image, digest)."""
    repository = f"lab/echo-{uuid.uuid4().hex[:8]}"
    digest = registry.push_image(repository, "1.0", salt=salt or repository)
    return repository, f"{registry.host}/{repository}:1.0", digest


def _cwl_repo(path: Path, image: str) -> Repo:
    repo = Repo(path)
    repo.commit(echo_files(image))
    repo.tag("v1")
    return repo


def _register(client: TestClient, token: str, **body: Any) -> dict[str, Any]:
    return register_workflow(client, bearer(token), **body)


def _echo(client: TestClient, token: str, repo: Repo) -> dict[str, Any]:
    """The echo workflow of `repo`, registered explicitly."""
    (workflow,) = _register(
        client,
        token,
        git_url=repo.url,
        descriptor_type="CWL",
        primary_descriptor_path="/workflow.cwl",
    )["items"]
    return dict(workflow)


def _version(client: TestClient, token: str, workflow_id: int, name: str) -> dict[str, Any]:
    answer = client.get(f"/api/workflows/{workflow_id}/versions/{name}", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_cwl_workflow_registers_with_each_branch_and_tag_and_its_image_resolved(
    client: TestClient, make_user: MakeUser, tmp_path: Path, open_registry: LocalRegistry
) -> None:
    _, image, digest = _pushed(open_registry)
    repo = _cwl_repo(tmp_path / "lab" / "echo", image)
    _, ada = make_user("ada")

    registered = _register(
        client,
        ada,
        git_url=repo.url,
        descriptor_type="cwl",
        primary_descriptor_path="/workflow.cwl",
    )

    (workflow,) = registered["items"]
    assert workflow["path"] == "localhost/lab/echo"
    assert workflow["trs_id"] == "#workflow/localhost/lab/echo"
    assert workflow["descriptor_type"] == "CWL"
    assert workflow["versions"] == ["main", "v1"]
    assert workflow["published"] is False
    version = _version(client, ada, workflow["id"], "main")
    assert version["commit"] == repo.git("rev-parse", "HEAD")
    assert {f["path"]: f["file_type"] for f in version["files"]} == {
        "workflow.cwl": "PRIMARY_DESCRIPTOR",
        "tools/echo.cwl": "SECONDARY_DESCRIPTOR",
    }
    (found,) = version["images"]
    assert found["reference"] == image
    assert found["image"] == image
    assert (found["file"], found["line"]) == ("/tools/echo.cwl", 5)
    assert found["digest"] == digest
    assert found["platforms"] == ["linux/amd64"]
    assert found["size"] and found["size"] > 0
    assert found["private"] is False
    assert found["problems"] == [f"dockyard does not know the registry {open_registry.host}"]


def test_a_moved_tag_is_flagged_on_an_unfrozen_version_and_left_alone_on_a_frozen_one(
    client: TestClient, make_user: MakeUser, tmp_path: Path, open_registry: LocalRegistry
) -> None:
    repository, image, first = _pushed(open_registry)
    repo = _cwl_repo(tmp_path / "lab" / "moving", image)
    _, ada = make_user("ada")
    workflow = _echo(client, ada, repo)
    wid = workflow["id"]
    frozen = client.post(f"/api/workflows/{wid}/versions/v1/freeze", headers=bearer(ada))
    assert frozen.status_code == 200, frozen.text
    assert frozen.json()["frozen"] is True
    files_before = {f["path"]: f["sha256"] for f in frozen.json()["files"]}

    moved = open_registry.push_image(repository, "1.0", salt="moved")
    repo.git("checkout", "--quiet", "-b", "side")
    repo.commit({"workflow.cwl": ECHO_WORKFLOW + "doc: changed after the freeze\n"})
    repo.git("tag", "--force", "v1")  # the frozen version's tag now names another commit
    repo.git("checkout", "--quiet", "main")
    report = client.post(f"/api/workflows/{wid}/refresh", headers=bearer(ada)).json()

    assert report["status"] == "ok"
    assert report["frozen"] == ["v1"]
    main = _version(client, ada, wid, "main")
    assert main["images"][0]["digest"] == moved
    assert any(
        f"pointed to {first} and points to {moved}" in p for p in main["images"][0]["problems"]
    )
    v1 = _version(client, ada, wid, "v1")
    assert v1["images"][0]["digest"] == first
    assert not any("moved" in p for p in v1["images"][0]["problems"])
    assert {f["path"]: f["sha256"] for f in v1["files"]} == files_before


def test_a_frozen_versions_pinned_bundle_carries_the_registrys_digests(
    client: TestClient, make_user: MakeUser, tmp_path: Path, open_registry: LocalRegistry
) -> None:
    _, image, digest = _pushed(open_registry)
    repo = _cwl_repo(tmp_path / "lab" / "pinned", image)
    _, ada = make_user("ada")
    workflow = _echo(client, ada, repo)
    wid = workflow["id"]
    unfrozen = client.get(f"/api/workflows/{wid}/versions/v1/pinned", headers=bearer(ada))
    assert unfrozen.status_code == 409
    assert "freeze it first" in unfrozen.json()["error"]["message"]
    client.post(f"/api/workflows/{wid}/versions/v1/freeze", headers=bearer(ada))

    bundle = client.get(f"/api/workflows/{wid}/versions/v1/pinned", headers=bearer(ada))

    assert bundle.status_code == 200
    assert bundle.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(bundle.content))
    assert sorted(archive.namelist()) == ["dockyard-pins.json", "tools/echo.cwl", "workflow.cwl"]
    assert f"dockerPull: {image}@{digest}\n" in archive.read("tools/echo.cwl").decode()
    pins = json.loads(archive.read("dockyard-pins.json"))
    assert pins["version"] == "v1" and pins["commit"] == repo.git("rev-parse", "v1^{commit}")
    assert [(p["file"], p["line"], p["pinned"], p["digest"]) for p in pins["images"]] == [
        ("/tools/echo.cwl", 5, True, digest)
    ]
    primary = client.get(f"/api/workflows/{wid}/versions/v1/pinned/descriptor", headers=bearer(ada))
    assert primary.text == ECHO_WORKFLOW


def test_dockstore_yml_with_two_workflows_registers_both(
    client: TestClient, make_user: MakeUser, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "lab" / "pair")
    repo.commit(
        {
            ".dockstore.yml": DOCKSTORE_YML,
            "workflow.cwl": ECHO_WORKFLOW,
            "tools/echo.cwl": echo_tool("quay.io/biocontainers/coreutils:8.31--h14c3975_0"),
            "test.json": '{"message": "hello"}\n',
            "count.wdl": COUNT,
        }
    )
    repo.git("branch", "develop")
    _, ada = make_user("ada")

    registered = _register(client, ada, git_url=repo.url)

    by_path = {w["path"]: w for w in registered["items"]}
    assert set(by_path) == {"localhost/lab/pair/align", "localhost/lab/pair/count"}
    align, count = by_path["localhost/lab/pair/align"], by_path["localhost/lab/pair/count"]
    assert align["trs_id"] == "#workflow/localhost/lab/pair/align"
    assert align["from_dockstore_yml"] is True
    assert align["authors"] == [{"name": "Ada Lovelace", "orcid": "0000-0002-1825-0097"}]
    assert align["versions"] == ["main", "develop"]
    assert count["descriptor_type"] == "WDL"
    assert count["versions"] == ["main"]  # the filter admits main only
    files = {f["path"]: f["file_type"] for f in _version(client, ada, align["id"], "main")["files"]}
    assert files["test.json"] == "TEST_FILE"
    (image,) = _version(client, ada, count["id"], "main")["images"]
    assert image["image"] == "docker.io/library/ubuntu:22.04"


def test_a_version_that_does_not_parse_has_the_problem_alone(
    client: TestClient, make_user: MakeUser, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "lab" / "broken")
    repo.commit(echo_files("ubuntu:22.04"))
    repo.git("checkout", "--quiet", "-b", "broken")
    repo.commit({"tools/echo.cwl": "cwlVersion: v1.2\nclass: [unclosed\n"})
    repo.git("checkout", "--quiet", "-b", "escaping")
    repo.commit({"workflow.cwl": ECHO_WORKFLOW.replace("tools/echo.cwl", "../../etc/passwd")})
    _, ada = make_user("ada")

    registered = _register(
        client,
        ada,
        git_url=repo.url,
        descriptor_type="CWL",
        primary_descriptor_path="/workflow.cwl",
    )
    (workflow,), (report,) = registered["items"], registered["reports"]

    assert report["status"] == "partial"
    assert report["read"] == ["main"]
    assert set(report["problems"]) == {"broken", "escaping"}
    again = client.post(f"/api/workflows/{workflow['id']}/refresh", headers=bearer(ada)).json()
    assert again["unchanged"] == ["main"]  # a version read whole is not read again
    assert set(again["problems"]) == {"broken", "escaping"}  # the others are retried
    main = _version(client, ada, workflow["id"], "main")
    broken = _version(client, ada, workflow["id"], "broken")
    escaping = _version(client, ada, workflow["id"], "escaping")
    assert main["problem"] is None and main["images"]
    assert "tools/echo.cwl" in broken["problem"] and broken["files"] == []
    assert "outside the repository" in escaping["problem"]


ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def test_a_private_ecr_image_links_to_the_tool_where_access_is_requested(
    aws: None, client: TestClient, make_user: MakeUser, tmp_path: Path
) -> None:
    boto3.client("ecr", region_name="us-east-1").create_repository(repositoryName="team/aligner")
    _, maria = make_user("maria")
    _, ada = make_user("ada")
    tool = client.post(
        "/api/tools",
        json={
            "image": "team/aligner",
            "registry_path": ECR,
            "private": True,
            "maintainer_email": "team@example.org",
        },
        headers=bearer(maria),
    ).json()
    client.post(f"/api/tools/{tool['id']}/versions", json={"name": "2.1"}, headers=bearer(maria))
    assert client.post(f"/api/tools/{tool['id']}/publish", headers=bearer(maria)).status_code == 200
    repo = Repo(tmp_path / "lab" / "private")
    repo.commit(echo_files(f"{ECR}/team/aligner:2.1"))

    workflow = _echo(client, ada, repo)

    (image,) = _version(client, ada, workflow["id"], "main")["images"]
    assert image["private"] is True
    assert image["registry"] == "ecr"
    assert image["digest"] is None
    assert any("private images only" in p for p in image["problems"])
    assert image["tool"] == {
        "id": tool["id"],
        "path": tool["path"],
        "url": f"/tools/{tool['path']}",
        "request_access_url": f"/tools/{tool['path']}#access",
    }


GALAXY = {
    "a_galaxy_workflow": "true",
    "format-version": "0.1",
    "name": "QC",
    "steps": {
        "0": {"id": 0, "type": "data_input", "label": "reads", "tool_id": None},
        "1": {
            "id": 1,
            "type": "tool",
            "label": "quality",
            "tool_id": "toolshed.g2.bx.psu.edu/repos/devteam/fastqc/fastqc/0.74+galaxy0",
            "tool_version": "0.74+galaxy0",
            "tool_shed_repository": {
                "changeset_revision": "5ec9f6bceaee",
                "name": "fastqc",
                "owner": "devteam",
                "tool_shed": "toolshed.g2.bx.psu.edu",
            },
        },
    },
}


def test_a_galaxy_workflow_lists_its_tool_steps_and_no_images(
    client: TestClient, make_user: MakeUser, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "lab" / "galaxy")
    repo.commit({"qc.ga": json.dumps(GALAXY, indent=2)})
    _, ada = make_user("ada")

    (workflow,) = _register(
        client, ada, git_url=repo.url, descriptor_type="galaxy", primary_descriptor_path="/qc.ga"
    )["items"]

    version = _version(client, ada, workflow["id"], "main")
    assert version["images"] == []
    assert [(t["step"], t["version"], t["repository"]) for t in version["tools"]] == [
        ("quality", "0.74+galaxy0", "toolshed.g2.bx.psu.edu/devteam/fastqc")
    ]


def test_bad_registrations_say_what_to_change_and_register_nothing(
    client: TestClient, make_user: MakeUser, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "lab" / "invalid")
    repo.commit({".dockstore.yml": "version: 1.2\nworkflows:\n  - subclass: PERL\n"})
    plain = Repo(tmp_path / "lab" / "plain")
    plain.commit(echo_files("ubuntu:22.04"))
    _, ada = make_user("ada")

    cases = [
        ({"git_url": repo.url}, 422, "line 3"),
        ({"git_url": plain.url}, 422, "has no /.dockstore.yml or /.github/.dockstore.yml"),
        ({"git_url": plain.url, "descriptor_type": "CWL"}, 422, "give descriptor_type and"),
        (
            {"git_url": plain.url, "descriptor_type": "PERL", "primary_descriptor_path": "/x"},
            422,
            "is not one of CWL, WDL, NFL, GALAXY, SMK",
        ),
        (
            {"git_url": plain.url, "descriptor_type": "CWL", "primary_descriptor_path": "x.cwl"},
            422,
            "is a path from the repository root",
        ),
        ({"git_url": "ftp://example.org/x"}, 422, "is not a git URL"),
    ]
    for body, status, says in cases:
        answer = client.post("/api/workflows", json=body, headers=bearer(ada))
        assert answer.status_code == status, (body, answer.text)
        assert says in answer.json()["error"]["message"], (body, answer.text)
    assert client.get("/api/workflows", headers=bearer(ada)).json()["total"] == 0
    anonymous = client.post("/api/workflows", json={"git_url": plain.url})
    assert anonymous.status_code == 401

    body = {
        "git_url": plain.url,
        "descriptor_type": "CWL",
        "primary_descriptor_path": "/workflow.cwl",
    }
    assert client.post("/api/workflows", json=body, headers=bearer(ada)).status_code == 201
    again = client.post("/api/workflows", json=body, headers=bearer(ada))
    assert again.status_code == 409 and "is registered already" in again.json()["error"]["message"]


def test_only_maintainers_change_a_workflow_and_others_see_it_only_when_published(
    client: TestClient, make_user: MakeUser, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "lab" / "shared")
    repo.commit(echo_files("ubuntu:22.04"))
    _, ada = make_user("ada")
    _, bob = make_user("bob")
    workflow = _echo(client, ada, repo)
    wid = workflow["id"]

    assert client.get(f"/api/workflows/{wid}", headers=bearer(bob)).status_code == 404
    client.patch(f"/api/workflows/{wid}", json={"published": True}, headers=bearer(ada))
    assert client.get(f"/api/workflows/{wid}", headers=bearer(bob)).status_code == 200
    assert client.get(f"/api/workflows/{wid}").json()["refresh_message"] is None
    for method, path in (
        ("PATCH", f"/api/workflows/{wid}"),
        ("POST", f"/api/workflows/{wid}/refresh"),
        ("POST", f"/api/workflows/{wid}/versions/main/freeze"),
        ("POST", f"/api/workflows/{wid}/webhook"),
        ("DELETE", f"/api/workflows/{wid}"),
    ):
        refused = client.request(
            method,
            path,
            json={"published": False} if method == "PATCH" else None,
            headers=bearer(bob),
        )
        assert refused.status_code == 403, (method, path, refused.text)
    assert client.delete(f"/api/workflows/{wid}", headers=bearer(ada)).status_code == 204
    assert client.get(f"/api/workflows/{wid}", headers=bearer(ada)).status_code == 404


def test_a_workflow_joins_an_organization_whose_maintainers_then_maintain_it(
    client: TestClient, make_user: MakeUser, tmp_path: Path, open_registry: LocalRegistry
) -> None:
    _, image, _ = _pushed(open_registry)
    repo = _cwl_repo(tmp_path / "lab" / "echo", image)
    _, ada = make_user("ada")
    _, bob = make_user("bob")
    workflow = _echo(client, ada, repo)
    client.post("/api/organizations", json={"name": "lab"}, headers=bearer(ada))
    client.post(
        "/api/organizations/lab/members",
        json={"username": "bob", "role": "maintainer"},
        headers=bearer(ada),
    )
    url = f"/api/workflows/{workflow['id']}"
    assert client.get(url, headers=bearer(bob)).status_code == 404  # unpublished, not his
    moved = client.patch(url, json={"organization": "lab"}, headers=bearer(ada))
    assert moved.status_code == 200, moved.text
    assert moved.json()["organization"] == "lab"
    described = client.patch(url, json={"description": "Echoes."}, headers=bearer(bob))
    assert described.status_code == 200 and described.json()["description"] == "Echoes."
    held = client.get("/api/organizations/lab", headers=bearer(bob)).json()["workflows"]
    assert [w["trs_id"] for w in held] == ["#workflow/localhost/lab/echo"]
    out = client.patch(url, json={"organization": None}, headers=bearer(ada))
    assert out.json()["organization"] is None
    assert client.get(url, headers=bearer(bob)).status_code == 404
