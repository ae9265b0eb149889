"""Accounts: creating users, checking passwords, issuing and checking API tokens.

Services flush and never commit; the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dockyard.accounts.models import ApiToken, SignInFailure, User, WebSession
from dockyard.accounts.passwords import hash_password, needs_rehash, verify_password
from dockyard.db.types import utcnow
from dockyard.errors import (
    AuthenticationRequired,
    Conflict,
    InvalidInput,
    NotFound,
    RateLimited,
)

USERNAME_PATTERN = r"[a-zA-Z0-9](?:[a-zA-Z0-9_.-]{0,38}[a-zA-Z0-9])?"
EMAIL_PATTERN = r"[^@\s]+@[^@\s]+\.[^@\s]+"
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
TOKEN_PREFIX = "dy_"  # noqa: S105 (a public marker, not a secret)
#: A token's last-used time is written at most this often, to spare the database a write
#: on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def validate_username(username: str) -> str:
    """The username if it is acceptable, else `InvalidInput` saying what is allowed."""
    if not re.fullmatch(USERNAME_PATTERN, username):
        raise InvalidInput(
            f"username {username!r} is not allowed: use 1-40 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return username


def validate_email(email: str) -> str:
    """The email address, trimmed, if it looks deliverable."""
    email = email.strip()
    if len(email) > 254 or not re.fullmatch(EMAIL_PATTERN, email):
        raise InvalidInput(
            f"email {email!r} is not an email address: give one like ada@example.org"
        )
    return email


def validate_password(password: str) -> str:
    """The password if it is long enough (and not absurdly long)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    return password


def create_user(
    session: Session,
    *,
    username: str,
    email: str,
    password: str | None = None,
    is_admin: bool = False,
) -> User:
    """A new user; `Conflict` when the username or email is taken (case-insensitively)."""
    user = User(
        username=validate_username(username),
        email=validate_email(email),
        password_hash=hash_password(validate_password(password)) if password else None,
        is_admin=is_admin,
    )
    if find_user(session, username) is not None:
        raise Conflict(f"username {username!r} is taken: choose another")
    taken = session.scalar(select(User.id).where(func.lower(User.email) == user.email.lower()))
    if taken is not None:
        raise Conflict(f"email {user.email!r} already belongs to an account")
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"username {username!r} or its email is taken: choose another") from None
    return user


def find_user(session: Session, username: str) -> User | None:
    """The user with this username (case-insensitive), if any."""
    return session.scalar(select(User).where(func.lower(User.username) == username.lower()))


def get_user(session: Session, username: str) -> User:
    """The user with this username, or `NotFound`."""
    user = find_user(session, username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def check_password(session: Session, username: str, password: str) -> User:
    """The user whose credentials these are; the same error whichever part is wrong."""
    user = find_user(session, username)
    if not verify_password(user.password_hash if user else None, password):
        raise AuthenticationRequired("wrong username or password")
    assert user is not None
    if not user.is_active:
        raise AuthenticationRequired("this account is disabled: ask an administrator")
    if user.password_hash and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def set_password(user: User, password: str) -> None:
    """Replace the user's password."""
    user.password_hash = hash_password(validate_password(password))


def create_token(session: Session, user: User, *, name: str) -> tuple[ApiToken, str]:
    """A new API token for `user`, and the token itself (which is never stored)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a token name must have 1-100 characters, e.g. 'laptop' or 'ci'")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name,
        token_hash=_digest(plaintext),
        prefix=plaintext[: len(TOKEN_PREFIX) + 6],
    )
    session.add(token)
    session.flush()
    return token, plaintext


def list_tokens(session: Session, user: User) -> list[ApiToken]:
    """The user's tokens, newest first, revoked ones included."""
    query = (
        select(ApiToken)
        .where(ApiToken.user_id == user.id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return list(session.scalars(query))


def revoke_token(session: Session, user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's tokens; revoking twice is harmless."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound(f"you have no token with id {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
    return token


def authenticate_token(
    session: Session,
    plaintext: str,
    *,
    now: datetime | None = None,
    used: Callable[[int, datetime], None] | None = None,
) -> User:
    """The active user a bearer token belongs to, or `AuthenticationRequired`.

    Nothing is written: a read stays a read (on SQLite a write would take the database's
    lock). When the token's `last_used_at` is due for a new value (at most once a
    `LAST_USED_RESOLUTION`), `used(token_id, now)` is told, to write it later.
    """
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(plaintext)))
    if token is None or token.revoked_at is not None:
        raise AuthenticationRequired(
            "the API token is not valid or was revoked: create a new one with "
            "`dockyard tokens create` or in your account settings"
        )
    if not token.user.is_active:
        raise AuthenticationRequired("this account is disabled: ask an administrator")
    now = now or utcnow()
    due = token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION
    if due and used is not None:
        used(token.id, now)
    return token.user


def _digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


# --- browser sessions and sign-in ------------------------------------------------------------

SESSION_LIFETIME = timedelta(days=14)
SIGN_IN_WINDOW = timedelta(minutes=15)
#: Failed sign-ins allowed per username, and per client address, in `SIGN_IN_WINDOW`.
SIGN_IN_FAILURES_PER_USER = 5
SIGN_IN_FAILURES_PER_ADDRESS = 30


def start_session(session: Session, user: User) -> str:
    """A new browser session for `user`; the cookie value, which is never stored."""
    plaintext = secrets.token_urlsafe(32)
    session.add(
        WebSession(token_hash=_digest(plaintext), user=user, expires_at=utcnow() + SESSION_LIFETIME)
    )
    session.flush()
    return plaintext


def session_user(session: Session, plaintext: str | None) -> User | None:
    """The active user a session cookie belongs to; None when it is unknown or expired."""
    if not plaintext:
        return None
    found = session.scalar(select(WebSession).where(WebSession.token_hash == _digest(plaintext)))
    if found is None or found.expires_at <= utcnow() or not found.user.is_active:
        return None
    return found.user


def end_session(session: Session, plaintext: str | None) -> None:
    """Sign a browser out; unknown cookies are ignored."""
    if plaintext:
        found = session.scalar(
            select(WebSession).where(WebSession.token_hash == _digest(plaintext))
        )
        if found is not None:
            session.delete(found)
            session.flush()


def check_sign_in_allowed(session: Session, username: str, address: str) -> None:
    """`RateLimited` after too many recent failures for this username or address."""
    since = utcnow() - SIGN_IN_WINDOW
    recent = select(func.count()).select_from(SignInFailure).where(SignInFailure.created_at > since)
    by_user = session.scalar(recent.where(SignInFailure.username == username.lower())) or 0
    by_address = session.scalar(recent.where(SignInFailure.address == address)) or 0
    if by_user >= SIGN_IN_FAILURES_PER_USER or by_address >= SIGN_IN_FAILURES_PER_ADDRESS:
        minutes = int(SIGN_IN_WINDOW.total_seconds() // 60)
        raise RateLimited(
            f"too many failed sign-ins; wait {minutes} minutes and try again",
            retry_after=int(SIGN_IN_WINDOW.total_seconds()),
        )


def record_sign_in_failure(session: Session, username: str, address: str) -> None:
    """Remember a failed sign-in (and forget those older than the window)."""
    session.execute(
        delete(SignInFailure).where(SignInFailure.created_at <= utcnow() - SIGN_IN_WINDOW)
    )
    session.add(SignInFailure(username=username.lower()[:254], address=address[:64]))
    session.flush()
