"""`dockyard workflow ...` against a running server: register from git, show, the images of a
version with their digests, freeze, the pinned bundle and descriptor, publish."""

from __future__ import annotations

import json
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from dockyard.cli import main
from tests.support.app import MakeUser
from tests.support.cli import error, ok
from tests.support.git_repos import Repo
from tests.support.registry import LocalRegistry

SNAKEFILE = """\
container: "docker://{image}"

rule all:
    input: "out.txt"

rule hello:
    output: "out.txt"
    container: config["image"]
    shell: "echo hello > {{output}}"
"""


@pytest.fixture
def cli(live_server: str, engine: Engine, make_user: MakeUser) -> Callable[..., Result]:
    _, token = make_user("ada")

    def run(*args: str) -> Result:
        env = {"DOCKYARD_URL": live_server, "DOCKYARD_TOKEN": token}
        return CliRunner().invoke(main, ["workflow", *args], env=env)

    return run


def test_register_inspect_freeze_and_pin_a_snakemake_workflow(
    cli: Callable[..., Result], tmp_path: Path, open_registry: LocalRegistry
) -> None:
    repository = f"lab/snake-{uuid.uuid4().hex[:8]}"
    digest = open_registry.push_image(repository, "2.0", salt=repository)
    image = f"{open_registry.host}/{repository}:2.0"
    name = f"snake-{uuid.uuid4().hex[:8]}"
    repo = Repo(tmp_path / "lab" / name)
    repo.commit({"workflow/Snakefile": SNAKEFILE.format(image=image)})

    registered = ok(cli("register", repo.url, "--type", "smk", "--primary", "/workflow/Snakefile"))
    assert f"registered #workflow/localhost/lab/{name}" in registered.stdout
    assert "ok: 1 read, 0 unchanged, 0 frozen, 0 removed, 1 of 1 images resolved" in (
        registered.stdout
    )
    trs_id = f"#workflow/localhost/lab/{name}"

    shown = ok(cli("show", trs_id))
    assert "main" in shown.stdout and "SMK" in shown.stdout
    listed = ok(cli("images", trs_id, "main"))
    assert "/workflow/Snakefile:1" in listed.stdout and digest[:19] in listed.stdout
    assert "/workflow/Snakefile:8" in listed.stdout and "cannot be evaluated" in listed.stdout
    as_json = json.loads(ok(cli("images", trs_id, "main", "--json")).stdout)
    assert [i["digest"] for i in as_json] == [digest, None]

    error(cli("pinned", trs_id, "main"), "freeze it first")
    frozen = ok(cli("freeze", trs_id, "main"))
    assert "1 files, 1 of 2 images with digests" in frozen.stdout
    descriptor = ok(cli("pinned", trs_id, "main", "--descriptor")).stdout
    assert descriptor.splitlines()[0] == f'container: "docker://{image}@{digest}"'
    target = tmp_path / "bundle.zip"
    ok(cli("pinned", trs_id, "main", "-o", str(target)))
    with zipfile.ZipFile(target) as bundle:
        assert set(bundle.namelist()) == {"workflow/Snakefile", "dockyard-pins.json"}
        pins = json.loads(bundle.read("dockyard-pins.json"))
    assert [p["pinned"] for p in pins["images"]] == [True, False]

    ok(cli("publish", trs_id))
    assert '"published": true' in ok(cli("list", "--json")).stdout
    error(cli("show", "#workflow/localhost/lab/nothing-here"), "no workflow with path")
