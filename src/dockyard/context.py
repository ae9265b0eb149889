"""The long-lived objects of one app, built once by the app factory (`dockyard.app`).

Adapters (REST, web, TRS, CLI server) reach them through this container; the domain packages
never import it: a domain function takes the objects it needs (a session factory, a catalog,
a granter) as arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dockyard.access.grants import Granter
from dockyard.access.mail import Mailer, send_queued, sender_address
from dockyard.accounts.oidc import SignInClient
from dockyard.accounts.providers import Provider
from dockyard.catalog.launch import DEFAULTS, Template
from dockyard.refresh.tasks import RefreshQueue
from dockyard.refresh.usage import UsageCounter
from dockyard.registries.catalog import Catalog
from dockyard.settings import Settings

log = logging.getLogger("dockyard.refresh")


@dataclass(frozen=True)
class AppContext:
    """The long-lived objects of one app: settings, database, registries, email, grants."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    catalog: Catalog
    mailer: Mailer
    granter: Granter
    usage: UsageCounter
    #: PostgreSQL's job queue, open while the app runs: webhooks queue refreshes for the
    #: workers at once (None in the embedded mode, where the app refreshes due tools itself).
    queue: RefreshQueue | None = None
    #: The sign-in providers the operator configured, by key, and the client that talks to them.
    providers: Mapping[str, Provider] = field(default_factory=dict)
    signin: SignInClient = field(default_factory=SignInClient)
    #: The launch-with platforms a version's page links to.
    launch: tuple[Template, ...] = DEFAULTS

    async def queue_refresh(self, kind: str, object_id: int) -> None:
        """Hand a refresh of a tool or workflow that a webhook made due to the workers now;
        should that fail, the schedulers still find it due within a minute."""
        if self.queue is None:
            return
        try:
            await self.queue.open_once()
            if kind == "workflow":
                await self.queue.enqueue_workflow(object_id, "webhook")
            else:
                await self.queue.enqueue(object_id, "webhook")
        except Exception:  # the queue is a shortcut; being due is the guarantee
            log.warning(
                "could not queue the refresh; the scheduler will find it due",
                exc_info=True,
                extra={kind + "_id": object_id},
            )

    def send_queued_mail(self) -> None:
        """Send the email a request queued (run after its answer; the mail loop retries)."""
        send_queued(self.sessions, self.mailer, sender_address(self.settings))
