"""What happened to access requests: the audit log, and the notifications (in the UI and by
email) that tell requesters and maintainers."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from dockyard.access.models import AccessEvent, AccessRequest, Notification, OutboxEmail
from dockyard.accounts.models import User
from dockyard.catalog.models import Tool
from dockyard.catalog.services import visible_tool
from dockyard.db.types import utcnow
from dockyard.errors import NotFound, PermissionDenied

T = TypeVar("T")


def newest_first(
    session: Session, statement: Select[T], key: InstrumentedAttribute[int], limit: int, offset: int
) -> tuple[list[T], int]:
    """One page of a listing, newest (highest `key`) first, and how many there are in all."""
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    items = session.scalars(statement.order_by(key.desc()).limit(limit).offset(offset)).all()
    return list(items), total


def record_event(
    session: Session, request: AccessRequest, actor: User | None, action: str, detail: str
) -> None:
    session.add(
        AccessEvent(
            tool_id=request.tool_id,
            request_id=request.id,
            actor=actor,
            action=action,
            detail=detail,
        )
    )


def audit_log(
    session: Session, user: User, tool_id: int, *, limit: int, offset: int
) -> tuple[list[AccessEvent], int]:
    """The tool's access events, newest first; for its maintainers only."""
    tool = visible_tool(session, user, tool_id)
    if not tool.is_maintained_by(user):
        raise PermissionDenied(f"only the maintainers of {tool.path} read its access log")
    statement = select(AccessEvent).where(AccessEvent.tool_id == tool.id)
    return newest_first(session, statement, AccessEvent.id, limit, offset)


def notify_maintainers(
    session: Session,
    tool: Tool,
    request: AccessRequest,
    kind: str,
    lines: list[str],
    link: str,
) -> None:
    users = [maintainer.user for maintainer in tool.maintainers]
    addresses = [tool.maintainer_email] if tool.maintainer_email else [u.email for u in users]
    subject = f"[dockyard] {request.requester.username} requests access to {tool.path}"
    if kind == "access-withdrawn":
        subject = f"[dockyard] {request.requester.username} withdrew a request for {tool.path}"
    notify(session, users, addresses, subject, lines, link, kind, request)


def notify(
    session: Session,
    users: Sequence[User],
    addresses: Sequence[str],
    subject: str,
    lines: list[str],
    link: str,
    kind: str,
    request: AccessRequest,
) -> None:
    """In-app notices for `users` and one queued email per address, in this transaction."""
    text = " ".join(line if line.endswith((".", "!", "?")) else f"{line}." for line in lines)
    for user in users:
        session.add(
            Notification(user_id=user.id, kind=kind, text=text, link=link, request_id=request.id)
        )
    body_text = "\n\n".join([*lines, link, "-- dockyard"]) + "\n"
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    body_html = (
        f"<!doctype html><html><body>{paragraphs}"
        f'<p><a href="{html.escape(link, quote=True)}">{html.escape(link)}</a></p>'
        "<p>-- dockyard</p></body></html>"
    )
    for address in dict.fromkeys(addresses):
        session.add(
            OutboxEmail(
                to_address=address, subject=subject, body_text=body_text, body_html=body_html
            )
        )


def notifications(
    session: Session, user: User, *, unread: bool, limit: int, offset: int
) -> tuple[list[Notification], int]:
    """The caller's notices, newest first."""
    statement = select(Notification).where(Notification.user_id == user.id)
    if unread:
        statement = statement.where(Notification.read_at.is_(None))
    return newest_first(session, statement, Notification.id, limit, offset)


def mark_read(session: Session, user: User, notification_id: int | None) -> int:
    """Mark one of the caller's notices read (or all of them when None); how many changed."""
    statement = select(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None)
    )
    if notification_id is not None:
        statement = statement.where(Notification.id == notification_id)
    items = session.scalars(statement).all()
    if notification_id is not None and not items:
        owned = session.get(Notification, notification_id)
        if owned is None or owned.user_id != user.id:
            raise NotFound(f"no notification {notification_id}")
    now = utcnow()
    for item in items:
        item.read_at = now
    session.flush()
    return len(items)
