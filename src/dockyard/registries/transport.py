"""The registry client's HTTP transport: httpcore's HTTP/1.1 connections on asyncio sockets.

httpx's default transport reaches its sockets through anyio, and httpcore's pool asks every
pooled connection, on every request, whether its socket has become readable (the server
hung up). Through anyio that question costs a `poll` and a `getpeername` system call per
connection per request, a cost that grows with the pool and dominated a refresh's profile;
the pool's own anyio locks and cancel scopes came next. Here each connection is an
`asyncio.Protocol` that already knows whether bytes or an EOF arrived, so the same question
is a look at its buffer, and the pool is a list of idle connections per origin behind a
fixed number of slots. HTTP itself (h11, keep-alive expiry, `Connection: close`) stays in
httpcore's `AsyncHTTP11Connection`, TLS settings are httpx's, and httpcore's errors are
mapped to httpx's as httpx's own transport maps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, cast

import httpcore
import httpx

#: Seconds a closing connection may take (a TLS goodbye) before its socket is cut.
CLOSE_WAIT = 1.0
#: Bytes buffered from a connection before reading from its socket pauses.
HIGH_WATER = 256 * 1024

_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except (
        httpcore.TimeoutException,
        httpcore.NetworkError,
        httpcore.ProtocolError,
        httpcore.UnsupportedProtocol,
    ) as error:
        raise _mapped(error) from error


def _mapped(error: Exception) -> httpx.TransportError:
    for source, target in _ERRORS:
        if isinstance(error, source):
            return target(str(error))
    return httpx.TransportError(str(error))


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection's bytes, as they arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self.error: BaseException | None = None
        self._reading: asyncio.Future[None] | None = None
        self._draining: asyncio.Future[None] | None = None
        self._writing_paused = False
        self.reading_paused = False
        #: Set once the socket is closed (a TLS connection closes after its goodbye).
        self.lost = asyncio.Event()

    # --- asyncio's side ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self._wake_reader()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake_reader()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self.lost.set()
        self._wake_reader()
        if self._draining is not None and not self._draining.done():
            self._draining.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._draining is not None and not self._draining.done():
            self._draining.set_result(None)

    def _wake_reader(self) -> None:
        if self._reading is not None and not self._reading.done():
            self._reading.set_result(None)

    # --- httpcore's side --------------------------------------------------------------------

    async def wait_readable(self) -> None:
        self._reading = asyncio.get_running_loop().create_future()
        try:
            await self._reading
        finally:
            self._reading = None

    async def drained(self) -> None:
        if self._writing_paused and not self.closed:
            self._draining = asyncio.get_running_loop().create_future()
            try:
                await self._draining
            finally:
                self._draining = None


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, connection: _Connection) -> None:
        self._connection = connection

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        connection = self._connection
        if not connection.buffer and not connection.closed:
            try:
                async with asyncio.timeout(timeout):
                    await connection.wait_readable()
            except TimeoutError:
                raise httpcore.ReadTimeout("timed out reading from the registry") from None
        if not connection.buffer and connection.error is not None:
            raise httpcore.ReadError(str(connection.error) or type(connection.error).__name__)
        data = bytes(connection.buffer[:max_bytes])
        del connection.buffer[:max_bytes]
        if connection.reading_paused and len(connection.buffer) <= HIGH_WATER // 4:
            connection.reading_paused = False
            if connection.transport is not None and not connection.closed:
                connection.transport.resume_reading()
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        connection = self._connection
        if connection.closed or connection.transport is None or connection.transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        connection.transport.write(buffer)
        try:
            async with asyncio.timeout(timeout):
                await connection.drained()
        except TimeoutError:
            raise httpcore.WriteTimeout("timed out writing to the registry") from None

    async def aclose(self) -> None:
        connection = self._connection
        if connection.transport is None or connection.lost.is_set():
            return
        connection.transport.close()
        try:
            async with asyncio.timeout(CLOSE_WAIT):
                await connection.lost.wait()
        except TimeoutError:
            connection.transport.abort()  # a TLS peer that never answers the goodbye

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        connection = self._connection
        assert connection.transport is not None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                secured = await loop.start_tls(
                    connection.transport,
                    connection,
                    ssl_context,
                    server_hostname=server_hostname,
                )
        except TimeoutError:
            connection.transport.close()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except (OSError, ssl.SSLError) as error:
            connection.transport.close()
            raise httpcore.ConnectError(str(error)) from error
        connection.transport = cast(asyncio.Transport, secured)
        return self

    def get_extra_info(self, info: str) -> Any:
        connection = self._connection
        if info == "is_readable":
            # An idle connection with bytes or an EOF waiting was closed or broken by the server.
            return bool(connection.buffer) or connection.closed
        transport = connection.transport
        if transport is None:
            return None
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        return None


#: Called with (host, port, address reached) for every new connection; raising refuses it.
ConnectCheck = Callable[[str, int, str], None]


class _Backend(httpcore.AsyncNetworkBackend):
    def __init__(self, on_connect: ConnectCheck | None) -> None:
        self._on_connect = on_connect

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        connection = _Connection()
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(
                    lambda: connection,
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as error:
            raise httpcore.ConnectError(str(error) or type(error).__name__) from error
        assert connection.transport is not None
        if self._on_connect is not None:
            try:
                self._on_connect(host, port, connection.transport.get_extra_info("peername")[0])
            except BaseException:
                connection.transport.close()
                raise
        sock = connection.transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(connection)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("registries are reached over TCP")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


_Key = tuple[bytes, bytes, int]


class _Pool:
    """Keep-alive HTTP/1.1 connections per origin, each reused once its answer was read.

    httpcore's own pool re-examines every connection under anyio locks and cancel scopes on
    each request and each answer's end (a fifth of a refresh's CPU). Here a request takes one
    of `size` slots until its answer is closed, so there are never more than `size`
    connections, and the pool is a list of idle connections per origin. The connections
    themselves are httpcore's (h11, keep-alive expiry, a server's `Connection: close`).
    """

    def __init__(
        self,
        backend: httpcore.AsyncNetworkBackend,
        context: ssl.SSLContext,
        keepalive: float,
        size: int,
    ) -> None:
        self._backend = backend
        self._context = context
        self._keepalive = keepalive
        self._slots = asyncio.Semaphore(size)
        self._idle: dict[_Key, list[httpcore.AsyncHTTP11Connection]] = {}
        self._open: set[httpcore.AsyncHTTP11Connection] = set()

    async def handle(self, request: httpcore.Request) -> httpx.Response:
        origin = request.url.origin
        key = (origin.scheme, origin.host, origin.port)
        try:
            async with asyncio.timeout(request.extensions.get("timeout", {}).get("pool")):
                await self._slots.acquire()
        except TimeoutError:
            raise httpcore.PoolTimeout("every connection to registries is busy") from None
        try:
            connection = await self._idle_connection(key) or await self._connect(origin, request)
        except BaseException:
            self._slots.release()
            raise
        try:
            answer = await connection.handle_async_request(request)
        except BaseException:
            await self._drop(connection)
            self._slots.release()
            raise
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream, connection, self, key),
            extensions=answer.extensions,
        )

    async def _idle_connection(self, key: _Key) -> httpcore.AsyncHTTP11Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.is_idle() and not connection.has_expired():
                return connection
            await self._drop(connection)
        return None

    async def _connect(
        self, origin: httpcore.Origin, request: httpcore.Request
    ) -> httpcore.AsyncHTTP11Connection:
        timeout = request.extensions.get("timeout", {}).get("connect")
        host = origin.host.decode("ascii")
        stream = await self._backend.connect_tcp(host, origin.port, timeout=timeout)
        if origin.scheme == b"https":
            try:
                stream = await stream.start_tls(
                    self._context, server_hostname=host, timeout=timeout
                )
            except BaseException:
                await stream.aclose()
                raise
        connection = httpcore.AsyncHTTP11Connection(
            origin=origin, stream=stream, keepalive_expiry=self._keepalive
        )
        self._open.add(connection)
        return connection

    async def release(self, key: _Key, connection: httpcore.AsyncHTTP11Connection) -> None:
        try:
            if connection.is_idle():
                self._idle.setdefault(key, []).append(connection)
            else:
                await self._drop(connection)
        finally:
            self._slots.release()

    async def _drop(self, connection: httpcore.AsyncHTTP11Connection) -> None:
        self._open.discard(connection)
        await connection.aclose()

    async def aclose(self) -> None:
        self._idle.clear()
        for connection in list(self._open):
            await self._drop(connection)


class _Body(httpx.AsyncByteStream):
    """An answer's body, with httpx's errors, that gives its connection back once closed."""

    def __init__(
        self, stream: Any, connection: httpcore.AsyncHTTP11Connection, pool: _Pool, key: _Key
    ) -> None:
        self._stream = stream
        self._connection = connection
        self._pool = pool
        self._key = key
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        if self._released:
            return
        self._released = True
        try:
            with _httpx_errors():
                await self._stream.aclose()
        finally:
            await self._pool.release(self._key, self._connection)


class RegistryTransport(httpx.AsyncBaseTransport):
    """`_Pool` over `_Backend`, at most `max_connections` at once; TLS verified as httpx does.

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
        self._context = context
        self._max_connections = max_connections
        self._proxies = urllib.request.getproxies_environment()
        self._through_proxy: dict[str, httpx.AsyncHTTPTransport] = {}
        context.set_alpn_protocols(["http/1.1"])
        self._pool = _Pool(_Backend(on_connect), context, keepalive_expiry, max_connections)

    def _proxy_for(self, url: httpx.URL) -> str | None:
        if not self._proxies:
            return None
        proxy = self._proxies.get(url.scheme) or self._proxies.get("all")
        if not proxy or urllib.request.proxy_bypass(url.host):
            return None
        return proxy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        proxy = self._proxy_for(request.url)
        if proxy is not None:
            if proxy not in self._through_proxy:
                self._through_proxy[proxy] = httpx.AsyncHTTPTransport(
                    verify=self._context,
                    proxy=proxy,
                    limits=httpx.Limits(
                        max_connections=self._max_connections,
                        max_keepalive_connections=self._max_connections,
                    ),
                )
            return await self._through_proxy[proxy].handle_async_request(request)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            return await self._pool.handle(core)

    async def aclose(self) -> None:
        await self._pool.aclose()
        for transport in self._through_proxy.values():
            await transport.aclose()
