"""`dockyard tool ...` against a running server, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from dockyard.cli import main
from tests.support.app import MakeUser
from tests.support.cli import error, ok
from tests.support.registry import LocalRegistry

ECR = "312767926603.dkr.ecr.us-west-2.amazonaws.com"


@pytest.fixture
def cli(live_server: str, engine: Engine, make_user: MakeUser) -> Callable[..., Result]:
    _, token = make_user("ada")

    def run(*args: str, token: str | None = token, stdin: str | None = None) -> Result:
        env = {"DOCKYARD_URL": live_server, "DOCKYARD_TOKEN": token or ""}
        return CliRunner().invoke(main, ["tool", *args], env=env, input=stdin)

    return run


def test_register_publish_find_and_delete(cli: Callable[..., Result], tmp_path: Path) -> None:
    registered = ok(
        cli("register", "quay.io/biocontainers/samtools", "--description", "SAM tools", "--json")
    )
    tool = json.loads(registered.stdout)
    assert tool["path"] == "quay.io/biocontainers/samtools"

    error(cli("publish", tool["path"]), "has no visible version")
    ok(
        cli(
            "version", "add", tool["path"], "1.17", "--image", "sha256:" + "c" * 64 + "=linux/amd64"
        )
    )
    (tmp_path / "tool.cwl").write_text("cwlVersion: v1.2\nclass: CommandLineTool\n")
    (tmp_path / "Dockerfile").write_text("FROM ubuntu:22.04\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "job.json").write_text("{}")
    uploaded = ok(
        cli(
            "files",
            tool["path"],
            "1.17",
            "--primary",
            str(tmp_path / "tool.cwl"),
            "--dockerfile",
            str(tmp_path / "Dockerfile"),
            "--test",
            str(tmp_path / "tests" / "job.json"),
        )
    )
    assert "PRIMARY_DESCRIPTOR    tool.cwl" in uploaded.stdout
    assert "TEST_FILE             tests/job.json" in uploaded.stdout
    ok(cli("publish", tool["path"]))

    listed = ok(cli("list", "samtools", token=None))
    assert "quay.io/biocontainers/samtools" in listed.stdout
    assert "CWL" in listed.stdout
    shown = ok(cli("show", tool["path"], token=None))
    assert "published:        yes" in shown.stdout
    assert "linux/amd64" in shown.stdout
    as_json = json.loads(ok(cli("show", str(tool["id"]), "--json")).stdout)
    assert as_json["version_details"][0]["files"][0]["path"] == "Dockerfile"

    ok(cli("unpublish", tool["path"]))
    error(cli("show", tool["path"], token=None), "no tool with path")
    ok(cli("delete", tool["path"], "--yes"))
    error(cli("show", tool["path"]), "no tool with path")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((f"{ECR}/ns/img",), "private-only: register the tool as private"),
        (("ns/img", "--registry-path", ECR), "private-only"),
        (("public.ecr.aws/ns/img", "--private", "--maintainer-email", "a@b.org"), "always public"),
        (("quay.io/ns/img", "--private"), "needs a maintainer email"),
        (("ns/img", "--registry-path", "quay.io"), "does not take a registry path"),
        (("quay.io/ns/img", "--toolname", "_bad"), "toolname '_bad' is not allowed"),
        (("quay.io/ns/img:1.0",), "without a tag or digest"),
    ],
)
def test_every_registration_rule_reaches_the_cli_user(
    cli: Callable[..., Result], args: tuple[str, ...], says: str
) -> None:
    error(cli("register", *args), says)


def test_private_ecr_tools_register_with_their_registry_path(cli: Callable[..., Result]) -> None:
    result = ok(
        cli(
            "register",
            "ns/img",
            "--registry-path",
            ECR,
            "--private",
            "--maintainer-email",
            "ada@example.org",
            "--json",
        )
    )
    tool = json.loads(result.stdout)
    assert tool["path"] == f"{ECR}/ns/img"
    assert tool["registry"] == "ecr"
    error(cli("update", tool["path"], "--public"), "cannot change visibility")


def test_duplicate_registration_is_a_conflict(cli: Callable[..., Result]) -> None:
    ok(cli("register", "quay.io/ns/img"))
    error(cli("register", "quay.io/ns/img"), "already registered")


def test_without_a_token_changes_are_refused_with_a_hint(cli: Callable[..., Result]) -> None:
    error(cli("register", "quay.io/ns/img", token=None), "DOCKYARD_TOKEN")


def test_an_unreachable_server_is_one_line(engine: Engine) -> None:
    result = CliRunner().invoke(
        main, ["tool", "--url", "http://127.0.0.1:1", "list"], env={"DOCKYARD_TOKEN": ""}
    )
    error(result, "cannot reach dockyard at http://127.0.0.1:1")


def test_files_outside_the_primary_descriptors_directory_are_refused(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    ok(cli("register", "quay.io/ns/img"))
    ok(cli("version", "add", "quay.io/ns/img", "1.0"))
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "main.wdl").write_text("version 1.0\n")
    (tmp_path / "secret.txt").write_text("x")
    error(
        cli(
            "files",
            "quay.io/ns/img",
            "1.0",
            "--primary",
            str(tmp_path / "wf" / "main.wdl"),
            "--other",
            str(tmp_path / "secret.txt"),
        ),
        "is outside",
    )
    result = ok(
        cli("files", "quay.io/ns/img", "1.0", "--primary", str(tmp_path / "wf" / "main.wdl"))
    )
    assert "main.wdl" in result.stdout


def test_versions_are_listed_hidden_and_deleted(cli: Callable[..., Result]) -> None:
    ok(cli("register", "quay.io/ns/img"))
    ok(cli("version", "add", "quay.io/ns/img", "1.0", "--description", "First"))
    ok(cli("version", "add", "quay.io/ns/img", "2.0"))
    ok(cli("version", "update", "quay.io/ns/img", "2.0", "--hidden", "--description", "Beta"))
    error(cli("version", "update", "quay.io/ns/img", "2.0"), "nothing to change")
    listing = ok(cli("version", "list", "quay.io/ns/img", "--json"))
    assert [
        (v["name"], v["hidden"], v["description"]) for v in json.loads(listing.stdout)["items"]
    ] == [("1.0", False, "First"), ("2.0", True, "Beta")]
    ok(cli("version", "delete", "quay.io/ns/img", "2.0"))
    error(cli("version", "delete", "quay.io/ns/img", "2.0"), "has no version '2.0'")


def test_maintainers_are_managed_from_the_cli(
    cli: Callable[..., Result], make_user: MakeUser
) -> None:
    make_user("grace")
    ok(cli("register", "quay.io/ns/img"))
    assert "ada, grace" in ok(cli("maintainers", "add", "quay.io/ns/img", "grace")).stdout
    assert "grace" in ok(cli("maintainers", "remove", "quay.io/ns/img", "ada")).stdout


def test_refresh_shows_progress_and_fills_in_versions(
    cli: Callable[..., Result], open_registry: LocalRegistry
) -> None:
    repository = f"cli/refresh-{uuid.uuid4().hex[:8]}"
    open_registry.push_image(repository, "1.0", salt="cli1")
    open_registry.push_index(
        repository, "2.0", [("linux", "amd64", None), ("linux", "arm64", "v8")], salt="cli2"
    )
    path = f"{open_registry.host}/{repository}"
    ok(cli("register", path))
    result = ok(cli("refresh", path))
    assert "2 tag(s) to read" in result.stderr
    assert "[2/2]" in result.stderr
    assert "refreshed" in result.stdout and "2 added" in result.stdout
    shown = ok(cli("show", path))
    assert "linux/amd64, linux/arm64/v8" in shown.stdout
    again = json.loads(ok(cli("refresh", path, "--json")).stdout)
    assert sorted(again["unchanged"]) == ["1.0", "2.0"]
    assert again["requests"].get("GET manifest", 0) == 0


def test_refresh_of_an_unreachable_registry_fails_in_one_line(cli: Callable[..., Result]) -> None:
    ok(cli("register", "127.0.0.1:1/nowhere/img"))
    error(cli("refresh", "127.0.0.1:1/nowhere/img"), "unreachable")


def test_credentials_are_write_only(
    cli: Callable[..., Result], live_server: str, engine: Engine
) -> None:
    ok(
        cli(
            "register",
            "quay.io/ns/private-img",
            "--private",
            "--maintainer-email",
            "ada@example.org",
        )
    )
    ok(
        cli(
            "credentials",
            "set",
            "quay.io/ns/private-img",
            "--username",
            "robot",
            "--password-stdin",
            stdin="hunter2-token\n",
        )
    )
    shown = ok(cli("show", "quay.io/ns/private-img", "--json"))
    assert "hunter2" not in shown.stdout
    from sqlalchemy import text

    with engine.connect() as connection:
        secrets = connection.execute(text("SELECT secret FROM tool_credentials")).scalars().all()
    assert secrets and all("hunter2" not in secret for secret in secrets)
    ok(cli("credentials", "clear", "quay.io/ns/private-img"))


def test_a_tool_with_a_git_source_is_registered_and_refreshed_from_the_cli(
    cli: Callable[..., Result], tmp_path: Path, open_registry: LocalRegistry
) -> None:
    from tests.support.git_repos import Repo

    repo = Repo(tmp_path / "repo")
    repo.commit(
        {
            "cwl/main.cwl": "cwlVersion: v1.2\nclass: CommandLineTool\ninputs: []\noutputs: []\n",
            "Dockerfile": "FROM debian:12\n",
        }
    )
    repo.tag("v1.0")
    repository = f"cli/git-{uuid.uuid4().hex[:8]}"
    open_registry.push_image(repository, "1.0", salt="cligit")
    image = f"{open_registry.host}/{repository}"
    error(cli("register", image, "--descriptor", "CWL=/cwl/main.cwl"), "needs --git-url")
    ok(
        cli(
            "register",
            image,
            "--git-url",
            repo.url,
            "--descriptor",
            "CWL=/cwl/main.cwl",
            "--git-reference",
            "v{version}",
        )
    )
    refreshed = ok(cli("refresh", image))
    assert "git: 1 reference(s) read, 0 unchanged" in refreshed.stdout
    versions = json.loads(ok(cli("version", "list", image, "--json")).stdout)["items"]
    assert sorted(f["path"] for f in versions[0]["files"]) == ["Dockerfile", "cwl/main.cwl"]


def test_every_command_takes_the_image_name_register_took(cli: Callable[..., Result]) -> None:
    ok(cli("register", "biocontainers/bwa"))  # Docker Hub, as `docker pull` reads it
    ok(cli("version", "add", "biocontainers/bwa", "0.7.17"))
    listed = ok(cli("version", "list", "biocontainers/bwa"))
    assert "0.7.17" in listed.output
    ok(cli("version", "add", "docker.io/biocontainers/bwa", "0.7.18"))  # the full path too
    error(cli("version", "add", "biocontainers/bwa:0.7.17", "x"), "no tool with path")
