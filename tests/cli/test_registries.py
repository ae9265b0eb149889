"""`dockyard registries`: resolving references and listing the registries, in JSON and for people."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import assert_one_line_error, run


def test_resolve_prints_json_and_exits_0_when_valid() -> None:
    result = run(
        [
            "registries",
            "resolve",
            "312767926603.dkr.ecr.us-west-2.amazonaws.com/ns/img:1",
            "--json",
        ],
        {},
    )
    assert result.exit_code == 0
    answer = json.loads(result.stdout)
    assert {
        "input",
        "valid",
        "registry",
        "host",
        "repository",
        "tag",
        "digest",
        "normalized",
        "familiar",
        "private_only",
        "registry_id",
        "region",
    } <= set(answer)
    assert (
        answer["registry"],
        answer["registry_id"],
        answer["region"],
        answer["private_only"],
    ) == ("ecr", "312767926603", "us-west-2", True)


def test_resolve_exits_1_with_the_error_when_invalid() -> None:
    result = run(["registries", "resolve", "Ubuntu", "--json"], {})
    assert result.exit_code == 1
    answer = json.loads(result.stdout)
    assert answer["valid"] is False
    assert "lowercase" in answer["error"]


def test_resolve_without_json_prints_readable_lines() -> None:
    result = run(["registries", "resolve", "ubuntu:22.04"], {})
    assert result.exit_code == 0
    assert "normalized:    docker.io/library/ubuntu:22.04" in result.stdout
    bad = run(["registries", "resolve", "ubuntu:"], {})
    assert bad.exit_code == 1
    assert bad.stderr.startswith("invalid: the tag after ':' is empty")


def test_resolve_with_an_unknown_registry_is_an_invalid_answer() -> None:
    result = run(["registries", "resolve", "ns/img", "--registry", "nope", "--json"], {})
    assert result.exit_code == 1
    assert "unknown registry 'nope'" in json.loads(result.stdout)["error"]


def test_a_malformed_registries_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "registries.toml"
    path.write_text("[[registry]]\nid = 'lab'\nname = 'Lab'\nhost = 'https://lab'\n")
    result = run(["registries", "list"], {"DOCKYARD_REGISTRIES_FILE": str(path)})
    assert_one_line_error(result, f"{path}: registry #1 (id 'lab'): field 'host'")


def test_the_operators_registries_appear_in_the_list(tmp_path: Path) -> None:
    path = tmp_path / "registries.toml"
    path.write_text(
        "[[registry]]\nid = 'lab'\nname = 'Lab registry'\nhost = 'registry.lab.example.org:5000'\n"
    )
    result = run(["registries", "list"], {"DOCKYARD_REGISTRIES_FILE": str(path)})
    assert result.exit_code == 0
    assert "Lab registry" in result.stdout
