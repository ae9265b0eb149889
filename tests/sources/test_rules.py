"""A git source's settings: Dockstore's defaults, clear refusals, and links to files and commits."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.errors import InvalidInput
from dockyard.sources.rules import parse_source, raw_url, reference_for, source_link


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
