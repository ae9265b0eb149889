"""The registry client's transport on aiohttp: TLS, keep-alive, the guard at connection time,
timeouts, limits, and HTTP/1.1 as registries and what stands before them speak it."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import socket
import zlib
from collections.abc import Callable
from typing import Any

import pytest
import uvloop

from dockyard.egress import HostGuard
from dockyard.errors import RegistryHostRefused, RegistryUnavailable
from dockyard.registries.oci import RegistryClient
from dockyard.registries.repository import Credentials, Repository
from dockyard.registries.transport import (
    AnswerTooLarge,
    MalformedAnswer,
    RegistryTransport,
    Reply,
    TransportError,
    TransportTimeout,
)
from tests.support.network import OPEN_GUARD, free_port
from tests.support.raw_server import HangUpServer, answer, scripted
from tests.support.registry import LocalRegistry, digest_of


def https_repository(registry: LocalRegistry, name: str) -> Repository:
    return Repository(host=registry.host, name=name, base_url=registry.url, credentials=None)


def lab_repository(port: int) -> Repository:
    return Repository(
        host=f"127.0.0.1:{port}",
        name="lab/tool",
        base_url=f"http://127.0.0.1:{port}",
        credentials=Credentials("lab", "s3cret-pass"),
    )


def fetch_all(
    urls: list[str],
    *,
    limit: int = 1 << 20,
    headers: dict[str, str] | None = None,
    timeout: float = 5,
) -> list[Reply]:
    async def run() -> list[Reply]:
        transport = RegistryTransport(guard=OPEN_GUARD, max_connections=4)
        try:
            return [
                await transport.fetch("GET", url, headers or {}, limit=limit, timeout=timeout)
                for url in urls
            ]
        finally:
            await transport.aclose()

    return asyncio.run(run())


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

    with pytest.raises(RegistryUnavailable, match="TLS certificate is not trusted") as caught:
        asyncio.run(read())
    assert caught.value.host == tls_registry.host


def test_bodies_of_several_megabytes_arrive_whole(open_registry: LocalRegistry) -> None:
    data = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32 + 7)
    digest = open_registry.push_blob("big/blob", data)
    assert digest == digest_of(data)
    url = f"{open_registry.url}/v2/big/blob/blobs/{digest}"
    (reply,) = fetch_all([url], limit=len(data), timeout=30)
    assert reply.body == data


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
        with pytest.raises(RegistryUnavailable, match=r"timed out \(no whole answer within 0\.3 s"):
            asyncio.run(read())
    finally:
        server.close()


def test_a_closed_port_is_unreachable_and_no_secret_is_told() -> None:
    port = free_port()

    async def read() -> None:
        async with RegistryClient(guard=OPEN_GUARD, retries=0) as client:
            await client.list_tags(lab_repository(port))

    with pytest.raises(RegistryUnavailable, match=f"cannot connect to 127.0.0.1:{port}") as caught:
        asyncio.run(read())
    assert "s3cret-pass" not in str(caught.value)


def test_a_name_that_reaches_a_loopback_address_when_connecting_is_refused() -> None:
    """The guard is the connector's resolver: what it checks is what is connected to, even
    when its own lookup (for proxied requests) would have said the name is public."""
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
        with pytest.raises(RegistryHostRefused, match="loopback") as caught:
            asyncio.run(read())
    finally:
        server.close()
    assert server.requests == 0, "nothing was sent to the refused address"
    assert "127.0.0.1" not in caught.value.message  # the rule, not what the name resolves to


@pytest.mark.parametrize("address", ["127.0.0.1", "169.254.169.254", "10.1.2.3", "[::1]"])
def test_literal_private_addresses_are_refused_before_connecting(address: str) -> None:
    async def read() -> None:
        transport = RegistryTransport(guard=HostGuard())
        try:
            await transport.fetch("GET", f"http://{address}:9/v2/", {}, limit=10, timeout=2)
        finally:
            await transport.aclose()

    with pytest.raises(RegistryHostRefused):
        asyncio.run(read())


def test_a_full_pool_waits_within_the_deadline_and_never_opens_more() -> None:
    server = HangUpServer(delay=0.5, idle=10)
    url = f"http://127.0.0.1:{server.port}/v2/lab/tool/tags/list"

    async def scenario() -> None:
        transport = RegistryTransport(guard=OPEN_GUARD, max_connections=2)
        try:

            async def one(timeout: float = 5) -> bytes:
                reply = await transport.fetch("GET", url, {}, limit=1000, timeout=timeout)
                return reply.body

            assert len(set(await asyncio.gather(*(one() for _ in range(6))))) == 1
            held = [asyncio.ensure_future(one()) for _ in "ab"]  # both slots, for 0.5 s
            await asyncio.sleep(0.1)
            with pytest.raises(TransportTimeout):
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


# --- HTTP/1.1 byte for byte ---------------------------------------------------------------------


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


def test_repeated_headers_stay_apart() -> None:
    with scripted(
        lambda number, request: answer(
            b"",
            'WWW-Authenticate: Bearer realm="https://a.example/token",service="a"',
            'WWW-Authenticate: Basic realm="b"',
            "Link: <b>",
            "link: <c>",
            status="401 No",
        )
    ) as server:
        (reply,) = fetch_all([server.url + "/v2/"])
    assert reply.status == 401
    assert reply.headers.getall("www-authenticate") == [
        'Bearer realm="https://a.example/token",service="a"',
        'Basic realm="b"',
    ]
    assert reply.headers.getall("Link") == ["<b>", "<c>"]


@pytest.mark.parametrize(
    "sent",
    [
        answer(b"x" * 2000),  # declared too large
        answer(b"7d0\r\n" + b"x" * 2000 + b"\r\n0\r\n\r\n", "Transfer-Encoding: chunked"),
        b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 2000,  # to the end of the connection
        answer(gzip.compress(b"\0" * 1_000_000), "Content-Encoding: gzip"),  # a small bomb
        answer(zlib.compress(b"\0" * 1_000_000), "Content-Encoding: deflate"),
    ],
    ids=["content-length", "chunked", "to the end", "gzip", "deflate"],
)
def test_answers_larger_than_the_limit_are_refused(sent: bytes) -> None:
    with scripted(lambda number, request: sent) as server, pytest.raises(AnswerTooLarge):
        fetch_all([server.url + "/v2/"], limit=1000)


@pytest.mark.parametrize(
    "sent",
    [
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n"
        + b"a" * 16
        + b"\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 0\r\n\r\n",
        answer(b"not gzip", "Content-Encoding: gzip"),
        answer(b"{}", "Content-Encoding: br"),
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 10\r\n\r\nshort",
    ],
    ids=[
        "status line",
        "4-digit status",
        "length",
        "chunk size",
        "0x chunk size",
        "signed chunk size",
        "negative chunk size",
        "underscore chunk size",
        "TE and CL",
        "gzip, chunked",
        "header",
        "gzip",
        "encoding",
        "cut short",
    ],
)
def test_broken_answers_are_errors_that_say_what_is_wrong(sent: bytes) -> None:
    with scripted(lambda number, request: sent) as server:
        with pytest.raises((MalformedAnswer, TransportError)) as caught:
            fetch_all([server.url + "/v2/"])
        # Nothing of the answer's bytes is echoed into a message that reaches users.
        assert "abcd" not in caught.value.message and "Bad Header" not in caught.value.message


def test_a_line_break_in_a_header_is_refused_before_anything_is_sent() -> None:
    with scripted(lambda number, request: answer()) as server:
        with pytest.raises(TransportError, match="line break"):
            fetch_all([server.url + "/v2/"], headers={"Authorization": "Bearer x\r\nX-Evil: 1"})
        assert server.connections == 0


def test_the_request_target_is_percent_encoded_and_the_host_named() -> None:
    with scripted(lambda number, request: answer()) as server:
        fetch_all([server.url + "/v2/a b/tags/list?n=1&last=x y#frag"])
    request_line, *headers = server.requests[0].decode().split("\r\n")
    # yarl writes a space in the query as "+", which registries (Go's net/url) read as one.
    assert request_line == "GET /v2/a%20b/tags/list?n=1&last=x+y HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in headers


def test_a_kept_connection_the_server_dropped_is_replaced_and_the_request_sent_again() -> None:
    # The second request arrives on the kept connection, which the server then closes
    # without answering (it had decided to close just as the request came).
    def script(number: int, request: bytes) -> bytes | None:
        return None if number == 1 else answer(b"%d" % number)

    with scripted(script) as server:
        replies = fetch_all([server.url + "/v2/"] * 2)
    assert [reply.body for reply in replies] == [b"0", b"2"]
    assert server.connections == 2


def test_a_server_that_never_answers_but_hangs_up_is_an_error() -> None:
    with (
        scripted(lambda number, request: None) as server,
        pytest.raises(TransportError, match="closed the connection"),
    ):
        fetch_all([server.url + "/v2/"])


def test_an_internationalized_host_is_sent_as_idna(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve = socket.getaddrinfo

    def lab_dns(host: object, *args: Any, **kwargs: Any) -> Any:
        assert host in ("xn--bcher-kva.example", b"xn--bcher-kva.example"), host
        return resolve("127.0.0.1", *args, **kwargs)

    with scripted(lambda n, r: answer()) as server:
        monkeypatch.setattr(socket, "getaddrinfo", lab_dns)
        fetch_all([f"http://bücher.example:{server.port}/v2/"])
    headers = server.requests[0].split(b"\r\n")[1:]
    assert f"Host: xn--bcher-kva.example:{server.port}".encode() in headers
