"""Git-backed tools: settings, imports, hostile repositories, and refresh through to TRS."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from dockyard.egress import HostGuard
from dockyard.sources.git import SourceError
from dockyard.sources.rules import parse_source
from dockyard.sources.services import SourceSync, collect
from tests.support.app import MakeUser, bearer
from tests.support.git_repos import (
    ALIGN,
    DOCKERFILE,
    INDEX,
    WORKFLOW,
    Repo,
    full_repo,
    reader,
)
from tests.support.registry import LocalRegistry

# --- settings and pure rules -----------------------------------------------------------------


# --- reading repositories ---------------------------------------------------------------------


def test_a_version_reads_descriptors_with_nested_imports_and_the_dockerfile(
    tmp_path: Path,
) -> None:
    repo = full_repo(tmp_path / "repo")
    git = reader(tmp_path)
    spec = parse_source({"git_url": repo.url})
    commit = git.fetch(repo.url, "1.0")
    assert commit == repo.git("rev-parse", "1.0^{commit}")
    files = {path: (kind, lang) for path, kind, lang, _ in collect(git, spec, commit)}
    assert files == {
        "Dockstore.cwl": ("PRIMARY_DESCRIPTOR", "CWL"),
        "types/common.yml": ("SECONDARY_DESCRIPTOR", "CWL"),
        "tools/align.cwl": ("SECONDARY_DESCRIPTOR", "CWL"),
        "tools/sub/index.cwl": ("SECONDARY_DESCRIPTOR", "CWL"),
        "Dockstore.wdl": ("PRIMARY_DESCRIPTOR", "WDL"),
        "tasks/align.wdl": ("SECONDARY_DESCRIPTOR", "WDL"),
        "common/util.wdl": ("SECONDARY_DESCRIPTOR", "WDL"),
        "Dockerfile": ("CONTAINERFILE", None),
    }


# --- through refresh, the API and TRS ---------------------------------------------------------


def test_refresh_reads_each_version_from_its_reference_and_trs_shows_the_commit(
    client: TestClient, make_user: MakeUser, engine: Engine, tmp_path: Path
) -> None:
    repo = full_repo(tmp_path / "repo")
    first = repo.git("rev-parse", "1.0^{commit}")
    repo.commit({"Dockstore.cwl": WORKFLOW.replace("Workflow", "Workflow\nlabel: two")})
    repo.git("branch", "release-2.0")
    second = repo.git("rev-parse", "HEAD")
    _, ada = make_user("ada")
    tool = client.post(
        "/api/tools",
        json={
            "image": "quay.io/lab/from-git",
            "source": {"git_url": repo.url, "references": {"2.0": "release-2.0"}},
        },
        headers=bearer(ada),
    ).json()
    tid = tool["id"]
    for name in ("1.0", "2.0", "3.0"):
        client.post(f"/api/tools/{tid}/versions", json={"name": name}, headers=bearer(ada))

    report = sync(client, tid)
    assert report["synced"] == ["1.0", "release-2.0"]
    assert report["problems"] == {"3.0": "the repository has no branch or tag '3.0'"}
    listed = client.get(f"/api/tools/{tid}/versions", headers=bearer(ada)).json()
    versions = {v["name"]: v for v in listed["items"]}
    assert versions["1.0"]["source_commit"] == first
    assert versions["2.0"]["source_commit"] == second
    assert versions["3.0"]["source_problem"] is not None and versions["3.0"]["files"] == []
    assert len(versions["1.0"]["files"]) == 8

    # Read-only in dockyard: the files belong to the commit.
    upload = client.put(
        f"/api/tools/{tid}/versions/1.0/files",
        json={"files": [{"path": "x.cwl", "file_type": "OTHER", "content": "x"}]},
        headers=bearer(ada),
    )
    assert upload.status_code == 409 and "come from git" in upload.json()["error"]["message"]

    client.post(f"/api/tools/{tid}/publish", headers=bearer(ada))
    base = "/ga4gh/trs/v2/tools/quay.io%2Flab%2Ffrom-git/versions/1.0"
    version = client.get(base).json()
    assert version["dockyard_source"] == {
        "git_url": repo.url,
        "reference": "1.0",
        "commit": first,
        "url": repo.url,
    }
    assert sorted(version["descriptor_type"]) == ["CWL", "WDL"]
    files = {f["path"]: f for f in client.get(f"{base}/CWL/files").json()}
    assert set(files) >= {"Dockstore.cwl", "tools/align.cwl", "tools/sub/index.cwl", "Dockerfile"}
    assert (
        files["tools/align.cwl"]["checksum"]["checksum"]
        == hashlib.sha256(ALIGN.encode()).hexdigest()
    )
    nested = client.get(f"{base}/PLAIN_CWL/descriptor/tools/sub/index.cwl")
    assert nested.text == INDEX
    assert client.get(f"{base}/containerfile").json()[0]["content"] == DOCKERFILE

    # Unchanged references are not fetched again; a broken commit keeps the stored files.
    assert sync(client, tid)["unchanged"] == 2
    repo.git("checkout", "--quiet", "release-2.0")
    repo.commit(
        {"Dockstore.cwl": "cwlVersion: v1.2\nclass: Workflow\nsteps:\n  s:\n    run: ../x\n"}
    )
    report = sync(client, tid)
    assert "leaves the repository" in report["problems"]["release-2.0"]
    kept = client.get(f"/api/tools/{tid}/versions/2.0", headers=bearer(ada)).json()
    assert kept["source_commit"] == second and len(kept["files"]) == 8


def sync(client: TestClient, tool_id: int) -> dict[str, Any]:
    context = client.app.state.context  # type: ignore[attr-defined]
    sources = SourceSync(context.settings.data_dir / "git-cache", allow_private=True)
    summary = asyncio.run(sources.sync(context.sessions, tool_id))
    assert summary is not None
    return summary


def test_a_tool_whose_only_versions_are_invalid_cannot_be_published(
    client: TestClient, make_user: MakeUser, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "empty")
    repo.commit({"README.md": "nothing here"})
    repo.tag("1.0")
    _, ada = make_user("ada")
    tool = client.post(
        "/api/tools",
        json={"image": "quay.io/lab/invalid", "source": {"git_url": repo.url}},
        headers=bearer(ada),
    ).json()
    client.post(f"/api/tools/{tool['id']}/versions", json={"name": "1.0"}, headers=bearer(ada))
    assert "no descriptor" in sync(client, tool["id"])["problems"]["1.0"]
    refused = client.post(f"/api/tools/{tool['id']}/publish", headers=bearer(ada))
    assert refused.status_code == 422
    assert "every visible version" in refused.json()["error"]["message"]


def test_a_refresh_brings_tags_from_the_registry_and_files_from_git(
    client: TestClient, make_user: MakeUser, tmp_path: Path, open_registry: LocalRegistry
) -> None:
    repo = full_repo(tmp_path / "repo")
    repository = f"git/tool-{uuid.uuid4().hex[:8]}"
    open_registry.push_image(repository, "1.0", salt="git1")
    _, ada = make_user("ada")
    tool = client.post(
        "/api/tools",
        json={"image": f"{open_registry.host}/{repository}", "source": {"git_url": repo.url}},
        headers=bearer(ada),
    ).json()
    report = client.post(f"/api/tools/{tool['id']}/refresh", headers=bearer(ada)).json()
    assert report["added"] == ["1.0"]
    assert report["sources"]["synced"] == ["1.0"]
    version = client.get(f"/api/tools/{tool['id']}/versions/1.0", headers=bearer(ada)).json()
    assert version["images"] and len(version["files"]) == 8
    assert version["source_commit"] == repo.git("rev-parse", "1.0^{commit}")


def test_a_sync_pins_git_to_the_addresses_the_guard_checked(
    client: TestClient, make_user: MakeUser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ada = make_user("ada")
    url = "https://git.example.org/lab/tools.git"
    tool = client.post(
        "/api/tools",
        json={"image": "quay.io/lab/pinned", "source": {"git_url": url}},
        headers=bearer(ada),
    ).json()
    client.post(f"/api/tools/{tool['id']}/versions", json={"name": "1.0"}, headers=bearer(ada))

    async def public(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    sources = SourceSync(tmp_path / "cache", allow_private=False)
    sources.guard = HostGuard(resolve=public)
    asked: list[tuple[str, list[str]]] = []

    def remote_refs(url: str, *, pins: Sequence[str] = ()) -> dict[str, str]:
        asked.append((url, list(pins)))
        raise SourceError("not reachable from the tests")

    monkeypatch.setattr(sources.reader, "remote_refs", remote_refs)
    context = client.app.state.context  # type: ignore[attr-defined]
    summary = asyncio.run(sources.sync(context.sessions, tool["id"]))
    assert asked == [(url, ["93.184.216.34"])]
    assert summary == {
        "synced": [],
        "unchanged": 0,
        "problems": {"1.0": "not reachable from the tests"},
    }
