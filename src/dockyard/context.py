"""The long-lived objects of one app, built once by the app factory (`dockyard.app`).

Adapters (REST, web, TRS, CLI server) reach them through this container; the domain packages
never import it: a domain function takes the objects it needs (a session factory, a catalog,
a granter) as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dockyard.access.grants import Granter
from dockyard.access.mail import Mailer, send_queued, sender_address
from dockyard.refresh.usage import UsageCounter
from dockyard.registries.catalog import Catalog
from dockyard.settings import Settings


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

    def send_queued_mail(self) -> None:
        """Send the email a request queued (run after its answer; the mail loop retries)."""
        send_queued(self.sessions, self.mailer, sender_address(self.settings))
