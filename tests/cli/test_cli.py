"""The `dockyard` command against a real database: admin commands, resolve, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from dockyard import db
from dockyard.accounts import services
from dockyard.cli import main
from tests.support.app import TEST_SECRET_KEY


@pytest.fixture
def env(database_url: str, engine: Engine, tmp_path: Path) -> dict[str, str]:
    return {
        "DOCKYARD_DATABASE_URL": database_url,
        "DOCKYARD_SECRET_KEY": TEST_SECRET_KEY,
        "DOCKYARD_DATA_DIR": str(tmp_path),
    }


def run(args: list[str], env: dict[str, str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, args, env=env, input=stdin)


def assert_one_line_error(result: Result, says: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("dockyard: error: ")
    assert says in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_users_create_then_tokens_create_prints_only_a_working_token(
    env: dict[str, str], engine: Engine
) -> None:
    created = run(
        ["users", "create", "ada", "--email", "ada@example.org", "--admin", "--password-stdin"],
        env,
        "correct horse battery\n",
    )
    assert created.exit_code == 0, created.output
    assert "created administrator ada" in created.stdout

    token = run(["tokens", "create", "ada", "--name", "laptop"], env)
    assert token.exit_code == 0, token.output
    lines = token.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dy_")
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        user = services.authenticate_token(session, lines[0])
        assert user.username == "ada" and user.is_admin
        assert services.check_password(session, "ada", "correct horse battery") is user


def test_tokens_are_listed_and_revoked(env: dict[str, str]) -> None:
    run(["users", "create", "ada", "--email", "ada@example.org"], env)
    run(["tokens", "create", "ada"], env)
    listing = run(["tokens", "list", "ada"], env)
    assert "cli" in listing.stdout and "active" in listing.stdout
    token_id = listing.stdout.splitlines()[1].split()[0]
    revoked = run(["tokens", "revoke", "ada", token_id], env)
    assert revoked.exit_code == 0
    assert "revoked" in run(["tokens", "list", "ada"], env).stdout


def test_duplicate_users_are_refused_in_one_line(env: dict[str, str]) -> None:
    run(["users", "create", "ada", "--email", "ada@example.org"], env)
    assert_one_line_error(
        run(["users", "create", "Ada", "--email", "x@example.org"], env), "username 'Ada' is taken"
    )


def test_an_empty_password_on_stdin_is_refused(env: dict[str, str]) -> None:
    assert_one_line_error(
        run(["users", "create", "ada", "--email", "ada@example.org", "--password-stdin"], env, ""),
        "standard input was empty",
    )


def test_tokens_for_an_unknown_user_are_refused(env: dict[str, str]) -> None:
    assert_one_line_error(run(["tokens", "create", "nobody"], env), "no user named 'nobody'")


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


def test_a_bad_database_url_is_one_line(tmp_path: Path) -> None:
    result = run(
        ["users", "list"],
        {"DOCKYARD_DATABASE_URL": "mysql://h/db", "DOCKYARD_DATA_DIR": str(tmp_path)},
    )
    assert_one_line_error(result, "supports sqlite:// and postgresql://")


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    env = {
        "DOCKYARD_DATABASE_URL": "postgresql://u:topsecret@127.0.0.1:1/db",
        "DOCKYARD_SECRET_KEY": TEST_SECRET_KEY,
    }
    result = run(["users", "list"], env)
    assert_one_line_error(result, "did not answer")
    assert "topsecret" not in result.output


def test_db_upgrade_migrates_a_fresh_database_and_is_idempotent(tmp_path: Path) -> None:
    env = {"DOCKYARD_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}
    first = run(["db", "upgrade"], env)
    assert first.exit_code == 0, first.output
    assert f"upgraded from empty to {db.head_revision()}" in first.stdout
    assert "already at" in run(["db", "upgrade"], env).stdout
    assert f"current: {db.head_revision()}" in run(["db", "current"], env).stdout


def test_admin_commands_on_the_embedded_database_migrate_it_first(tmp_path: Path) -> None:
    result = run(
        ["users", "create", "ada", "--email", "ada@example.org"],
        {"DOCKYARD_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "dockyard.db").exists()


@pytest.mark.postgresql
def test_postgresql_with_an_old_schema_asks_for_db_upgrade(postgresql_url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(postgresql_url)
    empty = f"{url.database}_empty"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{empty}"'))
    try:
        env = {
            "DOCKYARD_DATABASE_URL": url.set(database=empty).render_as_string(hide_password=False),
            "DOCKYARD_SECRET_KEY": TEST_SECRET_KEY,
        }
        assert_one_line_error(run(["users", "list"], env), "run `dockyard db upgrade` first")
        assert run(["db", "upgrade"], env).exit_code == 0
        assert run(["users", "list"], env).exit_code == 0
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{empty}" WITH (FORCE)'))
        admin.dispose()


def test_the_demo_catalog_loads_once_into_an_empty_database(engine: Engine) -> None:
    from sqlalchemy import func, select

    from dockyard.catalog.demo import DEMO_TOOLS, load_demo
    from dockyard.catalog.listing import ToolQuery, find_tools
    from dockyard.catalog.models import Tool
    from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog

    catalog = Catalog(BUILTIN_REGISTRIES)
    with db.unit_of_work(db.make_sessionmaker(engine)) as unit:
        assert load_demo(unit, catalog) == len(DEMO_TOOLS)
    with db.unit_of_work(db.make_sessionmaker(engine)) as unit:
        assert load_demo(unit, catalog) == 0
        assert unit.scalar(select(func.count()).select_from(Tool)) == len(DEMO_TOOLS)
        page = find_tools(unit, None, ToolQuery(q="samtools"))
        assert [t.path for t in page.items] == ["quay.io/biocontainers/samtools"]
        assert page.items[0].descriptor_types == ",CWL,"
