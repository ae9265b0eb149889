"""Sending queued email: `DOCKYARD_SMTP_URL`, the outbox, claims and retries.

Emails are rows (`OutboxEmail`) written in the same transaction as what caused them, so a
request is never lost to a failed send, and a send never happens for a change that rolled
back. Senders (after a request, in `dockyard serve`'s background loop and in every `dockyard
worker`) claim a row before sending it, so two processes never send one email at once; a
failed send is tried again later, with growing pauses, up to `MAX_ATTEMPTS` times.

The SMTP server is `DOCKYARD_SMTP_URL`, parsed by `dockyard.settings.SmtpConfig`.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from dockyard.access.models import OutboxEmail
from dockyard.db import unit_of_work
from dockyard.db.types import utcnow
from dockyard.settings import Settings, SmtpConfig

log = logging.getLogger("dockyard.mail")

MAX_ATTEMPTS = 6
#: Pause before attempt n+1 after n failures.
BACKOFF_SECONDS = (60, 300, 1800, 7200, 21600)
CLAIM_SECONDS = 120
SMTP_TIMEOUT = 20.0


class Mailer(Protocol):
    """Hands one message to whatever delivers email."""

    def send(self, message: EmailMessage) -> None: ...


class SmtpMailer:
    """Delivers through an SMTP server, plain, with STARTTLS or over TLS."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def send(self, message: EmailMessage) -> None:
        with self._session() as client:
            client.send_message(message)

    def check(self, timeout: float = SMTP_TIMEOUT) -> None:
        """Connect, greet, secure and sign in as a send would, and send nothing; raises
        `OSError` or `smtplib.SMTPException` with the reason when that fails."""
        with self._session(timeout) as client:
            client.noop()

    @contextmanager
    def _session(self, timeout: float = SMTP_TIMEOUT) -> Iterator[smtplib.SMTP]:
        config = self.config
        context = ssl.create_default_context(cafile=config.cafile)
        client: smtplib.SMTP
        if config.security == "tls":
            client = smtplib.SMTP_SSL(config.host, config.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=timeout)
        with client:
            if config.security == "starttls":
                client.starttls(context=context)
            if config.username:
                client.login(config.username, config.password or "")
            yield client


class LogMailer:
    """What dockyard does without `DOCKYARD_SMTP_URL`: logs that an email was not sent."""

    def send(self, message: EmailMessage) -> None:
        # A warning with the recipient in its words: the console of `dockyard serve` shows
        # it in either log format, so an operator sees who was not told.
        log.warning(
            "email to %s not sent (DOCKYARD_SMTP_URL is not set): %s",
            message["To"],
            message["Subject"],
            extra={"to": message["To"], "subject": message["Subject"]},
        )


def sender_address(settings: Settings) -> str:
    """`DOCKYARD_MAIL_FROM`, else dockyard@ the external host (or this machine's name)."""
    if settings.mail_from:
        return settings.mail_from
    host = urlsplit(settings.base_url).hostname if settings.base_url else None
    return f"dockyard@{host or socket.getfqdn()}"


def mailer_for(settings: Settings) -> Mailer:
    """The mailer the settings ask for: SMTP when `DOCKYARD_SMTP_URL` is set."""
    url = settings.smtp_url
    return SmtpMailer(SmtpConfig.from_url(url.get_secret_value())) if url else LogMailer()


def compose(email: OutboxEmail, sender: str) -> EmailMessage:
    """A multipart (plain text and HTML) message for a queued email."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to_address
    message["Subject"] = email.subject
    message["Message-ID"] = make_msgid(idstring=f"dockyard-{email.id}")
    message.set_content(email.body_text)
    message.add_alternative(email.body_html, subtype="html")
    return message


def deliver_pending(
    sessions: sessionmaker[Session], mailer: Mailer, sender: str, *, limit: int = 50
) -> int:
    """Send the queued emails that are due; how many were sent."""
    sent = 0
    for email_id in _due(sessions, limit):
        email = _claim(sessions, email_id)
        if email is None:
            continue
        try:
            mailer.send(compose(email, sender))
        except (OSError, smtplib.SMTPException) as error:
            _failed(sessions, email_id, error)
            continue
        with unit_of_work(sessions) as session:
            session.execute(
                update(OutboxEmail)
                .where(OutboxEmail.id == email_id)
                .values(status="sent", sent_at=utcnow(), claimed_until=None, last_error=None)
            )
        sent += 1
    return sent


def send_queued(sessions: sessionmaker[Session], mailer: Mailer, sender: str) -> None:
    """Send what a request queued, right after its answer; failures wait for the mail loop."""
    try:
        deliver_pending(sessions, mailer, sender)
    except Exception:  # a background task must not die silently; the loop retries
        log.exception("sending queued email failed; it is tried again later")


def _due(sessions: sessionmaker[Session], limit: int) -> list[int]:
    now = utcnow()
    with unit_of_work(sessions, write=False) as session:
        return list(
            session.scalars(
                select(OutboxEmail.id)
                .where(
                    OutboxEmail.status == "pending",
                    OutboxEmail.next_attempt_at <= now,
                    or_(OutboxEmail.claimed_until.is_(None), OutboxEmail.claimed_until < now),
                )
                .order_by(OutboxEmail.id)
                .limit(limit)
            )
        )


def _claim(sessions: sessionmaker[Session], email_id: int) -> OutboxEmail | None:
    """The email, claimed for this sender; None when another sender holds it."""
    now = utcnow()
    with unit_of_work(sessions) as session:
        claimed = session.execute(
            update(OutboxEmail)
            .where(
                OutboxEmail.id == email_id,
                OutboxEmail.status == "pending",
                or_(OutboxEmail.claimed_until.is_(None), OutboxEmail.claimed_until < now),
            )
            .values(
                claimed_until=now + timedelta(seconds=CLAIM_SECONDS),
                attempts=OutboxEmail.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return None
        email = session.get(OutboxEmail, email_id)
        if email is not None:
            session.expunge(email)
        return email


def _failed(sessions: sessionmaker[Session], email_id: int, error: BaseException) -> None:
    reason = f"{type(error).__name__}: {getattr(error, 'strerror', None) or error}"[:500]
    with unit_of_work(sessions) as session:
        email = session.get(OutboxEmail, email_id)
        if email is None:
            return
        email.claimed_until = None
        email.last_error = reason
        if email.attempts >= MAX_ATTEMPTS:
            email.status = "failed"
            log.error("email given up", extra={"email_id": email_id, "attempts": email.attempts})
            return
        pause = BACKOFF_SECONDS[min(email.attempts, len(BACKOFF_SECONDS)) - 1]
        email.next_attempt_at = utcnow() + timedelta(seconds=pause)
    log.warning(
        "email not sent; it is tried again",
        extra={"email_id": email_id, "reason": reason, "retry_in": pause},
    )
