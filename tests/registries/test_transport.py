"""The registry client's own transport: TLS, keep-alive, flow control, timeouts, failures."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from dockyard.errors import RegistryHostRefused, RegistryUnavailable
from dockyard.registries.oci import Credentials, HostGuard, RegistryClient, Repository
from dockyard.registries.transport import HIGH_WATER, RegistryTransport
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
            request = httpx.Request("GET", f"{open_registry.url}/v2/big/blob/blobs/{digest}")
            response = await transport.handle_async_request(request)
            await asyncio.sleep(0.2)  # let the socket fill the buffer past its high-water mark
            body = await response.aread()
            await response.aclose()
            return body
        finally:
            await transport.aclose()

    assert asyncio.run(fetch()) == data


class HangUpServer:
    """Answers each request on a connection, then closes connections idle for `idle` seconds."""

    def __init__(
        self, *, answer: bool = True, close: bool = False, delay: float = 0, idle: float = 0.05
    ) -> None:
        self.connections = 0
        self.requests = 0
        self.open = 0
        self.most_open = 0
        self._lock = threading.Lock()
        self.answer = answer
        self.close_each = close
        self.delay = delay
        self.idle = idle
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

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

    def close(self) -> None:
        self._listener.close()


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
    server = HangUpServer(delay=0.05, idle=10)
    url = f"http://127.0.0.1:{server.port}/v2/lab/tool/tags/list"

    async def scenario() -> None:
        transport = RegistryTransport(max_connections=2)
        try:

            async def one() -> bytes:
                response = await transport.handle_async_request(httpx.Request("GET", url))
                body = await response.aread()
                await response.aclose()
                return body

            assert len(set(await asyncio.gather(*(one() for _ in range(10))))) == 1
            held = [await transport.handle_async_request(httpx.Request("GET", url)) for _ in "ab"]
            waiting = httpx.Request("GET", url, extensions={"timeout": {"pool": 0.2}})
            with pytest.raises(httpx.PoolTimeout):
                await transport.handle_async_request(waiting)
            for response in held:  # read to the end, so their connections are reused
                await response.aread()
                await response.aclose()
            freed = await transport.handle_async_request(httpx.Request("GET", url))
            await freed.aread()
            await freed.aclose()
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
