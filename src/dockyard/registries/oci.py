"""dockyard's own client of the OCI Distribution API, async, on httpx.

It answers `WWW-Authenticate` challenges (Bearer with a token server, or Basic), caches tokens
per (realm, service, scope, user) until they expire, follows `Link` paging verbatim, resolves
digests with HEAD and the full `Accept` list, walks index -> platform manifests -> config
blobs, fetches a manifest by digest only once, honours 429 `Retry-After`, retries server errors
a little, never forwards credentials to another host on redirects, refuses hosts on private
networks (unless allowed), and caps what it reads. Errors are `RegistryError`s that name the
host, repository and OCI error code; credentials never appear in them.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import functools
import hashlib
import ipaddress
import json
import logging
import re
import socket
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import SplitResult, quote, urlencode, urljoin, urlsplit

import httpx

from dockyard import __version__
from dockyard.errors import (
    RegistryAuthFailed,
    RegistryError,
    RegistryHostRefused,
    RegistryNotFound,
    RegistryProtocolError,
    RegistryRateLimited,
    RegistryUnavailable,
    UnsupportedManifest,
)
from dockyard.registries.transport import (
    AnswerTooLarge,
    Fetch,
    RegistryTransport,
    fetch_with,
)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SCHEMA1 = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
#: The same list on HEAD and GET, or registries answer with different digests.
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 8 * 1024 * 1024
MAX_TAG_PAGE_BYTES = 8 * 1024 * 1024
MAX_TOKEN_BYTES = 64 * 1024
MAX_REDIRECTS = 5
MAX_CONNECTIONS = 64
#: Requests one client has on the wire at once. More makes httpcore's pool slower (measured:
#: 105 tags/s at 8, 56 at 32) and is no kinder to registries.
MAX_IN_FLIGHT = 8
MAX_TAG_PAGES = 1000
TAG_PAGE_SIZE = 1000
DEFAULT_TOKEN_LIFETIME = 60.0
log = logging.getLogger("dockyard.registries")
#: Registry-specific APIs that know when each tag was pushed (the OCI API does not).
HUB_TAGS = "https://hub.docker.com/v2/namespaces/{namespace}/repositories/{name}/tags?page_size=100"
QUAY_TAGS = "https://{host}/api/v1/repository/{namespace}/{name}/tag/?onlyActiveTags=true&limit=100"
GITLAB_API = "https://gitlab.com/api/v4"
MAX_EXTRA_PAGES = 50
#: GitLab has one request per tag for dates: at most this many tags per refresh ask it.
MAX_GITLAB_TAGS = 100
TOKEN_MARGIN = 10.0
#: Manifests, configs and tokens each kept per client, the most recently used.
CACHE_ENTRIES = 4096
#: Seconds a host's addresses stay checked before the guard resolves it again.
GUARD_RECHECK = 60.0
#: Sent with every request (the Accept of manifest requests replaces the default one).
DEFAULT_HEADERS = {
    "User-Agent": f"dockyard/{__version__}",
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
}


@dataclass(frozen=True)
class Credentials:
    """A username and secret for a registry; the secret never shows in reprs or messages."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Repository:
    """Where an image lives, as the client needs it."""

    host: str
    name: str
    base_url: str
    credentials: Credentials | None = field(default=None, repr=False)

    @property
    def location(self) -> str:
        """The repository's address, which the client's caches are keyed by."""
        return f"{self.base_url}/{self.name}"

    def where(self) -> dict[str, str]:
        """The fields that locate an error."""
        return {"host": self.host, "repository": self.name}


@dataclass(frozen=True)
class ManifestHead:
    """What HEAD tells of a manifest: its digest, media type and size."""

    digest: str
    media_type: str
    size: int | None = None


@dataclass(frozen=True)
class PlatformImage:
    """One platform's image: the manifest digest and what its config says."""

    digest: str
    os: str | None
    architecture: str | None
    variant: str | None
    size: int | None
    created: datetime | None


@dataclass
class _Challenge:
    scheme: str
    realm: str | None = None
    service: str | None = None


@dataclass
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    def json(self, what: str, repository: Repository) -> Any:
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RegistryProtocolError(f"{what} is not valid JSON", **repository.where()) from None


def base_url_for(host: str, *, api_host: str | None = None, insecure: bool = False) -> str:
    """The registry's API root: plain HTTP for loopback hosts (as Docker does) or `insecure`."""
    target = api_host or host
    hostname = urlsplit(f"//{target}").hostname or target
    loopback = hostname == "localhost" or _is_loopback_literal(hostname)
    return f"{'http' if insecure or loopback else 'https'}://{target}"


def _is_loopback_literal(hostname: str) -> bool:
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


class HostGuard:
    """Refuses hosts that resolve to loopback, private, link-local or metadata addresses.

    A host is checked before a request (resolved at most once a minute), and every new
    connection is checked again by the address it actually reached, so a name that resolves
    elsewhere by the time of connecting (DNS rebinding) gains nothing.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        trusted_hosts: Iterable[str] = (),
        is_trusted: Callable[[str], bool] | None = None,
        resolve: Callable[[str, int], Awaitable[list[str]]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allow_private = allow_private
        self.trusted_hosts = frozenset(host.lower() for host in trusted_hosts)
        self._is_trusted = is_trusted
        self._resolve = resolve or _resolve
        self._clock = clock
        #: (host, port) -> when its addresses were last found acceptable.
        self._checked: dict[tuple[str, int], float] = {}

    def _exempt(self, hostname: str, *netlocs: str) -> bool:
        if self.allow_private or hostname in self.trusted_hosts:
            return True
        if any(netloc in self.trusted_hosts for netloc in netlocs):
            return True
        return self._is_trusted is not None and any(self._is_trusted(n) for n in netlocs)

    async def check(self, url: str) -> None:
        """Raise `RegistryHostRefused` unless the URL's host is allowed."""
        origin = _host_and_port(urlsplit(url))
        checked = self._checked.get(origin)
        if checked is not None and self._clock() - checked < GUARD_RECHECK:
            return
        await self.addresses(url)
        self._checked[origin] = self._clock()

    async def addresses(self, url: str) -> list[str]:
        """The addresses the URL's host resolves to, each checked as `check` does (never
        cached); [] for a host the operator exempted. A client that resolves names itself
        (git) is pinned to them, so the name cannot resolve elsewhere by the time it
        connects."""
        parts = urlsplit(url)
        hostname, port = _host_and_port(parts)
        if self._exempt(hostname, parts.netloc.rpartition("@")[2].lower()):
            return []
        try:
            addresses = await self._resolve(hostname, port)
        except OSError:
            raise RegistryUnavailable(f"cannot resolve {hostname}", host=hostname) from None
        for address in addresses:
            self._refuse_unless_global(hostname, address)
        return addresses

    def check_peer(self, host: str, port: int, address: str) -> None:
        """Raise `RegistryHostRefused` if a connection to the host reached a refused address."""
        hostname = host.lower()
        if not self._exempt(hostname, hostname, f"{hostname}:{port}"):
            self._refuse_unless_global(hostname, address)

    @staticmethod
    def _refuse_unless_global(hostname: str, address: str) -> None:
        ip = ipaddress.ip_address(address.split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global:
            raise RegistryHostRefused(
                f"{hostname} resolves to {ip}, a loopback, private or link-local address; "
                "the operator can allow it with DOCKYARD_ALLOW_PRIVATE_NETWORK_REGISTRIES "
                "or by listing the host in the registries file",
                host=hostname,
            )


def _host_and_port(parts: SplitResult) -> tuple[str, int]:
    return (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


K = TypeVar("K")
V = TypeVar("V")


class _Recent(OrderedDict[K, V]):
    """A dict that keeps only its `size` most recently used entries."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __getitem__(self, key: K) -> V:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


class RegistryClient:
    """An OCI Distribution client shared by many repositories (tokens and manifests cached)."""

    def __init__(
        self,
        *,
        guard: HostGuard | None = None,
        transport: RegistryTransport | httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        max_wait: float = 60.0,
        retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        self.guard = guard or HostGuard()
        # The transport is called directly: httpx's client adds cookies, auth and redirect
        # handling that this client does itself (or must not do), at a cost per request.
        # Another httpx transport (tests' mocks) is used through the same call.
        self._transport: RegistryTransport | httpx.AsyncBaseTransport = (
            transport
            or RegistryTransport(max_connections=MAX_CONNECTIONS, on_connect=self.guard.check_peer)
        )
        self._send: Fetch = (
            self._transport.fetch
            if isinstance(self._transport, RegistryTransport)
            else functools.partial(fetch_with, self._transport)
        )
        self._timeout = timeout
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.max_wait = max_wait
        self.retries = retries
        self._sleep = sleep
        self._clock = clock
        self._challenges: dict[str, _Challenge] = {}
        # Bounded: a worker's client lives as long as the process.
        self._tokens: _Recent[tuple[str, str, str, str], tuple[str, float]] = _Recent(cache_entries)
        self._manifests: _Recent[tuple[str, str], Any] = _Recent(cache_entries)
        self._configs: _Recent[tuple[str, str], dict[str, Any]] = _Recent(cache_entries)
        self._fetching: dict[tuple[str, str], asyncio.Future[tuple[Any, ManifestHead]]] = {}
        #: Requests made, by kind: "GET tags", "HEAD manifest", "GET manifest", "GET blob", ...
        self.stats: Counter[str] = Counter()
        #: Docker Hub's `ratelimit-remaining`, per host, when it was last sent.
        self.rate_limit_remaining: dict[str, int] = {}
        #: Hosts that asked to wait longer than `max_wait`, and until when (clock time): no
        #: request goes to them before then, for any repository.
        self._cooldown: dict[str, float] = {}

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections."""
        await self._transport.aclose()

    # --- the API ----------------------------------------------------------------------------

    async def list_tags(self, repository: Repository) -> list[str]:
        """Every tag of the repository, following `Link` pages verbatim."""
        url = f"{repository.base_url}/v2/{repository.name}/tags/list?n={TAG_PAGE_SIZE}"
        tags: list[str] = []
        for _ in range(MAX_TAG_PAGES):
            answer = await self._call(repository, "GET", url, "GET tags", MAX_TAG_PAGE_BYTES)
            page = answer.json("the tag list", repository)
            if not isinstance(page, dict) or not isinstance(page.get("tags") or [], list):
                raise RegistryProtocolError(
                    "the tag list has no 'tags' array", **repository.where()
                )
            tags.extend(tag for tag in page.get("tags") or [] if isinstance(tag, str))
            following = _next_link(answer.headers.get("link"))
            if following is None:
                return list(dict.fromkeys(tags))
            url = urljoin(answer.url, following)
        raise RegistryProtocolError(
            f"the tag list did not end after {MAX_TAG_PAGES} pages", **repository.where()
        )

    async def head_manifest(self, repository: Repository, reference: str) -> ManifestHead:
        """The digest a tag points to, without a GET (HEAD is not counted as a pull)."""
        url = f"{repository.base_url}/v2/{repository.name}/manifests/{reference}"
        answer = await self._call(
            repository, "HEAD", url, "HEAD manifest", 0, headers={"Accept": ACCEPT}
        )
        digest = answer.headers.get("docker-content-digest")
        media_type = answer.headers.get("content-type", "").split(";")[0].strip()
        length = answer.headers.get("content-length")
        if not digest:
            _, head = await self.get_manifest(repository, reference)
            return head
        return ManifestHead(digest=digest, media_type=media_type, size=_int(length))

    async def get_manifest(
        self, repository: Repository, reference: str
    ) -> tuple[Any, ManifestHead]:
        """A manifest (by tag or digest) with its digest; by digest it is fetched only once,
        also when several tags that point to it ask at the same time."""
        if not reference.startswith("sha256:"):
            return await self._fetch_manifest(repository, reference)
        key = (repository.location, reference)
        if key in self._manifests:
            manifest, head = self._manifests[key]
            return manifest, head
        pending = self._fetching.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[tuple[Any, ManifestHead]] = (
            asyncio.get_running_loop().create_future()
        )
        self._fetching[key] = future
        try:
            result = await self._fetch_manifest(repository, reference)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as error:
            future.set_exception(error)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._fetching[key]
        future.set_result(result)
        return result

    async def _fetch_manifest(
        self, repository: Repository, reference: str
    ) -> tuple[Any, ManifestHead]:
        url = f"{repository.base_url}/v2/{repository.name}/manifests/{reference}"
        answer = await self._call(
            repository, "GET", url, "GET manifest", MAX_MANIFEST_BYTES, headers={"Accept": ACCEPT}
        )
        digest = "sha256:" + hashlib.sha256(answer.body).hexdigest()
        if reference.startswith("sha256:") and reference != digest:
            raise RegistryProtocolError(
                f"manifest {reference} arrived with content of digest {digest}",
                **repository.where(),
            )
        manifest = answer.json("the manifest", repository)
        if not isinstance(manifest, dict):
            raise RegistryProtocolError("the manifest is not a JSON object", **repository.where())
        media_type = str(
            manifest.get("mediaType")
            or answer.headers.get("content-type", "").split(";")[0].strip()
        )
        if manifest.get("schemaVersion") == 1 or media_type in SCHEMA1:
            raise UnsupportedManifest(
                f"{reference} is a Docker schema 1 manifest, which dockyard does not read; push "
                "it again with a current Docker or convert it (skopeo copy --format v2s2)",
                **repository.where(),
            )
        head = ManifestHead(digest=digest, media_type=media_type, size=len(answer.body))
        self._manifests[(repository.location, digest)] = (manifest, head)
        return manifest, head

    async def platform_images(
        self, repository: Repository, reference: str
    ) -> tuple[ManifestHead, list[PlatformImage]]:
        """The images behind a tag or digest: one per platform of an index, or the one image."""
        manifest, head = await self.get_manifest(repository, reference)
        if head.media_type in INDEX_TYPES or "manifests" in manifest:
            entries = [
                entry
                for entry in manifest.get("manifests") or []
                if isinstance(entry, dict)
                and (entry.get("platform") or {}).get("os") != "unknown"  # attestations
            ]
            images = await asyncio.gather(
                *(self._platform_image(repository, entry) for entry in entries)
            )
            return head, list(images)
        return head, [await self._image(repository, manifest, head.digest, {})]

    # --- manifests and configs ----------------------------------------------------------------

    async def _platform_image(self, repository: Repository, entry: dict[str, Any]) -> PlatformImage:
        digest = entry.get("digest")
        if not isinstance(digest, str):
            raise RegistryProtocolError("an index entry has no digest", **repository.where())
        manifest, head = await self.get_manifest(repository, digest)
        return await self._image(repository, manifest, head.digest, entry.get("platform") or {})

    async def _image(
        self,
        repository: Repository,
        manifest: dict[str, Any],
        digest: str,
        platform: dict[str, Any],
    ) -> PlatformImage:
        config_ref = manifest.get("config") or {}
        layers = manifest.get("layers") or []
        if not isinstance(config_ref, dict) or not isinstance(layers, list):
            raise RegistryProtocolError(
                f"manifest {digest} has no config or layers", **repository.where()
            )
        config = await self._config(repository, config_ref.get("digest"))
        sizes = [
            config_ref.get("size"),
            *(layer.get("size") for layer in layers if isinstance(layer, dict)),
        ]
        size = (
            sum(s for s in sizes if isinstance(s, int))
            if all(isinstance(s, int) for s in sizes)
            else None
        )
        return PlatformImage(
            digest=digest,
            os=_text(config.get("os")) or _text(platform.get("os")),
            architecture=_text(config.get("architecture")) or _text(platform.get("architecture")),
            variant=_text(config.get("variant")) or _text(platform.get("variant")),
            size=size,
            created=_timestamp(config.get("created")),
        )

    async def _config(self, repository: Repository, digest: object) -> dict[str, Any]:
        if not isinstance(digest, str) or not digest.startswith("sha256:"):
            raise RegistryProtocolError(
                "a manifest's config has no sha256 digest", **repository.where()
            )
        key = (repository.location, digest)
        if key not in self._configs:
            url = f"{repository.base_url}/v2/{repository.name}/blobs/{digest}"
            answer = await self._call(repository, "GET", url, "GET blob", MAX_CONFIG_BYTES)
            if "sha256:" + hashlib.sha256(answer.body).hexdigest() != digest:
                raise RegistryProtocolError(
                    f"config blob {digest} arrived with other content", **repository.where()
                )
            parsed = answer.json("the image config", repository)
            self._configs[key] = parsed if isinstance(parsed, dict) else {}
        config: dict[str, Any] = self._configs[key]
        return config

    # --- requests, auth, retries ---------------------------------------------------------------

    async def _call(
        self,
        repository: Repository,
        method: str,
        url: str,
        kind: str,
        limit: int,
        *,
        headers: dict[str, str] | None = None,
    ) -> _Answer:
        attempt = 0
        challenged = False
        while True:
            attempt += 1
            resting = self._cooldown.get(repository.base_url, 0.0) - self._clock()
            if resting > 0:
                raise RegistryRateLimited(
                    f"the registry asked to wait; {resting:.0f} s to go before asking again",
                    retry_after=resting,
                    **repository.where(),
                )
            request_headers = dict(headers or {})
            authorization = await self._authorization(repository)
            if authorization:
                request_headers["Authorization"] = authorization
            self.stats[kind] += 1
            answer = await self._fetch(repository, method, url, request_headers, limit)
            self._note_rate_limit(repository, answer)
            if answer.status == 401 and not challenged:
                challenged = True
                if self._learn_challenge(repository, answer):
                    continue
            if answer.status in (401, 403):
                raise self._auth_error(repository, answer)
            if answer.status == 429:
                wait = _retry_after(answer.headers.get("retry-after"))
                if wait <= self.max_wait and attempt <= self.retries + 1:
                    await self._sleep(wait)
                    continue
                self._cooldown[repository.base_url] = self._clock() + wait
                raise RegistryRateLimited(
                    f"rate-limited; retry after {wait:.0f} s",
                    retry_after=wait,
                    **repository.where(),
                )
            if answer.status >= 500:
                if attempt <= self.retries:
                    await self._sleep(min(2.0**attempt, self.max_wait))
                    continue
                code, message = _oci_error(answer)
                raise RegistryUnavailable(
                    f"server error {answer.status}{': ' + message if message else ''}",
                    oci_code=code,
                    **repository.where(),
                )
            if answer.status == 404:
                code, message = _oci_error(answer)
                raise RegistryNotFound(message or "not found", oci_code=code, **repository.where())
            if answer.status >= 400:
                code, message = _oci_error(answer)
                raise RegistryError(
                    f"{method} answered {answer.status}{': ' + message if message else ''}",
                    oci_code=code,
                    **repository.where(),
                )
            return answer

    async def _fetch(
        self, repository: Repository, method: str, url: str, headers: dict[str, str], limit: int
    ) -> _Answer:
        origin = urlsplit(url).netloc
        for _ in range(MAX_REDIRECTS + 1):
            await self.guard.check(url)
            if urlsplit(url).netloc != origin:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            async with self._in_flight:
                try:
                    reply = await self._send(
                        method,
                        url,
                        {**DEFAULT_HEADERS, **headers},
                        limit=limit,
                        timeout=self._timeout,
                    )
                except AnswerTooLarge as error:
                    size = f"of {error.declared:,} bytes " if error.declared is not None else ""
                    raise RegistryProtocolError(
                        f"an answer {size}is larger than the {error.limit:,} bytes dockyard reads",
                        **repository.where(),
                    ) from None
                except httpx.TimeoutException:
                    raise RegistryUnavailable("timed out", **repository.where()) from None
                except httpx.TransportError as error:
                    raise RegistryUnavailable(
                        f"unreachable ({type(error).__name__})", **repository.where()
                    ) from None
            if reply.status in (301, 302, 303, 307, 308) and "location" in reply.headers:
                url = urljoin(url, reply.headers["location"])
                method = "GET" if reply.status == 303 else method
                continue
            return _Answer(reply.status, reply.headers, reply.body, url)
        raise RegistryProtocolError(f"more than {MAX_REDIRECTS} redirects", **repository.where())

    async def push_dates(
        self, repository: Repository, registry_id: str, tags: list[str]
    ) -> dict[str, datetime]:
        """When tags were last pushed, from Docker Hub's, Quay's or GitLab's own API.

        These are extras: the OCI API has no push dates. Any failure (a private repository,
        an API that changed, rate limits) gives {} and the refresh goes on without them.
        Docker Hub and Quay list every tag's date in pages; GitLab answers one tag at a time,
        so only `tags` (those that are new or moved) are asked there.
        """
        try:
            if registry_id == "dockerhub":
                return await self._hub_push_dates(repository)
            if registry_id == "quay":
                return await self._quay_push_dates(repository)
            if registry_id == "gitlab" and tags:
                return await self._gitlab_push_dates(repository, tags[:MAX_GITLAB_TAGS])
        except RegistryError as error:
            log.info(
                "push dates unavailable",
                extra={"repository": repository.name, "reason": error.message},
            )
        return {}

    async def _hub_push_dates(self, repository: Repository) -> dict[str, datetime]:
        namespace, _, name = repository.name.partition("/")
        url: str | None = HUB_TAGS.format(namespace=namespace, name=name)
        dates: dict[str, datetime] = {}
        for _ in range(MAX_EXTRA_PAGES):
            if url is None:
                break
            self.stats["GET hub tags"] += 1
            answer = await self._fetch(repository, "GET", url, {}, MAX_TAG_PAGE_BYTES)
            if answer.status != 200:
                raise RegistryError(f"Docker Hub answered {answer.status}", **repository.where())
            body = answer.json("Docker Hub's tag list", repository)
            for item in body.get("results") or [] if isinstance(body, dict) else []:
                moment = _timestamp(item.get("tag_last_pushed") or item.get("last_updated"))
                if isinstance(item.get("name"), str) and moment is not None:
                    dates[item["name"]] = moment
            following = body.get("next") if isinstance(body, dict) else None
            url = following if isinstance(following, str) and following else None
        return dates

    async def _quay_push_dates(self, repository: Repository) -> dict[str, datetime]:
        namespace, _, name = repository.name.partition("/")
        base = QUAY_TAGS.format(host=repository.host, namespace=namespace, name=name)
        dates: dict[str, datetime] = {}
        for page in range(1, MAX_EXTRA_PAGES + 1):
            self.stats["GET quay tags"] += 1
            answer = await self._fetch(
                repository, "GET", f"{base}&page={page}", {}, MAX_TAG_PAGE_BYTES
            )
            if answer.status != 200:
                raise RegistryError(f"Quay's API answered {answer.status}", **repository.where())
            body = answer.json("Quay's tag list", repository)
            if not isinstance(body, dict):
                break
            for item in body.get("tags") or []:
                started = item.get("start_ts")
                if isinstance(item.get("name"), str) and isinstance(started, int | float):
                    dates[item["name"]] = datetime.fromtimestamp(started, UTC)
            if not body.get("has_additional"):
                break
        return dates

    async def _gitlab_push_dates(
        self, repository: Repository, tags: list[str]
    ) -> dict[str, datetime]:
        found = await self._gitlab_repository(repository)
        if found is None:
            return {}
        project, registry_repository = found
        dates: dict[str, datetime] = {}
        for tag in tags:
            self.stats["GET gitlab tag"] += 1
            url = (
                f"{GITLAB_API}/projects/{project}/registry/repositories/{registry_repository}"
                f"/tags/{quote(tag, safe='')}"
            )
            answer = await self._fetch(repository, "GET", url, {}, MAX_MANIFEST_BYTES)
            if answer.status != 200:
                continue
            body = answer.json("GitLab's tag", repository)
            moment = _timestamp(body.get("created_at")) if isinstance(body, dict) else None
            if moment is not None:
                dates[tag] = moment
        return dates

    async def _gitlab_repository(self, repository: Repository) -> tuple[int, int] | None:
        """The GitLab project and registry repository ids of an image path, if public."""
        parts = repository.name.split("/")
        for cut in range(len(parts), 1, -1):  # the project is the longest prefix that exists
            project = quote("/".join(parts[:cut]), safe="")
            self.stats["GET gitlab project"] += 1
            url = f"{GITLAB_API}/projects/{project}/registry/repositories?per_page=100"
            answer = await self._fetch(repository, "GET", url, {}, MAX_TAG_PAGE_BYTES)
            if answer.status == 404:
                continue
            if answer.status != 200:
                raise RegistryError(f"GitLab's API answered {answer.status}", **repository.where())
            listed = answer.json("GitLab's registry repositories", repository)
            for item in listed if isinstance(listed, list) else []:
                if isinstance(item, dict) and item.get("path") == repository.name:
                    project_id, repository_id = item.get("project_id"), item.get("id")
                    if isinstance(project_id, int) and isinstance(repository_id, int):
                        return project_id, repository_id
            return None
        return None

    async def _authorization(self, repository: Repository) -> str | None:
        challenge = self._challenges.get(repository.base_url)
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            if repository.credentials is None:
                return None
            return _basic(repository.credentials)
        token = await self._token(repository, challenge)
        return f"Bearer {token}" if token else None

    async def _token(self, repository: Repository, challenge: _Challenge) -> str | None:
        if not challenge.realm:
            raise RegistryAuthFailed("the Bearer challenge names no realm", **repository.where())
        scope = f"repository:{repository.name}:pull"
        user = repository.credentials.username if repository.credentials else ""
        key = (challenge.realm, challenge.service or "", scope, user)
        cached = self._tokens.get(key)
        if cached and cached[1] > self._clock():
            return cached[0]
        query = {"scope": scope, **({"service": challenge.service} if challenge.service else {})}
        url = f"{challenge.realm}{'&' if '?' in challenge.realm else '?'}{urlencode(query)}"
        headers = {}
        if repository.credentials is not None:
            headers["Authorization"] = _basic(repository.credentials)
        self.stats["GET token"] += 1
        try:
            answer = await self._fetch(repository, "GET", url, headers, MAX_TOKEN_BYTES)
        except RegistryUnavailable as error:
            raise RegistryAuthFailed(
                f"the token server at {urlsplit(challenge.realm).netloc} failed: {error.message}",
                **repository.where(),
            ) from None
        if answer.status in (401, 403):
            raise RegistryAuthFailed(
                "the token server refused the credentials"
                if repository.credentials
                else "the token server refused anonymous access: the image needs credentials",
                **repository.where(),
            )
        if answer.status != 200:
            raise RegistryAuthFailed(
                f"the token server answered {answer.status}", **repository.where()
            )
        body = answer.json("the token server's answer", repository)
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryAuthFailed("the token server sent no token", **repository.where())
        lifetime = (
            body.get("expires_in") if isinstance(body.get("expires_in"), int | float) else None
        )
        lifetime = float(lifetime or DEFAULT_TOKEN_LIFETIME)
        self._tokens[key] = (token, self._clock() + max(lifetime - TOKEN_MARGIN, lifetime / 2))
        return token

    def _learn_challenge(self, repository: Repository, answer: _Answer) -> bool:
        """Remember how the registry wants to be asked; True when a retry can succeed."""
        challenge = _parse_challenge(answer.headers.get("www-authenticate", ""))
        if challenge is None:
            return False
        self._challenges[repository.base_url] = challenge
        if challenge.scheme == "basic":
            return repository.credentials is not None
        scope = f"repository:{repository.name}:pull"
        for key in [key for key in self._tokens if key[0] == challenge.realm and key[2] == scope]:
            del self._tokens[key]
        return True

    def _auth_error(self, repository: Repository, answer: _Answer) -> RegistryAuthFailed:
        code, message = _oci_error(answer)
        if answer.status == 403:
            text = "access denied"
        elif repository.credentials is None:
            text = "the registry needs credentials for this image"
        else:
            text = "the registry refused the credentials"
        return RegistryAuthFailed(
            f"{text}{': ' + message if message else ''}", oci_code=code, **repository.where()
        )

    def _note_rate_limit(self, repository: Repository, answer: _Answer) -> None:
        remaining = answer.headers.get("ratelimit-remaining")
        if remaining:
            value = _int(remaining.split(";")[0])
            if value is not None:
                self.rate_limit_remaining[repository.host] = value


# --- helpers ----------------------------------------------------------------------------------


def _basic(credentials: Credentials) -> str:
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def _parse_challenge(header: str) -> _Challenge | None:
    scheme, _, params = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in {"bearer", "basic"}:
        return None
    # Several challenges (two headers arrive joined by ", ") each have their own parameters:
    # read the first one's, up to the next scheme's name.
    values: dict[str, str] = {}
    position = 0
    for match in _CHALLENGE_PARAM.finditer(params):
        if params[position : match.start()].strip(" ,\t"):
            break
        key, quoted, bare = match.groups()
        values.setdefault(key.lower(), quoted if quoted is not None else bare)
        position = match.end()
    return _Challenge(scheme=scheme, realm=values.get("realm"), service=values.get("service"))


def _next_link(header: str | None) -> str | None:
    if not header:
        return None
    for part in header.split(","):
        match = re.match(r"\s*<([^>]*)>\s*;(.*)", part)
        if match and re.search(r'rel\s*=\s*"?next"?', match.group(2)):
            return match.group(1)
    return None


def _oci_error(answer: _Answer) -> tuple[str | None, str | None]:
    try:
        errors = json.loads(answer.body).get("errors") or []
        first = errors[0]
        return str(first.get("code") or "") or None, str(first.get("message") or "") or None
    except (ValueError, AttributeError, IndexError, TypeError):
        return None, None


def _retry_after(value: str | None) -> float:
    if not value:
        return 1.0
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 1.0
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
