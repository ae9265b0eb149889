"""The registry client's HTTP: GET and HEAD over HTTP/1.1 of its own, on asyncio sockets.

A refresh is thousands of small GETs and HEADs to a few hosts, each answered with a few
kilobytes of JSON. Through httpx, every one of them built httpx's Request and Response,
went through httpcore's connection and pool and h11's state machine, and read its body as a
stream: together more CPU per request than the registry itself spent answering it on the
benchmark's machine (docs/benchmarks.md). The client needs much less: send a request
without a body, read one answer whole (capped and decoded), keep the connection if the
server allows. `RegistryTransport.fetch` does exactly that, and nothing more:

- each connection is an `asyncio.Protocol` that buffers what arrives (reading pauses past
  `HIGH_WATER` until the buffer is read), so asking whether an idle connection was closed
  by the server is a look at its buffer;
- the pool is a list of idle connections per origin behind `max_connections` slots, with
  keep-alive expiry, and a request on a reused connection that the server had closed is
  sent again once on a new connection (only GET and HEAD, which are safe to repeat);
- answers are framed by `Content-Length`, chunked `Transfer-Encoding` or the connection's
  end, refused past the caller's limit (also after gzip or deflate decoding, so a small
  compressed answer cannot expand without bound), and their headers come as a dict;
- TLS is verified as httpx does (its default context, `SSL_CERT_FILE`), and errors are
  httpx's own exception types, so callers handle both paths alike.

`fetch_with` gives the same `Reply` through any httpx transport: the environment's
proxies go through httpx's proxy transport that way, and tests use `httpx.MockTransport`.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import urllib.request
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, cast
from urllib.parse import quote, urlsplit

import httpx

#: Seconds a closing connection may take (a TLS goodbye) before its socket is cut.
CLOSE_WAIT = 1.0
#: Bytes buffered from a connection before reading from its socket pauses.
HIGH_WATER = 256 * 1024
#: The most an answer's status line and headers may take.
MAX_HEAD_BYTES = 64 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Characters left as they are in a request's path and query; others are percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=%~-._"
_QUERY_SAFE = _PATH_SAFE + "?"
_FORBIDDEN_IN_HEADER = re.compile(r"[\r\n\0]")
_SAFE_METHODS = frozenset({"GET", "HEAD"})

#: Called with (host, port, address reached) for every new connection; raising refuses it.
ConnectCheck = Callable[[str, int, str], None]


@dataclass(slots=True)
class Reply:
    """An answer read whole: header names in lower case, repeated headers joined by ", "."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Fetch(Protocol):
    """`RegistryTransport.fetch`'s signature, which `fetch_with` also offers."""

    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], *, limit: int, timeout: float
    ) -> Awaitable[Reply]: ...


class AnswerTooLarge(Exception):
    """The answer (as declared, as sent, or once decoded) is larger than the caller reads."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        super().__init__(limit, declared)
        self.limit = limit
        self.declared = declared


class _Stale(Exception):
    """A reused connection turned out closed before any byte of the answer arrived."""


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection's bytes, as they arrive."""

    def __init__(self, on_lost: Callable[[_Connection], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        #: The server's end came (EOF), or the connection is gone.
        self.closed = False
        self.error: BaseException | None = None
        #: Set once the socket is closed (a TLS connection closes after its goodbye).
        self.lost = asyncio.Event()
        #: When the connection was last put back idle (the loop's clock).
        self.idle_since = 0.0
        self._on_lost = on_lost
        self._waiter: asyncio.Future[None] | None = None
        self._draining: asyncio.Future[None] | None = None
        self._writing_paused = False
        self._reading_paused = False

    # --- asyncio's side ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > HIGH_WATER and not self._reading_paused:
            assert self.transport is not None
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self.lost.set()
        self._on_lost(self)
        self._wake()
        if self._draining is not None and not self._draining.done():
            self._draining.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._draining is not None and not self._draining.done():
            self._draining.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # --- the reader's side ------------------------------------------------------------------

    def usable(self) -> bool:
        """True for an idle connection the server has neither closed nor written to."""
        return not self.closed and not self.buffer

    async def send(self, data: bytes, timeout: float) -> None:
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            raise _Stale
        transport.write(data)
        if self._writing_paused and not self.closed:
            self._draining = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._draining
            except TimeoutError:
                raise httpx.WriteTimeout("timed out writing to the registry") from None
            finally:
                self._draining = None

    async def wait(self, timeout: float) -> None:
        """Until more bytes arrive or the connection ends; `ReadTimeout` after `timeout`."""
        if self.closed:
            if self.error is not None:
                raise httpx.ReadError(str(self.error) or type(self.error).__name__)
            raise httpx.RemoteProtocolError("the server closed the connection mid-answer")
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _time_out, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def take(self, size: int) -> bytes:
        """Up to `size` buffered bytes, removed from the buffer."""
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        if self._reading_paused and len(self.buffer) <= HIGH_WATER // 4 and not self.closed:
            self._reading_paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        return data

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout("timed out reading from the registry"))


# --- reading an answer ------------------------------------------------------------------------


async def _read_until(
    connection: _Connection, delimiter: bytes, timeout: float, *, reused: bool = False
) -> bytes:
    """The bytes before `delimiter`, both taken from the buffer; at most `MAX_HEAD_BYTES`.

    `reused`: the connection was kept from an earlier answer, so one the server closed
    before sending a byte is `_Stale` (the request can go again on a new one).
    """
    while True:
        end = connection.buffer.find(delimiter)
        if end >= 0:
            return connection.take(end + len(delimiter))[:end]
        if len(connection.buffer) > MAX_HEAD_BYTES:
            raise httpx.RemoteProtocolError("the answer's headers or a chunk's size are too long")
        if connection.closed and reused and not connection.buffer:
            raise _Stale
        await connection.wait(timeout)


def _parse_head(head: bytes) -> tuple[int, bool, dict[str, str]]:
    """The status, whether the server speaks HTTP/1.1, and the headers."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        text = head.decode("utf-8", "replace")
    lines = text.split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise httpx.RemoteProtocolError("the server's answer is not HTTP/1.x")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or " " in name or "\t" in name:
            raise httpx.RemoteProtocolError("the server's answer has a malformed header line")
        name = name.lower()
        value = value.strip(" \t")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return int(code), version == "HTTP/1.1", headers


async def _read_exact(connection: _Connection, size: int, timeout: float) -> bytes:
    buffer = connection.buffer
    if len(buffer) >= size:
        return connection.take(size)
    parts: list[bytes] = []
    while size:
        if buffer:
            part = connection.take(size)
            parts.append(part)
            size -= len(part)
        else:
            await connection.wait(timeout)
    return b"".join(parts)


async def _read_chunked(connection: _Connection, limit: int, timeout: float) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = await _read_until(connection, b"\r\n", timeout)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise httpx.RemoteProtocolError("a malformed chunk size") from None
        if size == 0:
            while await _read_until(connection, b"\r\n", timeout):  # trailers, to an empty line
                pass
            return b"".join(parts)
        total += size
        if total > limit:
            raise AnswerTooLarge(limit)
        parts.append(await _read_exact(connection, size, timeout))
        if await _read_exact(connection, 2, timeout) != b"\r\n":
            raise httpx.RemoteProtocolError("a chunk does not end where its size says")


async def _read_to_end(connection: _Connection, limit: int, timeout: float) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        if connection.buffer:
            part = connection.take(len(connection.buffer))
            total += len(part)
            if total > limit:
                raise AnswerTooLarge(limit)
            parts.append(part)
        elif connection.closed:
            return b"".join(parts)
        else:
            await connection.wait(timeout)


def _content_length(value: str) -> int:
    values = {part.strip() for part in value.split(",")}
    if len(values) != 1 or not (text := values.pop()).isdigit():
        raise httpx.RemoteProtocolError(f"the answer has an invalid Content-Length {value!r}")
    return int(text)


def _decoded(body: bytes, encodings: str, limit: int) -> bytes:
    """`body` with its content codings (gzip, deflate) undone, at most `limit` bytes."""
    for coding in reversed([part.strip().lower() for part in encodings.split(",")]):
        if coding in ("", "identity"):
            continue
        if coding in ("gzip", "x-gzip"):
            attempts = [zlib.MAX_WBITS | 16]
        elif coding == "deflate":
            attempts = [zlib.MAX_WBITS, -zlib.MAX_WBITS]  # zlib-wrapped, or raw as some send
        else:
            raise httpx.RemoteProtocolError(f"the answer uses unsupported encoding {coding!r}")
        for wbits in attempts:
            decompressor = zlib.decompressobj(wbits)
            try:
                decoded = decompressor.decompress(body, limit + 1)
            except zlib.error:
                if wbits == attempts[-1]:
                    raise httpx.RemoteProtocolError(
                        f"the answer's {coding} content cannot be decoded"
                    ) from None
                continue
            if len(decoded) > limit or decompressor.unconsumed_tail:
                raise AnswerTooLarge(limit)
            body = decoded
            break
    return body


async def _read_answer(
    connection: _Connection, method: str, limit: int, timeout: float, reused: bool
) -> tuple[Reply, bool]:
    """The answer and whether the connection can carry another request."""
    while True:
        head = await _read_until(connection, b"\r\n\r\n", timeout, reused=reused)
        status, http11, headers = _parse_head(head)
        if status == 101:
            raise httpx.RemoteProtocolError("the server switched protocols")
        if not 100 <= status < 200:
            break
        reused = False  # an interim answer (100 Continue, 103 Early Hints): the real one follows
    reusable = http11 and "close" not in headers.get("connection", "").lower()
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif "transfer-encoding" in headers:
        if headers["transfer-encoding"].lower().rsplit(",", 1)[-1].strip() != "chunked":
            raise httpx.RemoteProtocolError("the answer uses an unsupported transfer encoding")
        body = await _read_chunked(connection, limit, timeout)
    elif "content-length" in headers:
        length = _content_length(headers["content-length"])
        if length > limit:
            raise AnswerTooLarge(limit, length)
        body = await _read_exact(connection, length, timeout)
    else:
        body = await _read_to_end(connection, limit, timeout)
        reusable = False
    encodings = headers.get("content-encoding")
    if encodings and body:
        body = _decoded(body, encodings, limit)
    return Reply(status, headers, body), reusable


# --- the transport ----------------------------------------------------------------------------


_Origin = tuple[str, str, int]


class RegistryTransport:
    """GET and HEAD to registries, at most `max_connections` at once; TLS verified as httpx
    does.

    `on_connect` sees the address each new connection reached before any byte is sent.
    Requests for which the environment names a proxy (`HTTPS_PROXY`, `HTTP_PROXY`,
    `ALL_PROXY`, minus `NO_PROXY`), as httpx's own client honours them, go through httpx's
    proxy transport instead; their connections lead to the proxy, so `on_connect` does not
    see them.
    """

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float = 5.0,
        verify: ssl.SSLContext | bool = True,
        on_connect: ConnectCheck | None = None,
    ) -> None:
        context = (
            verify
            if isinstance(verify, ssl.SSLContext)
            else httpx.create_ssl_context(verify=verify)
        )
        context.set_alpn_protocols(["http/1.1"])
        self._context = context
        self._max_connections = max_connections
        self._keepalive = keepalive_expiry
        self._on_connect = on_connect
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[_Origin, list[_Connection]] = {}
        #: When idle connections to every origin were last looked at (the loop's clock).
        self._swept = 0.0
        #: Every connection whose socket is not closed yet, idle, busy or closing.
        self._open: set[_Connection] = set()
        self._proxies = urllib.request.getproxies_environment()
        self._through_proxy: dict[str, httpx.AsyncHTTPTransport] = {}

    async def fetch(
        self, method: str, url: str, headers: Mapping[str, str], *, limit: int, timeout: float
    ) -> Reply:
        """Send a request without a body and read its answer whole, at most `limit` bytes.

        Raises httpx's `TransportError`s (timeouts, unreachable hosts, protocol errors),
        `AnswerTooLarge`, and whatever `on_connect` raises.
        """
        parts = urlsplit(url)
        scheme = parts.scheme
        if scheme not in DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"registries are reached over HTTP(S), not {scheme!r}")
        host = parts.hostname
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError:
            raise httpx.LocalProtocolError("the address has an invalid port") from None
        if not host:
            raise httpx.LocalProtocolError("the address names no host")
        proxy = self._proxy_for(scheme, host)
        if proxy is not None:
            return await fetch_with(
                self._proxy_transport(proxy), method, url, headers, limit=limit, timeout=timeout
            )
        authority = parts.netloc.rpartition("@")[2]
        if not authority.isascii():  # an internationalized name, sent as IDNA
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise httpx.LocalProtocolError("the address has an invalid host name") from None
            authority = f"{host}:{parts.port}" if parts.port else host
        request = _request_bytes(method, parts.path, parts.query, authority, headers)
        if self._slots.locked():
            try:
                async with asyncio.timeout(timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("every connection to registries is busy") from None
        else:
            await self._slots.acquire()
        try:
            origin = (scheme, host, port)
            fresh = False
            while True:
                connection = None if fresh else self._idle_connection(origin)
                reused = connection is not None
                if connection is None:
                    connection = await self._connect(scheme, host, port, timeout)
                try:
                    await connection.send(request, timeout)
                    reply, reusable = await _read_answer(
                        connection, method, limit, timeout, reused and method in _SAFE_METHODS
                    )
                except _Stale:
                    connection.close()
                    if reused:
                        fresh = True  # sent again, once, on a new connection
                        continue
                    raise httpx.RemoteProtocolError("the server closed the connection") from None
                except BaseException:
                    connection.close()
                    raise
                if reusable and connection.usable():
                    connection.idle_since = asyncio.get_running_loop().time()
                    self._idle.setdefault(origin, []).append(connection)
                else:
                    connection.close()
                return reply
        finally:
            self._slots.release()

    def _idle_connection(self, origin: _Origin) -> _Connection | None:
        now = asyncio.get_running_loop().time()
        if now - self._swept >= self._keepalive:
            self._sweep(now)
        idle = self._idle.get(origin, [])
        while idle:
            connection = idle.pop()
            if self._keepable(connection, now):
                return connection
            connection.close()
        return None

    def _keepable(self, connection: _Connection, now: float) -> bool:
        return connection.usable() and now - connection.idle_since < self._keepalive

    def _sweep(self, now: float) -> None:
        """Close idle connections past their keep-alive, to every origin: a registry asked
        once must not keep sockets open for as long as the process runs."""
        self._swept = now
        for origin, idle in list(self._idle.items()):
            kept = []
            for connection in idle:
                if self._keepable(connection, now):
                    kept.append(connection)
                else:
                    connection.close()
            if kept:
                self._idle[origin] = kept
            else:
                del self._idle[origin]

    async def _connect(self, scheme: str, host: str, port: int, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        connection = _Connection(self._open.discard)
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(lambda: connection, host, port)
                assert connection.transport is not None
                self._open.add(connection)
                if self._on_connect is not None:
                    self._on_connect(host, port, connection.transport.get_extra_info("peername")[0])
                if scheme == "https":
                    secured = await loop.start_tls(
                        connection.transport, connection, self._context, server_hostname=host
                    )
                    connection.transport = cast(asyncio.Transport, secured)
        except BaseException as error:
            # A connection that failed is closed and not waited for (a failed TLS handshake
            # hands the socket to asyncio's TLS layer, which closes it).
            connection.close()
            self._open.discard(connection)
            if isinstance(error, TimeoutError):
                raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
            if isinstance(error, OSError):  # ssl.SSLError among them: an untrusted certificate
                raise httpx.ConnectError(str(error) or type(error).__name__) from error
            raise
        return connection

    def _proxy_for(self, scheme: str, host: str) -> str | None:
        if not self._proxies:
            return None
        proxy = self._proxies.get(scheme) or self._proxies.get("all")
        if not proxy or urllib.request.proxy_bypass(host):
            return None
        return proxy

    def _proxy_transport(self, proxy: str) -> httpx.AsyncHTTPTransport:
        if proxy not in self._through_proxy:
            self._through_proxy[proxy] = httpx.AsyncHTTPTransport(
                verify=self._context,
                proxy=proxy,
                limits=httpx.Limits(
                    max_connections=self._max_connections,
                    max_keepalive_connections=self._max_connections,
                ),
            )
        return self._through_proxy[proxy]

    async def aclose(self) -> None:
        """Close every connection, waiting up to `CLOSE_WAIT` for TLS goodbyes."""
        self._idle.clear()
        closing = list(self._open)
        for connection in closing:
            connection.close()
        if closing:
            waits = {asyncio.ensure_future(c.lost.wait()): c for c in closing}
            _, pending = await asyncio.wait(waits, timeout=CLOSE_WAIT)
            for task in pending:
                connection = waits[task]
                if connection.transport is not None:
                    connection.transport.abort()  # a TLS peer that never answered the goodbye
            if pending:
                _, stuck = await asyncio.wait(pending, timeout=CLOSE_WAIT)
                for task in stuck:
                    task.cancel()
        for transport in self._through_proxy.values():
            await transport.aclose()


def _request_bytes(
    method: str, path: str, query: str, authority: str, headers: Mapping[str, str]
) -> bytes:
    target = quote(path or "/", safe=_PATH_SAFE)
    if query:
        target += "?" + quote(query, safe=_QUERY_SAFE)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {authority}"]
    for name, value in headers.items():
        if _FORBIDDEN_IN_HEADER.search(name) or _FORBIDDEN_IN_HEADER.search(value):
            raise httpx.LocalProtocolError(f"the {name!r} header holds a line break")
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode()


async def fetch_with(
    transport: httpx.AsyncBaseTransport,
    method: str,
    url: str,
    headers: Mapping[str, str],
    *,
    limit: int,
    timeout: float,
) -> Reply:
    """`RegistryTransport.fetch` through any httpx transport (a proxy's, a test's mock)."""
    request = httpx.Request(
        method, url, headers=headers, extensions={"timeout": httpx.Timeout(timeout).as_dict()}
    )
    response = await transport.handle_async_request(request)
    try:
        if method == "HEAD":
            await response.aread()
            return Reply(response.status_code, dict(response.headers.items()), b"")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise AnswerTooLarge(limit, int(declared))
        chunks: list[bytes] = []
        total = 0
        try:
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > limit:
                    raise AnswerTooLarge(limit)
                chunks.append(chunk)
        except httpx.DecodingError as error:
            raise httpx.RemoteProtocolError(str(error)) from None
        return Reply(response.status_code, dict(response.headers.items()), b"".join(chunks))
    finally:
        await response.aclose()
