"""`dockyard access ...` against a running server."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from dockyard.cli import main
from tests.support.app import MakeUser
from tests.support.cli import error, ok


@pytest.fixture
def as_user(
    live_server: str, engine: Engine, make_user: MakeUser
) -> Callable[..., Callable[..., Result]]:
    tokens = {name: make_user(name)[1] for name in ("maria", "bob")}

    def user(name: str) -> Callable[..., Result]:
        def run(*args: str, stdin: str | None = None) -> Result:
            env = {"DOCKYARD_URL": live_server, "DOCKYARD_TOKEN": tokens[name]}
            return CliRunner().invoke(main, list(args), env=env, input=stdin)

        return run

    return user


def test_request_list_grant_pull_and_revoke_from_the_cli(
    as_user: Callable[..., Callable[..., Result]],
) -> None:
    maria, bob = as_user("maria"), as_user("bob")
    ok(
        maria(
            "tool",
            "register",
            "quay.io/lab/cli-private",
            "--private",
            "--maintainer-email",
            "lab@example.org",
        )
    )
    ok(maria("tool", "version", "add", "quay.io/lab/cli-private", "1.0"))
    ok(maria("tool", "publish", "quay.io/lab/cli-private"))
    error(bob("access", "request", "quay.io/lab/cli-private", "--username", "x y"), "not a valid")
    sent = ok(bob("access", "request", "quay.io/lab/cli-private", "--username", "bobby", "--json"))
    request_id = json.loads(sent.stdout)["id"]
    inbox = ok(maria("access", "list", "--role", "inbox", "--status", "pending"))
    assert "bobby" in inbox.stdout and "pending" in inbox.stdout
    error(bob("access", "pull", "quay.io/lab/cli-private"), "request access first")
    granted = ok(maria("access", "grant", str(request_id)))
    assert "is granted" in granted.stdout
    assert "User and Robot Permissions" in granted.stdout  # what to do by hand in Quay
    pull = ok(bob("access", "pull", "quay.io/lab/cli-private"))
    assert "docker login --username bobby quay.io" in pull.stdout
    assert "apptainer pull docker://quay.io/lab/cli-private:1.0" in pull.stdout
    ok(maria("access", "revoke", str(request_id), "--reason", "done"))
    mine = json.loads(ok(bob("access", "list", "--role", "mine", "--json")).stdout)
    assert [(i["status"], i["reason"]) for i in mine["items"]] == [("revoked", "done")]
    log = ok(maria("access", "log", "quay.io/lab/cli-private"))
    assert "requested" in log.stdout and "revoked" in log.stdout
    error(bob("access", "log", "quay.io/lab/cli-private"), "only the maintainers")


def test_registry_requests_from_the_cli(
    as_user: Callable[..., Callable[..., Result]], make_user: MakeUser, live_server: str
) -> None:
    bob = as_user("bob")
    error(bob("registries", "requests", "add", "ghcr.io", "--reason", "x"), "already supported")
    ok(bob("registries", "requests", "add", "harbor.lab.example.org", "--reason", "lab Harbor"))
    _, admin_token = make_user("root", admin=True)
    env = {"DOCKYARD_URL": live_server, "DOCKYARD_TOKEN": admin_token}
    listed = CliRunner().invoke(main, ["registries", "requests", "list", "--json"], env=env)
    (item,) = json.loads(listed.stdout)["items"]
    closed = CliRunner().invoke(
        main, ["registries", "requests", "close", str(item["id"]), "--added"], env=env
    )
    assert "is added" in closed.stdout
    mine = ok(bob("registries", "requests", "list"))
    assert "harbor.lab.example.org" in mine.stdout and "added" in mine.stdout
