"""Accounts: creating users, checking passwords, issuing and checking API tokens.

Services flush and never commit; the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dockyard.accounts.models import (
    ApiToken,
    SignInAttempt,
    SignInFailure,
    User,
    UserIdentity,
    WebSession,
)
from dockyard.accounts.passwords import hash_password, needs_rehash, verify_password
from dockyard.accounts.providers import Identity
from dockyard.db.types import utcnow
from dockyard.errors import (
    AuthenticationRequired,
    Conflict,
    InvalidInput,
    NotFound,
    RateLimited,
    SignInRefused,
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
    if user.awaiting_approval:
        raise AuthenticationRequired("this account waits for an administrator's approval")
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


# --- sign-in through a provider (OpenID Connect, GitHub) -------------------------------------

#: How long a browser has to come back from the provider.
SIGN_IN_ATTEMPT_LIFETIME = timedelta(minutes=10)
SelfSignup = Literal["true", "false", "approval"]


@dataclass(frozen=True)
class SignInStart:
    """What the provider is sent (`state`, `nonce`, and the verifier behind the PKCE
    challenge); only the state's digest is stored."""

    state: str
    nonce: str
    code_verifier: str


def start_sign_in(
    session: Session,
    *,
    provider: str,
    browser: str,
    next_path: str,
    link_user_id: int | None = None,
) -> SignInStart:
    """Remember a sign-in sent to `provider` from the browser whose CSRF secret is
    `browser`; expired attempts are cleared on the way."""
    session.execute(delete(SignInAttempt).where(SignInAttempt.expires_at <= utcnow()))
    start = SignInStart(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(64),
    )
    session.add(
        SignInAttempt(
            state_hash=_digest(start.state),
            provider=provider,
            nonce=start.nonce,
            code_verifier=start.code_verifier,
            browser_hash=_digest(browser),
            next_path=next_path,
            link_user_id=link_user_id,
            expires_at=utcnow() + SIGN_IN_ATTEMPT_LIFETIME,
        )
    )
    session.flush()
    return start


def take_sign_in(session: Session, *, provider: str, state: str, browser: str) -> SignInAttempt:
    """The sign-in this answer belongs to, removed so no second answer can use it;
    `SignInRefused` for a state this browser did not start here (forged, replayed, late)."""
    attempt = session.scalar(
        select(SignInAttempt).where(SignInAttempt.state_hash == _digest(state))
    )
    if attempt is None or attempt.provider != provider:
        raise SignInRefused(
            "this sign-in answer matches no sign-in started here (it was used already, or "
            "did not come from this site): sign in again"
        )
    session.delete(attempt)
    session.flush()
    if not hmac.compare_digest(attempt.browser_hash, _digest(browser)):
        raise SignInRefused(
            "this sign-in was started in another browser: sign in again from this one"
        )
    if attempt.expires_at <= utcnow():
        minutes = int(SIGN_IN_ATTEMPT_LIFETIME.total_seconds() // 60)
        raise SignInRefused(f"the sign-in took longer than {minutes} minutes: sign in again")
    return attempt


@dataclass(frozen=True)
class SignInOutcome:
    """What a provider's identity did here. `user` is set when a browser session may start;
    `awaiting_approval` when the account exists but waits for an administrator."""

    user: User | None
    created: bool = False
    linked: bool = False
    awaiting_approval: bool = False


def sign_in_with_identity(
    session: Session,
    *,
    provider: str,
    identity: Identity,
    self_signup: SelfSignup,
    link_user: User | None = None,
    username: str | None = None,
    email: str | None = None,
) -> SignInOutcome:
    """Sign a person in by the provider's issuer and subject, never by an email alone.

    - An identity linked before signs its user in (or says the account waits for approval,
      or is disabled).
    - With `link_user`, the identity is linked to that (signed-in) user.
    - Otherwise a new account is made as `self_signup` allows, named `username` (or after
      the provider's hint) with `email` (or the provider's verified address).
    """
    linked = session.scalar(
        select(UserIdentity).where(
            UserIdentity.issuer == identity.issuer, UserIdentity.subject == identity.subject
        )
    )
    if linked is not None:
        if link_user is not None and linked.user_id != link_user.id:
            raise Conflict(
                "this identity is linked to another dockyard account: sign out and sign in "
                "with it to use that account"
            )
        linked.last_signed_in_at = utcnow()
        linked.display = _shown(identity) or linked.display
        user = linked.user
        if user.awaiting_approval:
            return SignInOutcome(user=None, awaiting_approval=True)
        if not user.is_active:
            raise SignInRefused("this account is disabled: ask an administrator")
        return SignInOutcome(user=user)
    if link_user is not None:
        _link(session, link_user, provider, identity)
        return SignInOutcome(user=link_user, linked=True)
    if self_signup == "false":
        raise SignInRefused(
            "no dockyard account is linked to this identity, and this instance makes accounts "
            "only through its administrators: ask one for an account, then connect this "
            "sign-in on your account page"
        )
    email = email or identity.email
    if email is None:
        raise NeedsDetails("your provider shared no verified email address: give one")
    email = validate_email(email)
    if session.scalar(select(User.id).where(func.lower(User.email) == email.lower())):
        raise Conflict(
            f"an account with the email {email} exists already; accounts are never joined by "
            "email alone: sign in to it with its password and connect this sign-in on its "
            "account page, or give another email"
        )
    name = validate_username(username) if username else free_username(session, identity)
    user = create_user(session, username=name, email=email)
    if self_signup == "approval":
        user.is_active = False
        user.awaiting_approval = True
    _link(session, user, provider, identity)
    if user.awaiting_approval:
        return SignInOutcome(user=None, created=True, awaiting_approval=True)
    return SignInOutcome(user=user, created=True)


class NeedsDetails(InvalidInput):
    """A new account needs something the provider did not say (an email address)."""

    code = "needs_details"


def free_username(session: Session, identity: Identity) -> str:
    """A username for a new account: the provider's hint made to fit the rules, with a
    number added while it is taken."""
    hint = identity.username_hint or (identity.name or "").replace(" ", ".") or "user"
    base = re.sub(r"[^a-zA-Z0-9_.-]+", "-", hint).strip("._-")[:34] or "user"
    if not re.fullmatch(USERNAME_PATTERN, base):
        base = "user"
    candidate, number = base, 1
    while find_user(session, candidate) is not None:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def _link(session: Session, user: User, provider: str, identity: Identity) -> UserIdentity:
    linked = UserIdentity(
        user=user,
        provider=provider,
        issuer=identity.issuer,
        subject=identity.subject,
        display=_shown(identity),
        last_signed_in_at=utcnow(),
    )
    session.add(linked)
    try:
        session.flush()
    except IntegrityError:  # linked by a sign-in of the same person a moment ago
        raise Conflict("this identity was linked a moment ago: sign in again") from None
    return linked


def _shown(identity: Identity) -> str | None:
    return identity.email or identity.username_hint or identity.name


def list_identities(session: Session, user: User) -> list[UserIdentity]:
    """The provider identities linked to a user, oldest first."""
    query = select(UserIdentity).where(UserIdentity.user_id == user.id).order_by(UserIdentity.id)
    return list(session.scalars(query))


def unlink_identity(session: Session, user: User, identity_id: int) -> None:
    """Remove a linked identity, unless it is the user's only way to sign in."""
    linked = session.get(UserIdentity, identity_id)
    if linked is None or linked.user_id != user.id:
        raise NotFound(f"you have no linked sign-in with id {identity_id}")
    others = len(list_identities(session, user)) - 1
    if others == 0 and user.password_hash is None:
        raise Conflict(
            "this is your only way to sign in: connect another provider or ask an "
            "administrator to set a password first"
        )
    session.delete(linked)
    session.flush()


def approve_user(session: Session, username: str) -> User:
    """Let an account made by a first sign-in under approval sign in."""
    user = get_user(session, username)
    if not user.awaiting_approval:
        raise Conflict(f"{user.username} is not waiting for approval")
    user.awaiting_approval = False
    user.is_active = True
    session.flush()
    return user
