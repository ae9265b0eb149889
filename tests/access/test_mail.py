"""The email outbox: URL forms, a failed send kept and retried, one sender per email."""

from __future__ import annotations

import ssl
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select

from dockyard import db
from dockyard.access.mail import MAX_ATTEMPTS, SmtpMailer, deliver_pending
from dockyard.access.models import OutboxEmail
from dockyard.db.types import utcnow
from dockyard.errors import ConfigurationError
from dockyard.settings import SmtpConfig
from tests.support.network import free_port
from tests.support.tls import self_signed


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.lab:2525", ("mail.lab", 2525, "plain", None)),
        ("smtp://u%40lab:p%3Ass@mail.lab?starttls=true", ("mail.lab", 587, "starttls", "u@lab")),
        ("smtps://mail.lab", ("mail.lab", 465, "tls", None)),
    ],
)
def test_smtp_urls_name_host_port_security_and_user(url: str, expected: tuple[Any, ...]) -> None:
    config = SmtpConfig.from_url(url)
    assert (config.host, config.port, config.security, config.username) == expected
    assert "p:ss" not in repr(config)


@pytest.mark.parametrize("url", ["http://mail", "smtp://", "smtp://mail?tls=maybe"])
def test_bad_smtp_urls_say_what_forms_work(url: str) -> None:
    with pytest.raises(ConfigurationError, match="smtp://"):
        SmtpConfig.from_url(url)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        self.sent.append(message)


def queue(engine: Engine) -> int:
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        email = OutboxEmail(
            to_address="maria@example.org", subject="hello", body_text="hi", body_html="<p>hi</p>"
        )
        session.add(email)
        session.flush()
        return email.id


def stored(engine: Engine, email_id: int) -> OutboxEmail:
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        email = session.scalars(select(OutboxEmail).where(OutboxEmail.id == email_id)).one()
        session.expunge(email)
        return email


def test_a_failed_send_is_kept_and_tried_again_later(engine: Engine) -> None:
    sessions = db.make_sessionmaker(engine)
    email_id = queue(engine)
    unreachable = SmtpMailer(SmtpConfig.from_url(f"smtp://127.0.0.1:{free_port()}"))
    assert deliver_pending(sessions, unreachable, "dockyard@lab") == 0
    failed = stored(engine, email_id)
    assert (failed.status, failed.attempts) == ("pending", 1)
    assert failed.last_error and "Connection" in failed.last_error
    assert failed.next_attempt_at > utcnow() + timedelta(seconds=30)
    recorder = Recorder()
    assert deliver_pending(sessions, recorder, "dockyard@lab") == 0  # not due yet
    with db.unit_of_work(sessions) as session:
        session.get_one(OutboxEmail, email_id).next_attempt_at = utcnow()
    assert deliver_pending(sessions, recorder, "dockyard@lab") == 1
    assert stored(engine, email_id).status == "sent"
    assert recorder.sent[0].get_body(("html",)) is not None
    assert deliver_pending(sessions, recorder, "dockyard@lab") == 0  # never twice


def test_an_email_claimed_by_another_sender_is_left_alone_and_failures_end(
    engine: Engine,
) -> None:
    sessions = db.make_sessionmaker(engine)
    email_id = queue(engine)
    with db.unit_of_work(sessions) as session:
        session.get_one(OutboxEmail, email_id).claimed_until = utcnow() + timedelta(minutes=1)
    assert deliver_pending(sessions, Recorder(), "dockyard@lab") == 0
    with db.unit_of_work(sessions) as session:
        email = session.get_one(OutboxEmail, email_id)
        email.claimed_until = None
        email.attempts = MAX_ATTEMPTS - 1
    unreachable = SmtpMailer(SmtpConfig.from_url(f"smtp://127.0.0.1:{free_port()}"))
    deliver_pending(sessions, unreachable, "dockyard@lab")
    assert stored(engine, email_id).status == "failed"


class Keep:
    def __init__(self) -> None:
        self.received: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((session.authenticated, envelope.content))
        return "250 OK"


def accept_lab_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    good = isinstance(data, LoginPassword) and (data.login, data.password) == (b"lab", b"p:ss")
    return AuthResult(success=good)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_email_goes_out_with_starttls_or_tls_and_a_login(security: str, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler, port = Keep(), free_port()
    options: dict[str, Any] = {"authenticator": accept_lab_login, "auth_require_tls": True}
    if security == "starttls":
        options |= {"tls_context": context, "require_starttls": True}
    else:  # aiosmtpd knows only STARTTLS as "TLS" for AUTH; this connection is TLS throughout
        options |= {"ssl_context": context, "auth_require_tls": False}
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        scheme = "smtps" if security == "tls" else "smtp"
        query = f"cafile={cert}" + ("&starttls=true" if security == "starttls" else "")
        mailer = SmtpMailer(SmtpConfig.from_url(f"{scheme}://lab:p%3Ass@127.0.0.1:{port}?{query}"))
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "d@lab", "m@lab", "hi"
        message.set_content("hello")
        mailer.send(message)
    finally:
        controller.stop()
    assert len(handler.received) == 1 and handler.received[0][0] is True
