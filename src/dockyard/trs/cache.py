"""A response cache for anonymous TRS reads, exact across processes.

Anonymous TRS answers depend only on the published catalog, the request and the host it was
asked under. Every committed change that readers can see bumps one number in the database
(`CatalogState.generation`, kept by a session hook in `dockyard.catalog.models`). Each
cacheable request reads that number first, one primary-key lookup on a connection of the
cache's own, and the cache empties itself when it moved; so an answer is never older than
the request, whichever process made the change. Requests with an `Authorization` header (a
maintainer may see unpublished tools) go to the app untouched. Cookies do not: TRS knows
callers by their token only (a browser's session cookie signs in web pages, never the API),
so a signed-in browser gets the same answers as anyone, from the cache. Answers that set a
cookie are never kept.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import make_url

from dockyard import metrics
from dockyard.settings import libpq_conninfo

log = logging.getLogger("dockyard.trs.cache")
_HITS = metrics.TRS_CACHE.labels("hit")
_MISSES = metrics.TRS_CACHE.labels("miss")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

GENERATION_SQL = "SELECT generation FROM catalog_state WHERE id = 1"
#: Answers bigger than this are not kept (a zip of a large version, a page of 1,000 tools).
MAX_ENTRY_BYTES = 1 << 20


class GenerationSource(Protocol):
    """Reads the catalog generation; None when it cannot (the request then bypasses)."""

    async def read(self) -> int | None: ...

    async def close(self) -> None: ...


class SqliteGeneration:
    """The generation from the embedded database: a local read of a few microseconds."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None

    async def read(self) -> int | None:
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(
                    f"file:{self._path}?mode=ro",
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                )
            row = self._connection.execute(GENERATION_SQL).fetchone()
        except sqlite3.Error as error:
            log.warning("trs cache bypassed", extra={"reason": str(error)})
            await self.close()
            return None
        return int(row[0]) if row else None

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class PostgresGeneration:
    """The generation from PostgreSQL; concurrent requests share one query in flight."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._connection: Any = None
        self._in_flight: asyncio.Future[int | None] | None = None

    async def read(self) -> int | None:
        if self._in_flight is not None:
            return await asyncio.shield(self._in_flight)
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._in_flight = future
        value: int | None = None
        try:
            value = await self._query()
        finally:
            # Waiters always get an answer, even when this request was cancelled midway:
            # None sends them to the app, which is always correct.
            self._in_flight = None
            if not future.done():
                future.set_result(value)
        return value

    async def _query(self) -> int | None:
        import psycopg

        try:
            if self._connection is None or self._connection.closed:
                self._connection = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                )
            cursor = await self._connection.execute(GENERATION_SQL)
            row = await cursor.fetchone()
        except psycopg.Error as error:
            log.warning("trs cache bypassed", extra={"reason": type(error).__name__})
            await self.close()
            return None
        return int(row[0]) if row else None

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


def generation_source(database_url: str) -> GenerationSource:
    """The generation reader for a `postgresql+psycopg` or `sqlite+pysqlite` URL."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return SqliteGeneration(url.database or "")
    return PostgresGeneration(libpq_conninfo(database_url))


@dataclass(frozen=True)
class Entry:
    """A complete 200 answer: its headers and bytes."""

    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: bytes | None


class TrsCache:
    """ASGI middleware that answers repeated anonymous TRS GET and HEAD requests from memory."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        prefixes: tuple[str, ...],
        source: GenerationSource,
        max_bytes: int,
    ) -> None:
        self.app = app
        self.prefixes = tuple(prefix + "/" for prefix in prefixes)
        self.source = source
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple[Any, ...], Entry] = OrderedDict()
        self.size = 0
        self.generation: int | None = None
        self.hits = 0
        self.misses = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if not self._cacheable(scope):
            await self.app(scope, receive, send)
            return
        generation = await self.source.read()
        if generation is None:
            await self.app(scope, receive, send)
            return
        if generation != self.generation:
            self.entries.clear()
            self.size = 0
            self.generation = generation
        headers = dict(scope["headers"])
        key = (
            scope["scheme"],
            headers.get(b"host"),
            scope["raw_path"],
            scope["query_string"],
            b"text/plain" in headers.get(b"accept", b""),
        )
        entry = self.entries.get(key)
        if entry is not None:
            self.hits += 1
            _HITS.inc()
            self.entries.move_to_end(key)
            await self._answer(scope, send, entry, headers.get(b"if-none-match"))
            return
        self.misses += 1
        _MISSES.inc()
        if scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, self._recorder(send, key, generation))

    def _cacheable(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return False
        path: str = scope["path"]
        if not path.startswith(self.prefixes) or _a_use(path):
            return False
        return not any(name == b"authorization" for name, _ in scope["headers"])

    async def _answer(self, scope: Scope, send: Send, entry: Entry, wanted: bytes | None) -> None:
        if entry.etag is not None and wanted is not None:
            tags = {tag.strip() for tag in wanted.split(b",")}
            if entry.etag in tags or b"*" in tags:
                kept = [
                    (n, v)
                    for n, v in entry.headers
                    if n in (b"etag", b"access-control-allow-origin")
                ]
                await send({"type": "http.response.start", "status": 304, "headers": kept})
                await send({"type": "http.response.body", "body": b""})
                return
        await send({"type": "http.response.start", "status": 200, "headers": entry.headers})
        body = b"" if scope["method"] == "HEAD" else entry.body
        await send({"type": "http.response.body", "body": body})

    def _recorder(self, send: Send, key: tuple[Any, ...], generation: int) -> Send:
        started: Message | None = None
        chunks: list[bytes] = []
        size = 0

        async def record(message: Message) -> None:
            nonlocal started, size
            await send(message)
            if message["type"] == "http.response.start":
                started = message if message["status"] == 200 else None
                return
            if started is None or message["type"] != "http.response.body":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > MAX_ENTRY_BYTES:
                started = None
            elif not message.get("more_body", False):
                self._keep(key, generation, started, b"".join(chunks))

        return record

    def _keep(self, key: tuple[Any, ...], generation: int, started: Message, body: bytes) -> None:
        if generation != self.generation or self.max_bytes <= 0:
            return
        headers = [(bytes(n), bytes(v)) for n, v in started.get("headers", [])]
        if any(n == b"cache-control" and b"no-" in v for n, v in headers):
            return  # answers that must be revalidated each time (they count uses)
        if any(n.lower() == b"set-cookie" for n, _ in headers):
            return  # one caller's cookie is nobody else's
        etag = next((value for name, value in headers if name.lower() == b"etag"), None)
        entry = Entry(headers=headers, body=body, etag=etag)
        previous = self.entries.pop(key, None)
        if previous is not None:
            self.size -= len(previous.body)
        self.entries[key] = entry
        self.size += len(body)
        while self.size > self.max_bytes and self.entries:
            _, dropped = self.entries.popitem(last=False)
            self.size -= len(dropped.body)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def closing_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.source.close()
            await send(message)

        await self.app(scope, receive, closing_send)


def _a_use(path: str) -> bool:
    """A version's descriptor or files: uses of the tool, answered `no-cache` and never kept,
    so the cache does not even read the generation for them. (A tool whose id has a
    `descriptor` or `files` part after `/versions/` is only left uncached: still correct.)"""
    _, versions, below = path.partition("/versions/")
    return bool(versions) and any(part in ("descriptor", "files") for part in below.split("/"))
