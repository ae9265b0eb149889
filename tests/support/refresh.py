"""Refreshing tools against real or scripted registries, and reading back what was stored."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine

from dockyard import db
from dockyard.accounts import services as accounts
from dockyard.catalog import services
from dockyard.catalog.models import Tool
from dockyard.egress import HostGuard
from dockyard.refresh.results import RefreshReport
from dockyard.refresh.services import Refresher
from dockyard.registries.catalog import Catalog
from dockyard.registries.credentials import CredentialResolver, SecretBox
from dockyard.registries.oci import RegistryClient
from tests.support.app import TEST_SECRET_KEY
from tests.support.catalog import CATALOG
from tests.support.registry import LocalRegistry
from tests.support.scripted import fetch_from

BOX = SecretBox(TEST_SECRET_KEY)


#: A single-platform image as scripted registries serve it.
CONFIG = json.dumps({"os": "linux", "architecture": "amd64"}).encode()


CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()


MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": CONFIG_DIGEST,
            "size": len(CONFIG),
        },
        "layers": [],
    }
).encode()


MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


def register(
    engine: Engine,
    registry: LocalRegistry,
    repository: str,
    *,
    credentials: bool = True,
    catalog: Catalog = CATALOG,
    **changes: Any,
) -> int:
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        user = accounts.find_user(session, "ada") or accounts.create_user(
            session, username="ada", email="ada@example.org"
        )
        tool = services.register_tool(
            session, catalog, user, services.Registration(image=f"{registry.host}/{repository}")
        )
        if credentials and registry.pull_credentials:
            username, password = registry.pull_credentials
            services.set_credentials(
                session,
                user,
                tool.id,
                kind="basic",
                username=username,
                sealed_secret=BOX.seal(password),
            )
        if changes:
            services.update_tool(session, CATALOG, user, tool.id, **changes)
        return tool.id


@asynccontextmanager
async def refresher(
    engine: Engine, *, catalog: Catalog = CATALOG, **client: Any
) -> AsyncIterator[Refresher]:
    client.setdefault("guard", HostGuard(allow_private=True))
    if "transport" in client:  # scripted answers instead of the network
        client["fetch"] = fetch_from(client.pop("transport"))
    async with RegistryClient(**client) as registry_client:
        yield Refresher(
            sessions=db.make_sessionmaker(engine),
            catalog=catalog,
            client=registry_client,
            credentials=CredentialResolver(environ={}, box=BOX),
        )


def refresh(
    engine: Engine, tool_id: int, *, catalog: Catalog = CATALOG, **client: Any
) -> RefreshReport:
    async def go() -> RefreshReport:
        async with refresher(engine, catalog=catalog, **client) as r:
            return await r.refresh(tool_id)

    return asyncio.run(go())


def stored(engine: Engine, tool_id: int) -> dict[str, Any]:
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        tool = session.get(Tool, tool_id)
        assert tool is not None
        return {
            "status": tool.refresh_status,
            "message": tool.refresh_message,
            "published": tool.published,
            "default": tool.default_version.name if tool.default_version else None,
            "versions": {
                v.name: {
                    "digest": v.digest,
                    "problem": v.problem,
                    "history": [c.digest for c in v.digest_history],
                    "images": [
                        (i.digest, i.os, i.architecture, i.variant, i.size) for i in v.images
                    ],
                }
                for v in tool.versions
            },
        }


def unique(name: str) -> str:
    return f"team/{name}-{uuid.uuid4().hex[:8]}"


def proxy(
    registry: LocalRegistry, tamper: Callable[[httpx.Request], httpx.Response | None]
) -> httpx.MockTransport:
    """Answers from the real registry, except where `tamper` answers instead."""

    def handler(request: httpx.Request) -> httpx.Response:
        replaced = tamper(request)
        if replaced is not None:
            return replaced
        upstream = httpx.request(
            request.method,
            str(request.url),
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
        )
        return httpx.Response(
            upstream.status_code, headers=upstream.headers, content=upstream.content
        )

    return httpx.MockTransport(handler)


@dataclass
class Host:
    """What `register` needs of a registry."""

    host: str
    pull_credentials: tuple[str, str] | None = None
