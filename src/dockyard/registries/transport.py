"""The registry client's HTTP: GET and HEAD through one aiohttp session, bounded in every way.

aiohttp speaks HTTP (its C parser, its connection pool, TLS, proxies); this module adds what
a client of registries it does not trust needs around it:

- the private-network guard (`dockyard.egress.HostGuard`) is the connector's resolver, so
  the addresses it checks are the addresses connected to: no second lookup, no rebinding.
  Literal addresses, which aiohttp never resolves, are checked before the request;
- proxies come from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, minus
  `NO_PROXY`, as httpx and curl read them). Through a proxy, the target's name is checked
  before the request; the proxy then resolves and connects on its own;
- one deadline per request (connect, head and body together);
- limits on a header line, a header field and the number of headers (aiohttp's parser);
- the caller's byte limit on the body, as declared, as it arrives, and once decoded: gzip
  and deflate are undone here, bounded, so a small compressed answer cannot expand in
  memory; transfer codings other than chunked are refused;
- errors are this module's `TransportError`s, whose messages hold no header or secret.

`Fetch` is the seam: the client asks for `Reply`s through any callable of that shape (tests
script one), and `RegistryTransport.fetch` is the real one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import urllib.request
import zlib
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from dockyard.egress import DEFAULT_PORTS, HostGuard

#: Connections one session keeps open at once, to every registry together.
MAX_CONNECTIONS = 256
#: Seconds an idle connection is kept for the next request.
KEEPALIVE = 15.0
#: The longest status or header line, and the longest header field, aiohttp reads.
MAX_LINE = 8 * 1024
MAX_FIELD = 8 * 1024
#: Headers one answer may carry.
MAX_HEADERS = 128

Headers = CIMultiDictProxy[str]


@dataclass(slots=True)
class Reply:
    """An answer read whole. `headers` is case-insensitive; `getall` gives repeated ones."""

    status: int
    headers: Headers
    body: bytes


def headers_of(pairs: Iterable[tuple[str, str]]) -> Headers:
    """Headers as a `Reply` holds them, from (name, value) pairs."""
    return CIMultiDictProxy(CIMultiDict(pairs))


class Fetch(Protocol):
    """`RegistryTransport.fetch`'s signature: a request without a body, its answer whole."""

    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], *, limit: int, timeout: float
    ) -> Awaitable[Reply]: ...


class AnswerTooLarge(Exception):
    """The answer (as declared, as sent, or once decoded) is larger than the caller reads."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        super().__init__(limit, declared)
        self.limit = limit
        self.declared = declared


class TransportError(Exception):
    """A request that got no usable answer; the message says why, and holds no secret."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransportTimeout(TransportError):
    """The request's deadline passed (connecting, waiting, or reading)."""


class Unreachable(TransportError):
    """No connection: the name does not resolve, nothing listens, TLS failed."""


class MalformedAnswer(TransportError):
    """The server answered, but not in HTTP/1.1 that can be read safely."""


class GuardedResolver(AbstractResolver):
    """Resolves names as the system does, and refuses any the guard refuses.

    `exempt` names are resolved without a check: the configured proxies, which the operator
    chose and which may well be on a private network.
    """

    def __init__(self, guard: HostGuard, exempt: frozenset[str] = frozenset()) -> None:
        self._guard = guard
        self._exempt = exempt
        self._system = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The host's addresses, each one allowed by the guard."""
        found = await self._system.resolve(host, port, family)
        if host.lower() not in self._exempt:
            for entry in found:
                self._guard.check_peer(host, port, entry["host"])
        return found

    async def close(self) -> None:
        """Release the system resolver."""
        await self._system.close()


class RegistryTransport:
    """GET and HEAD to registries through one aiohttp session (made on first use, in the
    running loop), with the guard as its resolver and proxies from the environment."""

    def __init__(
        self,
        *,
        guard: HostGuard | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.guard = guard or HostGuard()
        self._max_connections = max_connections
        # Made here, not at import: it reads SSL_CERT_FILE and SSL_CERT_DIR as they are now.
        self._ssl = ssl.create_default_context()
        #: The environment's proxies when the transport is made, as urllib and curl read
        #: them: scheme (and "no") -> value, lower-case names winning.
        self._proxies = urllib.request.getproxies_environment()
        self._session: aiohttp.ClientSession | None = None

    def proxy_for(self, url: str) -> str | None:
        """The proxy the environment names for this address, or None to go direct."""
        parts = urlsplit(url)
        proxy = self._proxies.get(parts.scheme) or self._proxies.get("all")
        if not proxy or _bypassed(parts.hostname or "", self._proxies):
            return None
        return proxy

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            exempt = frozenset(
                (urlsplit(proxy).hostname or "").lower()
                for scheme, proxy in self._proxies.items()
                if scheme != "no"
            )
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=KEEPALIVE,
                ssl=self._ssl,
                resolver=GuardedResolver(self.guard, exempt),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # decoded here, within the caller's limit
                max_line_size=MAX_LINE,
                max_field_size=MAX_FIELD,
                max_headers=MAX_HEADERS,
                trust_env=False,  # proxies are chosen by `proxy_for`; no ~/.netrc
                skip_auto_headers=("User-Agent",),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def fetch(
        self, method: str, url: str, headers: Mapping[str, str], *, limit: int, timeout: float
    ) -> Reply:
        """Send a request without a body and read its answer whole, at most `limit` bytes.

        Raises `TransportError`s, `AnswerTooLarge`, and the guard's `RegistryHostRefused`.
        """
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS:
            raise MalformedAnswer(f"registries are reached over HTTP(S), not {parts.scheme!r}")
        host = parts.hostname
        if not host:
            raise MalformedAnswer("the address names no host")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise MalformedAnswer("the address has an invalid port") from None
        if any(_breaks_line(name) or _breaks_line(value) for name, value in headers.items()):
            # A value from a registry (a token) must not add headers of its own.
            raise TransportError("a request header holds a line break; nothing was sent")
        proxy = self.proxy_for(url)
        if proxy is not None:
            await self.guard.check(url)  # the proxy resolves it; this is the check we can make
        elif _is_ip_literal(host):
            self.guard.check_peer(host, port, host)  # aiohttp never resolves a literal
        session = self._open()
        try:
            async with asyncio.timeout(timeout):
                return await self._exchange(session, method, url, headers, limit, proxy)
        except TimeoutError:
            raise TransportTimeout("timed out") from None
        except aiohttp.ClientConnectorDNSError:
            raise Unreachable(f"cannot resolve {host}") from None
        except aiohttp.ClientConnectorCertificateError:
            raise Unreachable(f"{host}'s TLS certificate is not trusted") from None
        except aiohttp.ClientSSLError:
            raise Unreachable(f"the TLS handshake with {host} failed") from None
        except aiohttp.ClientProxyConnectionError:
            raise Unreachable("cannot connect to the proxy") from None
        except aiohttp.ClientConnectorError:
            raise Unreachable(f"cannot connect to {host}:{port}") from None
        except aiohttp.ClientHttpProxyError as error:
            raise Unreachable(f"the proxy refused the connection ({error.status})") from None
        except aiohttp.ServerDisconnectedError:
            raise Unreachable("the server closed the connection mid-answer") from None
        except aiohttp.ClientResponseError as error:  # the parser refused the answer
            raise MalformedAnswer(_parser_complaint(error)) from None
        except aiohttp.ClientPayloadError:
            raise MalformedAnswer("the answer's body is not framed correctly") from None
        except (aiohttp.InvalidURL, ValueError) as error:
            raise MalformedAnswer(f"an invalid address ({type(error).__name__})") from None
        except (aiohttp.ClientOSError, aiohttp.ClientConnectionError) as error:
            raise Unreachable(f"the connection failed ({type(error).__name__})") from None

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        headers: Mapping[str, str],
        limit: int,
        proxy: str | None,
    ) -> Reply:
        extra: dict[str, Any] = {}
        if proxy is not None:
            proxy_url = URL(proxy)
            extra["proxy"] = proxy_url.with_user(None)
            if proxy_url.user is not None:
                extra["proxy_auth"] = aiohttp.BasicAuth.from_url(proxy_url)
        async with session.request(
            method,
            url,
            headers=dict(headers),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(),  # the caller's asyncio deadline is the one
            **extra,
        ) as response:
            coding = response.headers.get("Transfer-Encoding")
            if coding is not None and coding.strip().lower() != "chunked":
                raise MalformedAnswer(f"the answer uses transfer coding {coding!r}")
            if method == "HEAD" or response.status in (204, 304):
                return Reply(response.status, response.headers, b"")
            declared = response.content_length
            if declared is not None and declared > limit:
                raise AnswerTooLarge(limit, declared)
            body = bytearray()
            async for part in response.content.iter_any():
                body += part
                if len(body) > limit:
                    raise AnswerTooLarge(limit)
            encodings = response.headers.get("Content-Encoding")
            data = _decoded(bytes(body), encodings, limit) if encodings and body else bytes(body)
            return Reply(response.status, response.headers, data)

    async def aclose(self) -> None:
        """Close every connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _bypassed(host: str, proxies: Mapping[str, str]) -> bool:
    no_proxy = proxies.get("no")
    if not no_proxy:
        return False
    # urllib's own NO_PROXY matching (suffixes, ports, "*"); typeshed does not declare it.
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    return bool(bypass(host, {"no": no_proxy}))


def _breaks_line(text: str) -> bool:
    return "\r" in text or "\n" in text or "\0" in text


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True


def _parser_complaint(error: aiohttp.ClientResponseError) -> str:
    # aiohttp puts the offending bytes in the message; a person needs only what is wrong.
    text = str(error.message).split(":", 1)[0].split("\n", 1)[0].strip()
    return f"the answer is not valid HTTP ({text[:80] or 'unreadable'})"


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
            raise MalformedAnswer(f"the answer uses unsupported encoding {coding!r}")
        for wbits in attempts:
            decompressor = zlib.decompressobj(wbits)
            try:
                decoded = decompressor.decompress(body, limit + 1)
            except zlib.error:
                if wbits == attempts[-1]:
                    raise MalformedAnswer(
                        f"the answer's {coding} content cannot be decoded"
                    ) from None
                continue
            if len(decoded) > limit or decompressor.unconsumed_tail:
                raise AnswerTooLarge(limit)
            body = decoded
            break
    return body
