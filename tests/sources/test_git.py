"""Reading git repositories: bounded fetches, no way out of the tree, and only the addresses the guard checked."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import InvalidInput
from dockyard.sources.git import GitReader, SourceError
from dockyard.sources.rules import parse_source
from dockyard.sources.services import SourceSync, collect
from tests.support.git_repos import (
    DOCKERFILE,
    INDEX,
    Repo,
    full_repo,
    git_daemon,
    git_http,
    reader,
)


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
