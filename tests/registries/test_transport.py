"""The registry client's own transport: TLS, keep-alive, flow control, timeouts, failures."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import uvloop

from dockyard.errors import RegistryHostRefused, RegistryUnavailable
from dockyard.registries.oci import Credentials, HostGuard, RegistryClient, Repository
from dockyard.registries.transport import HIGH_WATER, AnswerTooLarge, RegistryTransport, Reply
from tests.access.test_mail import self_signed
from tests.registries.local_registry import LocalRegistry, digest_of, free_port, run_registry
from tests.registries.test_oci import OPEN_GUARD


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    directory = tmp_path_factory.mktemp("tls-registry")
    with run_registry("open", directory, tls=self_signed(directory)) as registry:
        yield registry


def https_repository(registry: LocalRegistry, name: str) -> Repository:
    return Repository(host=registry.host, name=name, base_url=registry.url, credentials=None)


def test_https_registries_are_read_with_the_certificate_verified(
    tls_registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = tls_registry.push_image("secure/tool", "1.0", salt="tls")
    assert tls_registry.certificate is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_registry.certificate))  # the lab's own CA

    async def read() -> tuple[list[str], str, int]:
        async with RegistryClient(guard=OPEN_GUARD) as client:
            repository = https_repository(tls_registry, "secure/tool")
            tags = await client.list_tags(repository)
            head, images = await client.platform_images(repository, "1.0")
            again = await client.head_manifest(repository, "1.0")
            assert again.digest == head.digest
            return tags, head.digest, len(images)

    assert asyncio.run(read()) == (["1.0"], digest, 1)


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
def test_registries_are_read_on_uvloop_as_dockyard_serve_runs(
    open_registry: LocalRegistry,
    tls_registry: LocalRegistry,
    monkeypatch: pytest.MonkeyPatch,
    secure: bool,
) -> None:
    """uvicorn runs `dockyard serve` on uvloop when it is installed, refreshes included."""
    registry = tls_registry if secure else open_registry
    digest = registry.push_image("uv/tool", "1.0", salt=f"uvloop{secure}")
    if registry.certificate is not None:
        monkeypatch.setenv("SSL_CERT_FILE", str(registry.certificate))

    async def read() -> tuple[list[str], str, str, int]:
        async with RegistryClient(guard=OPEN_GUARD) as client:
            repository = https_repository(registry, "uv/tool")
            tags = await client.list_tags(repository)
            head, images = await client.platform_images(repository, "1.0")
            again = await client.head_manifest(repository, "1.0")
            return tags, head.digest, again.digest, len(images)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(read()) == (["1.0"], digest, digest, 1)


def test_an_untrusted_certificate_is_refused(
    tls_registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls_registry.push_image("secure/other", "1.0", salt="untrusted")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)

    async def read() -> None:
        async with RegistryClient(guard=OPEN_GUARD, retries=0) as client:
            await client.list_tags(https_repository(tls_registry, "secure/other"))

    with pytest.raises(RegistryUnavailable, match="unreachable") as caught:
        asyncio.run(read())
    assert caught.value.host == tls_registry.host


def test_bodies_larger_than_the_buffer_arrive_whole(open_registry: LocalRegistry) -> None:
    data = hashlib.sha256(b"seed").digest() * (HIGH_WATER * 3 // 32 + 7)
    digest = open_registry.push_blob("big/blob", data)
    assert digest == digest_of(data)

    async def fetch() -> bytes:
        transport = RegistryTransport(max_connections=2)
        try:
            url = f"{open_registry.url}/v2/big/blob/blobs/{digest}"
            reply = await transport.fetch("GET", url, {}, limit=len(data), timeout=10)
            return reply.body
        finally:
            await transport.aclose()

    assert asyncio.run(fetch()) == data


class LoopbackServer:
    """A TCP server on loopback that gives each connection to `_handle` in a thread of its own."""

    def __init__(self) -> None:
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._listener.close()


class HangUpServer(LoopbackServer):
    """Answers each request on a connection, then closes connections idle for `idle` seconds."""

    def __init__(
        self, *, answer: bool = True, close: bool = False, delay: float = 0, idle: float = 0.05
    ) -> None:
        self.requests = 0
        self.open = 0
        self.most_open = 0
        self._lock = threading.Lock()
        self.answer = answer
        self.close_each = close
        self.delay = delay
        self.idle = idle
        super().__init__()

    def _handle(self, conn: socket.socket) -> None:
        with self._lock:
            self.open += 1
            self.most_open = max(self.most_open, self.open)
        try:
            self._answer(conn)
        finally:
            with self._lock:
                self.open -= 1

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(self.idle if self.answer else 5)
            buffer = b""
            while True:
                try:
                    data = conn.recv(65536)
                except (TimeoutError, OSError):
                    return  # idle: hang up, as registries' load balancers do
                if not data:
                    return
                buffer += data
                while b"\r\n\r\n" in buffer:
                    _, buffer = buffer.split(b"\r\n\r\n", 1)
                    self.requests += 1
                    if self.answer:
                        time.sleep(self.delay)
                        body = b'{"name":"lab/tool","tags":["1.0"]}'
                        conn.sendall(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            + (b"Connection: close\r\n" if self.close_each else b"")
                            + b"Content-Length: "
                            + str(len(body)).encode()
                            + b"\r\n\r\n"
                            + body
                        )
                        if self.close_each:
                            return


def lab_repository(port: int) -> Repository:
    return Repository(
        host=f"127.0.0.1:{port}",
        name="lab/tool",
        base_url=f"http://127.0.0.1:{port}",
        credentials=Credentials("lab", "s3cret-pass"),
    )


def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_error() -> None:
    server = HangUpServer()

    async def twice() -> list[list[str]]:
        async with RegistryClient(guard=OPEN_GUARD, retries=0) as client:
            first = await client.list_tags(lab_repository(server.port))
            await asyncio.sleep(0.3)  # the server hangs up meanwhile
            return [first, await client.list_tags(lab_repository(server.port))]

    try:
        assert asyncio.run(twice()) == [["1.0"], ["1.0"]]
    finally:
        server.close()
    assert server.connections == 2


def test_a_registry_that_never_answers_times_out() -> None:
    server = HangUpServer(answer=False)

    async def read() -> None:
        async with RegistryClient(guard=OPEN_GUARD, timeout=0.3, retries=0) as client:
            await client.list_tags(lab_repository(server.port))

    try:
        with pytest.raises(RegistryUnavailable, match="timed out") as caught:
            asyncio.run(read())
    finally:
        server.close()
    assert "s3cret-pass" not in str(caught.value)


def test_a_closed_port_is_unreachable() -> None:
    port = free_port()

    async def read() -> None:
        async with RegistryClient(guard=OPEN_GUARD, retries=0) as client:
            await client.list_tags(lab_repository(port))

    with pytest.raises(RegistryUnavailable, match=r"unreachable \(ConnectError\)"):
        asyncio.run(read())


def test_a_name_that_reaches_a_loopback_address_when_connecting_is_refused() -> None:
    """DNS rebinding: the name looked public when checked, the connection reached loopback."""
    server = HangUpServer()

    async def public(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    async def read() -> None:
        async with RegistryClient(guard=HostGuard(resolve=public), retries=0) as client:
            repository = Repository(
                host=f"localhost:{server.port}",
                name="lab/tool",
                base_url=f"http://localhost:{server.port}",
                credentials=Credentials("lab", "s3cret-pass"),
            )
            await client.list_tags(repository)

    try:
        with pytest.raises(RegistryHostRefused, match="loopback"):
            asyncio.run(read())
    finally:
        server.close()
    assert server.requests == 0, "nothing was sent to the refused address"


def test_the_guard_resolves_a_host_once_a_minute_not_once_a_request() -> None:
    lookups: list[str] = []
    now = [1000.0]

    async def public(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["93.184.216.34"]

    guard = HostGuard(resolve=public, clock=lambda: now[0])
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"tags": ["1"]}))
    repository = Repository(
        host="registry.example.org",
        name="lab/tool",
        base_url="https://registry.example.org",
        credentials=None,
    )

    async def read(times: int) -> None:
        async with RegistryClient(guard=guard, transport=transport) as client:
            for _ in range(times):
                await client.list_tags(repository)

    asyncio.run(read(5))
    assert lookups == ["registry.example.org"]
    now[0] += 61
    asyncio.run(read(2))
    assert lookups == ["registry.example.org"] * 2


class ForwardProxy:
    """A plain HTTP forward proxy on loopback that notes what it forwarded."""

    def __init__(self) -> None:
        self.forwarded: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._forward()

            def do_HEAD(self) -> None:
                self._forward()

            def _forward(self) -> None:
                proxy.forwarded.append(self.path)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                with httpx.Client(trust_env=False, timeout=30) as upstream:
                    answer = upstream.request(self.command, self.path, headers=headers)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("bypassed", [False, True])
def test_the_environments_proxy_is_used_unless_no_proxy_names_the_host(
    open_registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch, bypassed: bool
) -> None:
    digest = open_registry.push_image("proxied/tool", "1.0", salt="proxied")
    proxy = ForwardProxy()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    if bypassed:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    async def read() -> str:
        async with RegistryClient(guard=OPEN_GUARD) as client:
            repository = Repository(
                host=open_registry.host,
                name="proxied/tool",
                base_url=open_registry.url,
                credentials=None,
            )
            head, _ = await client.platform_images(repository, "1.0")
            return head.digest

    try:
        assert asyncio.run(read()) == digest
    finally:
        proxy.close()
    if bypassed:
        assert proxy.forwarded == []
    else:
        assert proxy.forwarded[0] == f"{open_registry.url}/v2/proxied/tool/manifests/1.0"
        assert len(proxy.forwarded) == 2  # the manifest, then its config blob


def test_no_more_connections_than_the_pool_allows_and_a_full_pool_times_out() -> None:
    # No hang-ups here: a server closing an idle connection just as it is reused is a race
    # every keep-alive client can lose, and not what this test is about.
    server = HangUpServer(delay=0.5, idle=10)
    url = f"http://127.0.0.1:{server.port}/v2/lab/tool/tags/list"

    async def scenario() -> None:
        transport = RegistryTransport(max_connections=2)
        try:

            async def one(timeout: float = 5) -> bytes:
                reply = await transport.fetch("GET", url, {}, limit=1000, timeout=timeout)
                return reply.body

            assert len(set(await asyncio.gather(*(one() for _ in range(10))))) == 1
            held = [asyncio.ensure_future(one()) for _ in "ab"]  # both slots, for 0.5 s
            await asyncio.sleep(0.1)
            with pytest.raises(httpx.PoolTimeout):
                await one(timeout=0.2)
            await asyncio.gather(*held)
            assert await one()  # a slot is free again
        finally:
            await transport.aclose()

    try:
        asyncio.run(scenario())
    finally:
        server.close()
    assert server.most_open <= 2


def test_a_server_that_closes_after_each_answer_gets_a_new_connection_each_time() -> None:
    server = HangUpServer(close=True)

    async def thrice() -> list[list[str]]:
        async with RegistryClient(guard=OPEN_GUARD, retries=0) as client:
            return [await client.list_tags(lab_repository(server.port)) for _ in range(3)]

    try:
        assert asyncio.run(thrice()) == [["1.0"]] * 3
    finally:
        server.close()
    assert server.connections == 3


# --- HTTP/1.1 as registries and the proxies before them speak it --------------------------------

Script = Callable[[int, bytes], "bytes | None"]


class ScriptedServer(LoopbackServer):
    """Answers each request with what `script(number, request)` returns, byte for byte.

    `number` counts requests across connections from 0; `None` closes the connection without
    an answer. A connection is closed after an answer that says `Connection: close` or has
    neither a length nor chunks. `after_answer`, if set, is sent on the connection 0.1 s
    after each answer, for as long as the client reads it (`pushed` counts what it took).
    """

    def __init__(self, script: Script, *, after_answer: bytes = b"") -> None:
        self.script = script
        self.after_answer = after_answer
        self.requests: list[bytes] = []
        self.pushed = 0
        #: Connections the client closed.
        self.hung_up = 0
        super().__init__()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        self.hung_up += 1
                        return
                    buffer += data
                request, buffer = buffer.split(b"\r\n\r\n", 1)
                self.requests.append(request)
                answer = self.script(len(self.requests) - 1, request)
                if answer is None:
                    return
                conn.sendall(answer)
                head = answer.split(b"\r\n\r\n", 1)[0].lower()
                if b"connection: close" in head or not (
                    b"content-length:" in head or b"transfer-encoding:" in head
                ):
                    return
                if self.after_answer:
                    self._push(conn)
                    return

    def _push(self, conn: socket.socket) -> None:
        time.sleep(0.1)
        conn.settimeout(0.5)
        junk = memoryview(self.after_answer)
        try:
            while self.pushed < len(junk):
                self.pushed += conn.send(junk[self.pushed : self.pushed + 65536])
        except OSError:
            return  # the client stopped reading: its buffer is full


def answer(body: bytes = b"{}", *headers: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@contextlib.contextmanager
def scripted(script: Script, **kwargs: bytes) -> Iterator[ScriptedServer]:
    server = ScriptedServer(script, **kwargs)
    try:
        yield server
    finally:
        server.close()


def fetch_all(
    urls: list[str], *, limit: int = 1 << 20, headers: dict[str, str] | None = None
) -> list[Reply]:
    async def run() -> list[Reply]:
        transport = RegistryTransport(max_connections=4)
        try:
            return [
                await transport.fetch("GET", url, headers or {}, limit=limit, timeout=5)
                for url in urls
            ]
        finally:
            await transport.aclose()

    return asyncio.run(run())


def test_chunked_answers_are_joined_and_their_connection_kept() -> None:
    chunked = answer(
        b'4;ext=1\r\n{"a"\r\n5\r\n: 1}\n\r\n0\r\nX-Trailer: yes\r\n\r\n',
        "Transfer-Encoding: chunked",
    )
    with scripted(lambda number, request: chunked) as server:
        replies = fetch_all([server.url + "/v2/"] * 2)
    assert [reply.body for reply in replies] == [b'{"a": 1}\n'] * 2
    assert server.connections == 1


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", raw_deflate)],
    ids=["gzip", "deflate", "raw deflate"],
)
def test_compressed_answers_are_decoded(encoding: str, compress: Callable[[bytes], bytes]) -> None:
    data = b'{"tags": ["1.0"]}' * 50
    body = compress(data)
    with scripted(lambda number, request: answer(body, f"Content-Encoding: {encoding}")) as server:
        (reply,) = fetch_all([server.url + "/v2/"])
    assert reply.body == data


def test_an_answer_without_a_length_is_read_to_the_end_of_its_connection() -> None:
    with scripted(lambda number, request: b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 70000) as server:
        replies = fetch_all([server.url + "/v2/"] * 2)
    assert [reply.body for reply in replies] == [b"x" * 70000] * 2
    assert server.connections == 2


def test_interim_answers_are_skipped() -> None:
    with scripted(
        lambda number, request: b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"done")
    ) as server:
        (reply,) = fetch_all([server.url + "/v2/"])
    assert (reply.status, reply.body) == (200, b"done")


def test_headers_come_in_lower_case_with_repeats_joined() -> None:
    with scripted(
        lambda number, request: answer(
            b"", 'WWW-Authenticate: Bearer realm="a"', "Link: <b>", "link: <c>", status="401 No"
        )
    ) as server:
        (reply,) = fetch_all([server.url + "/v2/"])
    assert reply.status == 401
    assert reply.headers["www-authenticate"] == 'Bearer realm="a"'
    assert reply.headers["link"] == "<b>, <c>"


@pytest.mark.parametrize(
    "sent",
    [
        answer(b"x" * 2000),  # declared too large
        answer(b"7d0\r\n" + b"x" * 2000 + b"\r\n0\r\n\r\n", "Transfer-Encoding: chunked"),
        b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 2000,  # to the end of the connection
        answer(gzip.compress(b"\0" * 1_000_000), "Content-Encoding: gzip"),  # a small bomb
    ],
    ids=["content-length", "chunked", "to the end", "gzip"],
)
def test_answers_larger_than_the_limit_are_refused(sent: bytes) -> None:
    with scripted(lambda number, request: sent) as server, pytest.raises(AnswerTooLarge):
        fetch_all([server.url + "/v2/"], limit=1000)


@pytest.mark.parametrize(
    "sent",
    [
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 0\r\n\r\n",
        answer(b"not gzip", "Content-Encoding: gzip"),
        answer(b"{}", "Content-Encoding: br"),
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 10\r\n\r\nshort",
    ],
    ids=["status line", "length", "chunk size", "header", "gzip", "encoding", "cut short"],
)
def test_broken_answers_are_protocol_errors(sent: bytes) -> None:
    def script(number: int, request: bytes) -> bytes | None:
        return sent

    with scripted(script) as server, pytest.raises(httpx.RemoteProtocolError):
        fetch_all([server.url + "/v2/"])


def test_a_line_break_in_a_header_is_refused_before_anything_is_sent() -> None:
    with scripted(lambda number, request: answer()) as server:
        with pytest.raises(httpx.LocalProtocolError):
            fetch_all([server.url + "/v2/"], headers={"Authorization": "Bearer x\r\nX-Evil: 1"})
        assert server.connections == 0


def test_the_request_target_is_percent_encoded_and_the_host_named() -> None:
    with scripted(lambda number, request: answer()) as server:
        fetch_all([server.url + "/v2/a b/tags/list?n=1&last=x y#frag"])
    request_line, host = server.requests[0].decode().split("\r\n")[:2]
    assert request_line == "GET /v2/a%20b/tags/list?n=1&last=x%20y HTTP/1.1"
    assert host == f"Host: 127.0.0.1:{server.port}"


def test_a_kept_connection_the_server_dropped_is_replaced_and_the_request_sent_again() -> None:
    # The second request arrives on the kept connection, which the server then closes
    # without answering (it had decided to close just as the request came).
    def script(number: int, request: bytes) -> bytes | None:
        return None if number == 1 else answer(b"%d" % number)

    with scripted(script) as server:
        replies = fetch_all([server.url + "/v2/"] * 2)
    assert [reply.body for reply in replies] == [b"0", b"2"]
    assert server.connections == 2


def test_a_fresh_connection_dropped_without_an_answer_is_an_error() -> None:
    with scripted(lambda number, request: None) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            fetch_all([server.url + "/v2/"])
        assert server.connections == 1  # not sent again: the connection was new


def test_an_idle_connection_stops_reading_what_the_server_pushes_and_is_not_reused() -> None:
    junk = b"j" * (64 * 1024 * 1024)
    with scripted(lambda number, request: answer(b"first"), after_answer=junk) as server:

        async def run() -> list[bytes]:
            transport = RegistryTransport(max_connections=4)
            try:
                first = await transport.fetch("GET", server.url, {}, limit=100, timeout=5)
                await asyncio.sleep(1.0)  # the server pushes junk on the idle connection
                second = await transport.fetch("GET", server.url, {}, limit=100, timeout=5)
                return [first.body, second.body]
            finally:
                await transport.aclose()

        assert asyncio.run(run()) == [b"first", b"first"]
    assert server.connections == 2
    # Reading paused at the high-water mark: only what the kernel's buffers hold more went.
    assert HIGH_WATER <= server.pushed < len(junk) // 4


def test_idle_connections_past_their_keep_alive_are_closed_whatever_the_next_origin() -> None:
    with scripted(lambda n, r: answer()) as once, scripted(lambda n, r: answer()) as other:

        async def run() -> None:
            transport = RegistryTransport(max_connections=4, keepalive_expiry=0.2)
            try:
                await transport.fetch("GET", once.url, {}, limit=100, timeout=5)
                await asyncio.sleep(0.4)
                await transport.fetch("GET", other.url, {}, limit=100, timeout=5)
                for _ in range(50):  # the closing reaches the server thread
                    if once.hung_up:
                        break
                    await asyncio.sleep(0.02)
                assert once.hung_up == 1, "the expired connection to the first origin is closed"
                assert other.hung_up == 0
            finally:
                await transport.aclose()

        asyncio.run(run())


def test_an_internationalized_host_is_sent_as_idna(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve = socket.getaddrinfo

    def lab_dns(host: object, *args: Any, **kwargs: Any) -> Any:
        assert host in ("xn--bcher-kva.example", b"xn--bcher-kva.example"), host
        return resolve("127.0.0.1", *args, **kwargs)

    with scripted(lambda n, r: answer()) as server:
        monkeypatch.setattr(socket, "getaddrinfo", lab_dns)
        fetch_all([f"http://bücher.example:{server.port}/v2/"])
    assert (
        server.requests[0].split(b"\r\n")[1]
        == f"Host: xn--bcher-kva.example:{server.port}".encode()
    )
