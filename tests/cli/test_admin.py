"""`dockyard users` and `dockyard tokens` against a real database, with one-line errors."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from dockyard import db
from dockyard.accounts import services
from tests.support.cli import assert_one_line_error, run


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


def test_admin_commands_on_the_embedded_database_migrate_it_first(tmp_path: Path) -> None:
    result = run(
        ["users", "create", "ada", "--email", "ada@example.org"],
        {"DOCKYARD_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "dockyard.db").exists()
