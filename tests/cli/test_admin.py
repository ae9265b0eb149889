"""`dockyard users` and `dockyard tokens` against a real database, with one-line errors."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from dockyard import db
from dockyard.accounts import services
from dockyard.accounts.providers import Identity
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


def test_accounts_made_by_a_first_sign_in_are_listed_and_approved(
    env: dict[str, str], engine: Engine
) -> None:
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        outcome = services.sign_in_with_identity(
            session,
            provider="lab",
            identity=Identity(
                "https://login.example.org", "s-1", "grace", "Grace", "g@example.org"
            ),
            self_signup="approval",
        )
        assert outcome.awaiting_approval and outcome.user is None
    waiting = run(["users", "list", "--awaiting"], env)
    assert waiting.exit_code == 0, waiting.output
    assert waiting.stdout.splitlines()[1].split() == [
        "grace",
        "g@example.org",
        "lab",
        "awaiting",
        "approval",
    ]

    approved = run(["users", "approve", "grace"], env)
    assert approved.stdout.strip() == "approved grace <g@example.org>"
    assert run(["users", "list", "--awaiting"], env).stdout.splitlines()[1:] == []
    assert "active" in run(["users", "list"], env).stdout
    assert_one_line_error(
        run(["users", "approve", "grace"], env), "grace is not waiting for approval"
    )
