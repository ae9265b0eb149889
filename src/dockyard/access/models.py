"""Access requests, their audit log, notifications, outgoing email and registry requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dockyard.accounts.models import User
from dockyard.catalog.models import Tool
from dockyard.db import Base
from dockyard.db.types import UTCDateTime, utcnow


class AccessRequest(Base):
    """A user's request for pull permission on a private tool's image."""

    __tablename__ = "access_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"), index=True)
    requester_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    #: The requester's identity in the tool's registry (username, AWS account id or ARN).
    registry_identity: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text, default="")
    #: "pending", "granted", "denied", "revoked" or "withdrawn".
    status: Mapped[str] = mapped_column(String(16), default="pending")
    #: Why it was denied or revoked, in the maintainer's words.
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    #: How the registry part was done at grant: "ecr-policy", "quay-api" or "manual".
    grant_method: Mapped[str | None] = mapped_column(String(16), default=None)
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    tool: Mapped[Tool] = relationship()
    requester: Mapped[User] = relationship(foreign_keys=[requester_id], lazy="joined")
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])

    __table_args__ = (
        # One pending request per user and tool, kept by the database itself.
        Index(
            "uq_access_requests_pending",
            tool_id,
            requester_id,
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )


class AccessEvent(Base):
    """One step of the access workflow, for the audit log the tool's maintainers read."""

    __tablename__ = "access_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"), index=True)
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("access_requests.id", ondelete="CASCADE"), default=None
    )
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    #: "requested", "granted", "denied", "revoked", "withdrawn", "registry-applied",
    #: "registry-removed" or "registry-failed".
    action: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User | None] = relationship(lazy="joined")


class Notification(Base):
    """An in-app notice for one user."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: "access-requested", "access-granted", "access-denied", "access-revoked", ...
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(1000), default="")
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("access_requests.id", ondelete="CASCADE"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    __table_args__ = (Index("ix_notifications_user_id_id", user_id, id),)


class OutboxEmail(Base):
    """An email waiting to be sent, or sent; written in the same transaction as its cause."""

    __tablename__ = "outbox_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: "pending", "sent" or "failed" (gave up after `MAX_ATTEMPTS`).
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: A sender claims a row until this time, so two processes never send it twice at once.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class RegistryRequest(Base):
    """A user's request that dockyard support a registry it does not know."""

    __tablename__ = "registry_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    requester_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    host: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    #: "open", "added" or "declined".
    status: Mapped[str] = mapped_column(String(16), default="open")
    note: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    resolved_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )

    requester: Mapped[User] = relationship(foreign_keys=[requester_id], lazy="joined")


class GrantToken(Base):
    """A maintainer's registry API token that lets dockyard grant access (Quay); sealed."""

    __tablename__ = "access_grant_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("tools.id", ondelete="CASCADE"), unique=True)
    secret: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
