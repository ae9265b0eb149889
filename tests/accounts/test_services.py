"""Accounts: users, passwords and API tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dockyard import db
from dockyard.accounts import services
from dockyard.accounts.models import ApiToken
from dockyard.db.types import utcnow
from dockyard.errors import AuthenticationRequired, Conflict, InvalidInput, NotFound
from dockyard.refresh.usage import UsageCounter


def test_a_user_is_created_with_an_argon2_hash_not_the_password(session: Session) -> None:
    user = services.create_user(
        session, username="ada", email="ada@example.org", password="correct horse"
    )
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in user.password_hash
    assert services.check_password(session, "ADA", "correct horse") is user


@pytest.mark.parametrize("username", ["Ada", "ADA", "ada"])
def test_usernames_are_unique_regardless_of_case(session: Session, username: str) -> None:
    services.create_user(session, username="ada", email="ada@example.org")
    with pytest.raises(Conflict, match="taken"):
        services.create_user(session, username=username, email="other@example.org")


def test_emails_are_unique_regardless_of_case(session: Session) -> None:
    services.create_user(session, username="ada", email="ada@example.org")
    with pytest.raises(Conflict, match="already belongs"):
        services.create_user(session, username="grace", email="ADA@example.org")


@pytest.mark.parametrize(
    ("username", "email", "password", "says"),
    [
        ("-ada", "ada@example.org", None, "username '-ada' is not allowed"),
        ("a" * 41, "ada@example.org", None, "is not allowed"),
        ("ada lovelace", "ada@example.org", None, "is not allowed"),
        ("ada", "not-an-email", None, "is not an email address"),
        ("ada", "ada@example.org", "short", "at least 10 characters"),
    ],
)
def test_bad_account_details_are_refused_with_the_rule(
    session: Session, username: str, email: str, password: str | None, says: str
) -> None:
    with pytest.raises(InvalidInput, match=None) as caught:
        services.create_user(session, username=username, email=email, password=password)
    assert says in caught.value.message


def test_wrong_password_and_unknown_user_get_the_same_answer(session: Session) -> None:
    services.create_user(session, username="ada", email="ada@example.org", password="correct horse")
    with pytest.raises(AuthenticationRequired) as wrong:
        services.check_password(session, "ada", "wrong horse!")
    with pytest.raises(AuthenticationRequired) as unknown:
        services.check_password(session, "nobody", "correct horse")
    assert wrong.value.message == unknown.value.message


def test_a_user_without_a_password_cannot_sign_in_with_one(session: Session) -> None:
    services.create_user(session, username="robot", email="robot@example.org")
    with pytest.raises(AuthenticationRequired):
        services.check_password(session, "robot", "")


def test_tokens_are_stored_hashed_and_authenticate_their_user(session: Session) -> None:
    user = services.create_user(session, username="ada", email="ada@example.org")
    token, plaintext = services.create_token(session, user, name="laptop")
    assert plaintext.startswith("dy_")
    assert plaintext not in token.token_hash
    assert plaintext.startswith(token.prefix)
    stored = session.scalars(select(ApiToken.token_hash)).all()
    assert plaintext not in stored
    noted: list[tuple[int, datetime]] = []
    assert services.authenticate_token(session, plaintext, used=lambda *u: noted.append(u)) is user
    assert [token_id for token_id, _ in noted] == [token.id]
    assert token.last_used_at is None  # authenticating writes nothing; the use is noted


def test_last_used_time_is_noted_at_most_once_a_minute(session: Session) -> None:
    user = services.create_user(session, username="ada", email="ada@example.org")
    token, plaintext = services.create_token(session, user, name="laptop")
    noted: list[datetime] = []

    def used(token_id: int, when: datetime) -> None:
        noted.append(when)
        token.last_used_at = when  # as the usage flush writes it

    first = utcnow()
    services.authenticate_token(session, plaintext, now=first, used=used)
    services.authenticate_token(session, plaintext, now=first + timedelta(seconds=30), used=used)
    assert noted == [first]
    later = first + timedelta(minutes=2)
    services.authenticate_token(session, plaintext, now=later, used=used)
    assert noted == [first, later]


def test_the_usage_flush_writes_last_used_forward_only(engine: Engine) -> None:
    sessions = db.make_sessionmaker(engine)
    with db.unit_of_work(sessions) as session:
        user = services.create_user(session, username="ada", email="ada@example.org")
        token_id = services.create_token(session, user, name="laptop")[0].id

    def last_used() -> datetime | None:
        with db.unit_of_work(sessions, write=False) as session:
            return session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id))

    counter = UsageCounter()
    now = utcnow()
    counter.token_used(token_id, now)
    counter.token_used(token_id, now - timedelta(minutes=5))  # an older note loses
    counter.flush(sessions)
    assert last_used() == now
    counter.token_used(token_id, now - timedelta(hours=1))
    counter.flush(sessions)
    assert last_used() == now


def test_a_revoked_token_no_longer_authenticates(session: Session) -> None:
    user = services.create_user(session, username="ada", email="ada@example.org")
    token, plaintext = services.create_token(session, user, name="laptop")
    services.revoke_token(session, user, token.id)
    services.revoke_token(session, user, token.id)
    with pytest.raises(AuthenticationRequired, match="revoked"):
        services.authenticate_token(session, plaintext)


def test_an_unknown_token_does_not_authenticate(session: Session) -> None:
    with pytest.raises(AuthenticationRequired):
        services.authenticate_token(session, "dy_not-a-token")


def test_a_disabled_account_cannot_use_its_tokens(session: Session) -> None:
    user = services.create_user(session, username="ada", email="ada@example.org")
    _, plaintext = services.create_token(session, user, name="laptop")
    user.is_active = False
    with pytest.raises(AuthenticationRequired, match="disabled"):
        services.authenticate_token(session, plaintext)


def test_nobody_can_revoke_another_users_token(session: Session) -> None:
    ada = services.create_user(session, username="ada", email="ada@example.org")
    grace = services.create_user(session, username="grace", email="grace@example.org")
    token, _ = services.create_token(session, ada, name="laptop")
    with pytest.raises(NotFound):
        services.revoke_token(session, grace, token.id)


def test_token_names_are_required(session: Session) -> None:
    user = services.create_user(session, username="ada", email="ada@example.org")
    with pytest.raises(InvalidInput, match="token name"):
        services.create_token(session, user, name="  ")


def test_tokens_are_listed_newest_first(session: Session) -> None:
    user = services.create_user(session, username="ada", email="ada@example.org")
    services.create_token(session, user, name="first")
    services.create_token(session, user, name="second")
    assert [t.name for t in services.list_tokens(session, user)] == ["second", "first"]
