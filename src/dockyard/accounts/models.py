"""Users and their API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dockyard.db import Base
from dockyard.db.types import UTCDateTime, utcnow


class User(Base):
    """A person (or robot) with an account; `password_hash` is None for token-only accounts."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40))
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Made by a first sign-in under `DOCKYARD_SELF_SIGNUP=approval`: inactive until an
    #: administrator approves it (`dockyard users approve`).
    awaiting_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    identities: Mapped[list[UserIdentity]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        Index("uq_users_username_lower", func.lower(username), unique=True),
        Index("uq_users_email_lower", func.lower(email), unique=True),
    )


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    user: Mapped[User] = relationship(back_populates="tokens")

    @property
    def active(self) -> bool:
        """True until the token is revoked."""
        return self.revoked_at is None


class WebSession(Base):
    """A browser's signed-in session; only the SHA-256 of its cookie is stored."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")


class UserIdentity(Base):
    """An account at a sign-in provider linked to a user: the provider's issuer and its
    subject (never the email) name the person at every later sign-in."""

    __tablename__ = "user_identities"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: The provider's key in dockyard's configuration, when it was linked (shown to people).
    provider: Mapped[str] = mapped_column(String(40))
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    #: What the provider called the person when last seen, for the account page.
    display: Mapped[str | None] = mapped_column(String(254), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_signed_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    user: Mapped[User] = relationship(back_populates="identities")

    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_user_identities_subject"),)


class SignInAttempt(Base):
    """A sign-in sent to a provider and not yet back: what its answer must match (`state`,
    by SHA-256), the nonce and PKCE verifier to check it with, and the browser that started it.
    Used once: the callback deletes it, so a replayed answer finds nothing."""

    __tablename__ = "sign_in_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(40))
    nonce: Mapped[str] = mapped_column(String(100))
    code_verifier: Mapped[str] = mapped_column(String(128))
    #: SHA-256 of the starting browser's CSRF cookie: another browser cannot finish it.
    browser_hash: Mapped[str] = mapped_column(String(64))
    next_path: Mapped[str] = mapped_column(String(2000), default="/")
    #: Set when a signed-in user connects another identity to their account.
    link_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SignInFailure(Base):
    """A failed sign-in, kept for a while to slow down password guessing."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(254), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


#: What a member may do in an organization: admins manage it and its members; maintainers
#: maintain its tools and workflows and curate its collections; members are listed.
ORGANIZATION_ROLES = ("admin", "maintainer", "member")
MAINTAINING_ROLES = ("admin", "maintainer")


class Organization(Base):
    """A lab, institute or project: members with roles, and the tools, workflows and
    collections that belong to it."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: In addresses (`/organizations/{name}`) and TRS labels: letters, digits, '.', '_', '-'.
    name: Mapped[str] = mapped_column(String(40))
    display_name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    members: Mapped[list[OrganizationMember]] = relationship(
        back_populates="organization",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
        order_by="OrganizationMember.created_at",
    )

    __table_args__ = (Index("uq_organizations_name_lower", func.lower(name), unique=True),)

    def role_of(self, user: User | None) -> str | None:
        """The user's role here, if they are a member."""
        if user is None:
            return None
        return next((m.role for m in self.members if m.user_id == user.id), None)

    def maintained_by(self, user: User | None) -> bool:
        """True for its admins and maintainers, who maintain what belongs to it."""
        return self.role_of(user) in MAINTAINING_ROLES


class OrganizationMember(Base):
    """A user's membership of an organization, with a role (`ORGANIZATION_ROLES`)."""

    __tablename__ = "organization_members"

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship(back_populates="members")
    user: Mapped[User] = relationship(lazy="joined")
