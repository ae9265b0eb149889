"""The loop that sends queued email and retries failed sends, in `serve` and in workers."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from anyio import to_thread
from sqlalchemy.orm import Session, sessionmaker

from dockyard.access.mail import Mailer, deliver_pending

log = logging.getLogger("dockyard.mail")
MAIL_POLL_SECONDS = 30.0


async def run_mail_sender(
    sessions: sessionmaker[Session],
    mailer: Mailer,
    sender: str,
    stop: asyncio.Event,
    *,
    poll: float = MAIL_POLL_SECONDS,
) -> None:
    """Send due emails every `poll` seconds until `stop` is set."""
    while not stop.is_set():
        try:
            await to_thread.run_sync(deliver_pending, sessions, mailer, sender)
        except Exception:
            log.exception("the mail sender failed; it tries again")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=poll)
