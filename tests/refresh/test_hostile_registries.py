"""Refresh against hostile registries: a scripted raw-socket server on loopback that breaks
HTTP, floods, drips, bombs, loops and redirects where it must not. Each refresh ends within
its deadline with a clear problem on the tool, bounded memory, and what was stored before
left exactly as it was."""

from __future__ import annotations

import gzip
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine

from dockyard.egress import HostGuard
from tests.support.raw_server import ScriptedServer, Sent, answer
from tests.support.refresh import (
    CONFIG,
    CONFIG_DIGEST,
    MANIFEST,
    MANIFEST_DIGEST,
    Host,
    refresh,
    register,
    stored,
    unique,
)

#: Each request's deadline in these refreshes, and what a whole refresh may take here.
REQUEST_DEADLINE = 2.0
WITHIN = 12.0
#: Memory a hostile refresh may allocate at its peak (the body caps are 4-8 MiB).
PEAK_BYTES = 48 * 1024 * 1024


def well_behaved(request: bytes) -> bytes:
    """A registry with one tag, 1.0, as refresh first finds it."""
    line = request.split(b"\r\n", 1)[0].decode()
    method, target, _ = line.split(" ")
    if target.endswith("/tags/list?n=1000"):
        return answer(b'{"tags": ["1.0"]}', "Content-Type: application/json")
    if "/manifests/" in target:
        headers = (
            f"Docker-Content-Digest: {MANIFEST_DIGEST}",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
        )
        if method == "HEAD":
            return answer(b"", *headers, f"Content-Length: {len(MANIFEST)}")
        return answer(MANIFEST, *headers)
    if target.endswith(CONFIG_DIGEST):
        return answer(CONFIG)
    return answer(b'{"errors": [{"code": "NOT_FOUND"}]}', status="404 Not Found")


def drip() -> Iterator[bytes]:
    yield b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    for _ in range(60):
        time.sleep(1)
        yield b"{"


def interim_flood() -> Iterator[bytes]:
    for _ in range(20_000):
        yield b"HTTP/1.1 100 Continue\r\n\r\n"
    time.sleep(30)  # and never the answer


def endless() -> Iterator[bytes]:
    yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
    piece = b'{"tags": [' + b'"x",' * 16384
    while True:
        yield piece


BOMB = gzip.compress(b" " * (256 * 1024 * 1024), compresslevel=9)

HOSTILE: dict[str, Callable[[str], Sent]] = {
    "signed chunk size": lambda url: (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\n{}\n\r\n0\r\n\r\n"
    ),
    "0x chunk size": lambda url: (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n"
    ),
    "TE and CL": lambda url: (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n"
    ),
    "gzip, chunked": lambda url: (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    ),
    "4-digit status": lambda url: b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}",
    "10,000 headers": lambda url: (
        b"HTTP/1.1 200 OK\r\n" + b"X-Flood: 1\r\n" * 10_000 + b"Content-Length: 2\r\n\r\n{}"
    ),
    "1 MB header line": lambda url: (
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * (1024 * 1024) + b"\r\nContent-Length: 2\r\n\r\n{}"
    ),
    "20,000 interim answers": lambda url: interim_flood(),
    "a byte a second": lambda url: drip(),
    "an endless body": lambda url: endless(),
    "a gzip bomb": lambda url: answer(
        BOMB, "Content-Encoding: gzip", "Content-Type: application/json"
    ),
    "a Link to itself": lambda url: answer(
        b'{"tags": ["1.0", "2.0"]}', f'Link: <{url}>; rel="next"'
    ),
    "a redirect to loopback": lambda url: answer(
        b"", "Location: http://127.0.0.1:1/v2/", status="307 Temporary Redirect"
    ),
    "a redirect to the metadata service": lambda url: answer(
        b"", "Location: http://169.254.169.254/latest/meta-data/", status="307 Moved"
    ),
    "a token realm at loopback": lambda url: answer(
        b"",
        'WWW-Authenticate: Bearer realm="http://127.0.0.1:1/token",service="lab"',
        status="401 Unauthorized",
    ),
    "a token realm at the metadata service": lambda url: answer(
        b"",
        'WWW-Authenticate: Bearer realm="http://169.254.169.254/token",service="lab"',
        status="401 Unauthorized",
    ),
}

SAYS = {
    "a Link to itself": "paging loop",
    "an endless body": "larger than",
    "a gzip bomb": "larger than",
    "a byte a second": "timed out",
    "20,000 interim answers": "timed out",
    "a redirect to loopback": "loopback, private or link-local",
    "a redirect to the metadata service": "loopback, private or link-local",
    "a token realm at loopback": "loopback, private or link-local",
    "a token realm at the metadata service": "loopback, private or link-local",
}


@pytest.mark.parametrize("behaviour", list(HOSTILE))
def test_a_hostile_registry_ends_as_a_problem_and_changes_nothing_stored(
    engine: Engine, behaviour: str
) -> None:
    hostile = threading.Event()

    def script(number: int, request: bytes) -> Sent:
        target = request.split(b" ", 2)[1].decode()
        if hostile.is_set() and "/tags/list" in target:
            return HOSTILE[behaviour](target)
        return well_behaved(request)

    server = ScriptedServer(script)
    try:
        host = f"127.0.0.1:{server.port}"
        # The operator trusts this registry's own address, and nothing else on loopback.
        guard = HostGuard(trusted_hosts=[host])
        tool_id = register(engine, Host(host), unique("hostile"))  # type: ignore[arg-type]
        first = refresh(engine, tool_id, guard=guard, timeout=REQUEST_DEADLINE, retries=0)
        assert first.status == "ok", first.message
        before = stored(engine, tool_id)["versions"]
        assert before["1.0"]["digest"] == MANIFEST_DIGEST

        hostile.set()
        tracemalloc.start()
        started = time.monotonic()
        try:
            report = refresh(engine, tool_id, guard=guard, timeout=REQUEST_DEADLINE, retries=0)
            took = time.monotonic() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        server.close()
    after = stored(engine, tool_id)
    assert report.status == "failed"
    assert after["status"] == "failed"
    assert after["message"] and after["message"].startswith(f"{host}/")
    assert SAYS.get(behaviour, "") in after["message"]
    assert after["versions"] == before, "what was stored is unchanged"
    assert took < WITHIN, f"{behaviour} held the refresh {took:.1f} s"
    assert peak < PEAK_BYTES, f"{behaviour} made the refresh allocate {peak:,} bytes"
