"""Running refreshes: the refresher a process builds from its settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.orm import Session, sessionmaker

from dockyard.errors import DockyardError
from dockyard.registries.catalog import Catalog, Source
from dockyard.registries.credentials import CredentialResolver, SecretBox
from dockyard.registries.oci import HostGuard, RegistryClient
from dockyard.settings import Settings
from dockyard.tools.refresh import Refresher


def operator_host_check(catalog: Catalog) -> HostGuard:
    """A guard that also trusts every host the operator's registries file names."""

    def trusted(host: str) -> bool:
        try:
            return catalog.match(host).source is Source.OPERATOR
        except DockyardError:
            return False

    return HostGuard(is_trusted=trusted)


@asynccontextmanager
async def open_refresher(
    settings: Settings, sessions: sessionmaker[Session], catalog: Catalog
) -> AsyncIterator[Refresher]:
    """A refresher with its own registry client, closed when the block ends."""
    guard = operator_host_check(catalog)
    guard.allow_private = settings.allow_private_network_registries
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    resolver = CredentialResolver(environ=settings.environ, box=SecretBox(key) if key else None)
    async with RegistryClient(guard=guard) as client:
        yield Refresher(sessions=sessions, catalog=catalog, client=client, credentials=resolver)
