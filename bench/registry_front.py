"""A local registry made to look remote: round trips of `--rtt` ms, and a rate limit.

Run in a process of its own by `bench/refresh.py` (so its CPU is not counted as dockyard's),
in one of two modes:

- `delay RTT OUTER:TARGET...`: TCP proxies (asyncio) that hold every read for RTT/2 before
  passing it on, in each direction, and a new connection for one RTT before its first byte
  (the TCP handshake): a request and its answer cost one RTT, a TLS handshake what it costs.
  They pass TLS through, so the registry's own TLS is what the client talks to.
- `front OUTER INNER REGISTRY TOKEN RTT RATE_LIMIT CERT`: a delay proxy on OUTER before an
  HTTPS server on INNER (aiohttp, the bench's certificate) that counts every request by
  kind, answers 429 with `Retry-After: 1` past RATE_LIMIT requests in any second, and
  forwards the rest: `/token` to the token server, everything else to the registry.
  `GET /_bench/stats` and `POST /_bench/reset` on INNER read and clear the counts.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import sys
import time
from pathlib import Path

import aiohttp
import uvloop
from aiohttp import web
from multidict import CIMultiDict

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te", "upgrade"}
)


def kind(method: str, path: str) -> str:
    """The kind of a registry request, as the bench reports it."""
    if path == "/token":
        return "GET token"
    if path.endswith("/tags/list"):
        return f"{method} tags"
    if "/manifests/" in path:
        return f"{method} manifest"
    if "/blobs/" in path:
        return f"{method} blob"
    return f"{method} {path}"


class Front:
    """The counting, rate-limiting HTTPS server."""

    def __init__(self, registry: str, token: str, rate_limit: int) -> None:
        self.registry = registry
        self.token = token
        self.rate_limit = rate_limit
        self.counts: collections.Counter[str] = collections.Counter()
        self.recent: collections.deque[float] = collections.deque()
        self.limited: dict[str, float] = {}
        self.session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/_bench/stats":
            return web.json_response(dict(self.counts))
        if request.path == "/_bench/reset":
            self.counts.clear()
            self.limited.clear()
            return web.json_response({})
        now = time.monotonic()
        if self.rate_limit:
            while self.recent and self.recent[0] <= now - 1.0:
                self.recent.popleft()
            if len(self.recent) >= self.rate_limit:
                key = f"{request.method} {request.path_qs}"
                self.counts["answered 429"] += 1
                if now - self.limited.get(key, -10.0) < 1.0:
                    self.counts["429 twice within its Retry-After"] += 1
                self.limited[key] = now
                return web.Response(status=429, headers={"Retry-After": "1"})
            self.recent.append(now)
        self.counts[kind(request.method, request.path)] += 1
        assert self.session is not None
        base = self.token if request.path == "/token" else self.registry
        # Several headers of one name (skopeo sends an Accept per media type) stay apart.
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP
        )
        async with self.session.request(
            request.method, base + request.path_qs, headers=headers, allow_redirects=False
        ) as upstream:
            body = await upstream.read()
            answer = CIMultiDict(
                (k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP
            )
            if request.method != "HEAD":
                return web.Response(status=upstream.status, headers=answer, body=body)
            head = web.StreamResponse(status=upstream.status, headers=answer)
            length = upstream.headers.get("Content-Length")
            if length is not None:  # what a GET would send; a HEAD sends no body
                head.content_length = int(length)
            await head.prepare(request)
            await head.write_eof()
            return head


async def delay_proxy(listen: int, target: int, rtt: float) -> asyncio.Server:
    """Forward loopback TCP from `listen` to `target`, every read held for RTT/2."""
    half = rtt / 2

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.create_task(send())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((time.monotonic() + half, data))
        except OSError:
            pass
        queue.put_nowait((0.0, b""))
        await sender

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(rtt)  # the TCP handshake
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            pump(reader, upstream_writer), pump(upstream_reader, writer), return_exceptions=True
        )

    return await asyncio.start_server(connected, "127.0.0.1", listen, backlog=1024)


async def serve(
    outer: int, inner: int, registry: str, token: str, rtt: float, rate_limit: int, cert: Path
) -> None:
    """Run the front until the process is terminated."""
    front = Front(registry, token, rate_limit)
    upstream_tls = ssl.create_default_context(cafile=str(cert))
    front.session = aiohttp.ClientSession(
        auto_decompress=False,
        connector=aiohttp.TCPConnector(limit=0, ssl=upstream_tls),
        timeout=aiohttp.ClientTimeout(total=120),
    )
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", front.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, cert.with_name("key.pem"))
    await web.TCPSite(runner, "127.0.0.1", inner, ssl_context=context, backlog=1024).start()
    await delay_proxy(outer, inner, rtt)
    print("ready", flush=True)
    await asyncio.Event().wait()


async def delay_only(rtt: float, pairs: list[tuple[int, int]]) -> None:
    """Run delay proxies until the process is terminated."""
    for listen, target in pairs:
        await delay_proxy(listen, target, rtt)
    print("ready", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    """See the module's documentation for the two modes' arguments."""
    mode, *rest = argv
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # the cheaper loop
        if mode == "delay":
            rtt, *pairs = rest
            ports = [(int(a), int(b)) for a, b in (pair.split(":") for pair in pairs)]
            runner.run(delay_only(float(rtt), ports))
            return
        outer, inner, registry, token, rtt, rate_limit, cert = rest
        runner.run(
            serve(int(outer), int(inner), registry, token, float(rtt), int(rate_limit), Path(cert))
        )


if __name__ == "__main__":
    main(sys.argv[1:])
