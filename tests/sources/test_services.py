"""Git-backed tools: settings, imports, hostile repositories, and refresh through to TRS."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from dockyard.accounts.models import User
from dockyard.catalog import rules
from dockyard.egress import HostGuard
from dockyard.errors import InvalidInput
from dockyard.sources import descriptors
from dockyard.sources.git import GitReader, SourceError
from dockyard.sources.rules import parse_source, raw_url, reference_for, source_link
from dockyard.sources.services import SourceSync, collect
from tests.support.app import bearer
from tests.support.git_repos import Repo, git_daemon, git_http
from tests.support.registry import LocalRegistry

MakeUser = Callable[..., tuple[User, str]]
WORKFLOW = """cwlVersion: v1.2
class: Workflow
inputs: []
outputs: []
requirements:
  - $import: types/common.yml
steps:
  align:
    run: tools/align.cwl
    in: []
    out: []
"""
ALIGN = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: bwa
inputs: []
outputs: []
hints:
  sub:
    run: ../tools/sub/index.cwl
"""
INDEX = (
    "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [bwa, index]\ninputs: []\noutputs: []\n"
)
TYPES = "- name: Sample\n  type: record\n"
WDL = 'version 1.0\nimport "tasks/align.wdl" as align\nworkflow main { call align.run }\n'
WDL_TASK = 'version 1.0\nimport "../common/util.wdl"\ntask run { command <<< bwa >>> }\n'
WDL_UTIL = "version 1.0\ntask util { command <<< true >>> }\n"
DOCKERFILE = "FROM debian:12\nRUN apt-get update\n"


def full_repo(path: Path) -> Repo:
    repo = Repo(path)
    repo.commit(
        {
            "Dockstore.cwl": WORKFLOW,
            "tools/align.cwl": ALIGN,
            "tools/sub/index.cwl": INDEX,
            "types/common.yml": TYPES,
            "Dockstore.wdl": WDL,
            "tasks/align.wdl": WDL_TASK,
            "common/util.wdl": WDL_UTIL,
            "Dockerfile": DOCKERFILE,
            "README.md": "not a descriptor",
        }
    )
    repo.tag("1.0", annotated=True)
    return repo


# --- settings and pure rules -----------------------------------------------------------------


def test_source_settings_have_dockstore_defaults_and_explain_mistakes() -> None:
    spec = parse_source({"git_url": "https://github.com/lab/tools.git"})
    assert spec.dockerfile_path == "Dockerfile"
    assert {k.value: v for k, v in spec.descriptor_paths.items()} == {
        "CWL": "Dockstore.cwl",
        "WDL": "Dockstore.wdl",
    }
    custom = parse_source(
        {
            "git_url": "git@gitlab.com:lab/tools.git",
            "descriptor_paths": {"cwl": "/cwl/main.cwl"},
            "reference": "v{version}",
            "references": {"latest": "main"},
        }
    )
    assert (reference_for(custom, "1.0"), reference_for(custom, "latest")) == ("v1.0", "main")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"git_url": "ftp://x/y"}, "not a git URL"),
        ({"git_url": "https://x/y", "dockerfile_path": "/../etc/passwd"}, "leaves"),
        ({"git_url": "https://x/y", "descriptor_paths": {"XML": "/a"}}, "not one of"),
        ({"git_url": "https://x/y", "reference": "{tag}"}, "{version}"),
    ]
    for bad, says in cases:
        with pytest.raises(InvalidInput, match=says):
            parse_source(bad)


def test_github_gitlab_and_bitbucket_get_raw_links() -> None:
    commit = "a" * 40
    assert raw_url("https://github.com/lab/tools.git", commit, "x/a.cwl") == (
        f"https://raw.githubusercontent.com/lab/tools/{commit}/x/a.cwl"
    )
    assert raw_url("git@gitlab.com:group/sub/tools.git", commit, "a.wdl") == (
        f"https://gitlab.com/group/sub/tools/-/raw/{commit}/a.wdl"
    )
    assert raw_url("https://bitbucket.org/ws/tools", commit, "Dockerfile") == (
        f"https://bitbucket.org/ws/tools/raw/{commit}/Dockerfile"
    )
    assert raw_url("https://git.lab.example/tools.git", commit, "a") is None
    assert source_link("https://github.com/lab/tools", commit).endswith(f"/tree/{commit}")


def test_imports_are_found_in_cwl_and_wdl_and_never_leave_the_repository() -> None:
    assert descriptors.imports(rules.DescriptorType.CWL, WORKFLOW, "Dockstore.cwl") == [
        ("types/common.yml", "yaml"),
        ("tools/align.cwl", "document"),
    ]
    assert descriptors.imports(rules.DescriptorType.CWL, ALIGN, "tools/align.cwl") == [
        ("tools/sub/index.cwl", "document")
    ]
    assert descriptors.imports(rules.DescriptorType.WDL, WDL_TASK, "tasks/align.wdl") == [
        ("common/util.wdl", "document")
    ]
    remote = 'import "https://example.org/x.wdl"\nworkflow w {}'
    assert descriptors.imports(rules.DescriptorType.WDL, remote, "a.wdl") == []
    for text in ("run: ../../etc/passwd\n", "run: /etc/passwd\n", "run: file:///etc/passwd\n"):
        with pytest.raises(descriptors.DescriptorProblem):
            descriptors.imports(rules.DescriptorType.CWL, text, "sub/a.cwl")
    with pytest.raises(descriptors.DescriptorProblem, match="not valid YAML"):
        descriptors.check(rules.DescriptorType.CWL, "a: [", "x.cwl")
    with pytest.raises(descriptors.DescriptorProblem, match="no workflow or task"):
        descriptors.check(rules.DescriptorType.WDL, "version 1.0\n", "x.wdl")


# --- reading repositories ---------------------------------------------------------------------


def reader(tmp_path: Path, **options: Any) -> GitReader:
    return GitReader(tmp_path / "cache", allow_file_urls=True, **options)


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


def problem_of(tmp_path: Path, files: dict[str, str | bytes], **options: Any) -> str:
    repo = Repo(tmp_path / "hostile")
    repo.commit(files)
    git = reader(tmp_path, **options)
    spec = parse_source({"git_url": repo.url})
    with pytest.raises((SourceError, InvalidInput)) as raised:
        collect(git, spec, git.fetch(repo.url, "main"))
    return str(raised.value)


def outside_files(root: Path) -> dict[str, float]:
    return {
        str(path): path.stat().st_mtime
        for path in root.rglob("*")
        if path.is_file() and "cache" not in path.parts
    }


def test_a_symlink_out_of_the_tree_is_refused_and_never_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the server's secret")
    repo = Repo(tmp_path / "hostile")
    os.symlink(secret, repo.path / "Dockstore.cwl")
    repo.commit({"Dockerfile": DOCKERFILE})
    before = outside_files(tmp_path)
    git = reader(tmp_path)
    with pytest.raises(SourceError, match="symbolic link") as raised:
        collect(git, parse_source({"git_url": repo.url}), git.fetch(repo.url, "main"))
    assert "the server's secret" not in str(raised.value)
    assert outside_files(tmp_path) == before  # nothing written outside the cache


def test_a_huge_file_too_many_files_and_dotdot_imports_are_refused(tmp_path: Path) -> None:
    huge = "cwlVersion: v1.2\nclass: CommandLineTool\n#" + "x" * (2 * 1024 * 1024) + "\n"
    assert "at most 1,048,576" in problem_of(
        tmp_path / "a", {"Dockstore.cwl": huge, "Dockerfile": DOCKERFILE}
    )
    escaping = "cwlVersion: v1.2\nclass: Workflow\nsteps:\n  s:\n    run: ../../outside.cwl\n"
    assert "leaves the repository" in problem_of(
        tmp_path / "b", {"Dockstore.cwl": escaping, "Dockerfile": DOCKERFILE}
    )
    many: dict[str, str | bytes] = {f"data/{n}.txt": str(n) for n in range(10_050)}
    assert "more than 10,000 files" in problem_of(
        tmp_path / "c", {**many, "Dockstore.cwl": INDEX, "Dockerfile": DOCKERFILE}
    )
    assert "no Dockerfile at /Dockerfile" in problem_of(tmp_path / "d", {"Dockstore.cwl": INDEX})
    assert "no descriptor at /Dockstore.cwl or /Dockstore.wdl" in problem_of(
        tmp_path / "e", {"Dockerfile": DOCKERFILE}
    )


def test_a_fetch_is_bounded_in_bytes_and_the_partial_fetch_is_dropped(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "big")
    repo.commit({"Dockstore.cwl": INDEX, "Dockerfile": DOCKERFILE, "blob.bin": os.urandom(3 << 20)})
    git = reader(tmp_path, max_fetch_bytes=1 << 20)
    with pytest.raises(SourceError, match="more than 1 MiB"):
        git.fetch(repo.url, "main")
    assert not any((tmp_path / "cache").iterdir())


def test_missing_references_and_unreachable_repositories_say_so(tmp_path: Path) -> None:
    repo = full_repo(tmp_path / "repo")
    git = reader(tmp_path)
    with pytest.raises(SourceError, match="no branch, tag or commit 'v9'"):
        git.fetch(repo.url, "v9")
    with pytest.raises(SourceError):
        git.remote_refs(f"file://{tmp_path}/nowhere")
    local_only = GitReader(tmp_path / "cache2")
    with pytest.raises(SourceError, match="file:// repositories"):
        local_only.fetch(repo.url, "1.0")


def test_git_daemon_urls_are_read_and_loopback_is_refused_unless_allowed(tmp_path: Path) -> None:
    base = tmp_path / "served"
    full_repo(base / "lab" / "tools")
    with git_daemon(base) as port:
        url = f"git://127.0.0.1:{port}/lab/tools"
        git = GitReader(tmp_path / "cache")
        refs = git.remote_refs(url)
        assert "refs/tags/1.0" in refs and "refs/heads/main" in refs
        assert len(git.fetch(url, "1.0")) == 40
        refused = SourceSync(tmp_path / "cache3", allow_private=False)
        with pytest.raises(Exception, match="loopback, private or link-local"):
            asyncio.run(refused.guard.check(f"https://127.0.0.1:{port}/"))


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


def test_http_fetches_go_to_the_addresses_the_guard_checked_not_a_new_lookup(
    tmp_path: Path,
) -> None:
    """A name that resolved to a public address when checked cannot send git elsewhere."""
    repo = full_repo(tmp_path / "work")
    served = tmp_path / "served"
    repo.git("clone", "--bare", "--quiet", str(repo.path), str(served / "tools.git"))
    with git_http(served) as port:
        url = f"http://repo.invalid:{port}/tools.git"  # .invalid never resolves
        git = GitReader(tmp_path / "cache")
        with pytest.raises(SourceError):
            git.remote_refs(url)
        refs = git.remote_refs(url, pins=["127.0.0.1"])
        assert refs["refs/tags/1.0"] == repo.git("rev-parse", "1.0^{commit}")
        assert git.fetch(url, "1.0", pins=["127.0.0.1"]) == refs["refs/tags/1.0"]


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
