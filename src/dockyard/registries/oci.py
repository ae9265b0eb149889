"""dockyard's own client of the OCI Distribution API, async, on `RegistryTransport` (aiohttp).

It lists tags (following `Link` pages verbatim, with a cap and a cycle check), resolves
digests with HEAD and the full `Accept` list, walks index -> platform manifests -> config
blobs, and fetches a manifest by digest only once. Around every request it:

- answers `WWW-Authenticate` challenges (`auth`): one request per registry learns the
  challenge while the others wait for it, and tokens are asked for many repositories at once;
- keeps at most `Repository.max_in_flight` requests on the wire per registry;
- honours `Retry-After` on 429 and 503 with one pause shared by every request to that
  registry, and then keeps below the rate it accepted (`pacing`); keeps a reserve of
  Docker Hub's pull allowance (`ratelimit-remaining`);
- retries server errors a little;
- follows redirects (a few), sends credentials only to the origin (scheme, host and port)
  they were meant for, and refuses a redirect from https to plain http outright.

Errors are `RegistryError`s that name the host, repository and OCI error code; credentials
never appear in them.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from dockyard import __version__, metrics
from dockyard.egress import HostGuard, host_and_port
from dockyard.errors import (
    RegistryError,
    RegistryHostRefused,
    RegistryNotFound,
    RegistryProtocolError,
    RegistryUnavailable,
    UnsupportedManifest,
)
from dockyard.registries import extras
from dockyard.registries.auth import MAX_TOKEN_BYTES, Challenges, Tokens, refused
from dockyard.registries.lru import Recent
from dockyard.registries.manifests import (
    ACCEPT,
    INDEX_TYPES,
    SCHEMA1,
    ManifestHead,
    PlatformImage,
    int_of,
    text_of,
)
from dockyard.registries.pacing import Allowance, PullReserve, rate_limited
from dockyard.registries.pacing import retry_after as parse_retry_after
from dockyard.registries.repository import Answer, Repository
from dockyard.registries.transport import (
    AnswerTooLarge,
    Fetch,
    MalformedAnswer,
    RegistryTransport,
    Reply,
    TransportTimeout,
    Unreachable,
)

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 8 * 1024 * 1024
MAX_TAG_PAGE_BYTES = 8 * 1024 * 1024
MAX_REDIRECTS = 5
MAX_TAG_PAGES = 1000
#: Tags read from one repository at most (a registry that lists more is refused).
MAX_TAGS = 100_000
TAG_PAGE_SIZE = 1000
#: Manifests and configs kept per client, the most recently used; tokens likewise.
CACHE_ENTRIES = 4096
#: Sent with every request (the Accept of manifest requests replaces the default one).
DEFAULT_HEADERS = {
    "User-Agent": f"dockyard/{__version__}",
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
}
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class RegistryClient:
    """An OCI Distribution client shared by many repositories (tokens and manifests cached)."""

    def __init__(
        self,
        *,
        guard: HostGuard | None = None,
        fetch: Fetch | None = None,
        timeout: float = 30.0,
        max_wait: float = 60.0,
        retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        self.guard = guard or HostGuard()
        self._transport: RegistryTransport | None = None
        if fetch is None:
            self._transport = RegistryTransport(guard=self.guard)
            fetch = self._transport.fetch
        self._send = fetch
        self._timeout = timeout
        self.max_wait = max_wait
        self.retries = retries
        self._sleep = sleep
        self._clock = clock
        self._allowances: dict[str, Allowance] = {}
        self.tokens = Tokens(self._token_answer, clock=clock, entries=cache_entries)
        self._challenges = Challenges(self.tokens)
        #: Docker Hub's pull allowance, per host, as its answers tell it.
        self.pulls = PullReserve(clock)
        self._manifests: Recent[tuple[str, str], Any] = Recent(cache_entries)
        self._configs: Recent[tuple[str, str], dict[str, Any]] = Recent(cache_entries)
        self._fetching: dict[tuple[str, str], asyncio.Future[tuple[Any, ManifestHead]]] = {}
        #: Requests made, by kind: "GET tags", "HEAD manifest", "GET manifest", "GET blob", ...
        self.stats: Counter[str] = Counter()

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections."""
        if self._transport is not None:
            await self._transport.aclose()

    # --- the API ----------------------------------------------------------------------------

    async def list_tags(self, repository: Repository) -> list[str]:
        """Every tag of the repository, following `Link` pages verbatim."""
        url = f"{repository.base_url}/v2/{repository.name}/tags/list?n={TAG_PAGE_SIZE}"
        tags: list[str] = []
        seen: set[str] = set()
        for _ in range(MAX_TAG_PAGES):
            seen.add(url)
            answer = await self._call(repository, "GET", url, "GET tags", MAX_TAG_PAGE_BYTES)
            page = answer.json("the tag list", repository)
            if not isinstance(page, dict) or not isinstance(page.get("tags") or [], list):
                raise RegistryProtocolError(
                    "the tag list has no 'tags' array", **repository.where()
                )
            tags.extend(tag for tag in page.get("tags") or [] if isinstance(tag, str))
            if len(tags) > MAX_TAGS:
                raise RegistryProtocolError(
                    f"the repository lists more than {MAX_TAGS:,} tags", **repository.where()
                )
            following = _next_link(answer.headers.getall("link", []))
            if following is None:
                return list(dict.fromkeys(tags))
            url = urljoin(answer.url, following)
            if url in seen:
                raise RegistryProtocolError(
                    "the tag list's next page is one already read (a paging loop)",
                    **repository.where(),
                )
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
        return ManifestHead(digest=digest, media_type=media_type, size=int_of(length))

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
        self.pulls.keep(repository)
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

    async def push_dates(
        self, repository: Repository, registry_id: str, tags: list[str]
    ) -> dict[str, datetime]:
        """When tags were last pushed, from Docker Hub's, Quay's or GitLab's own API; {} when
        the registry has none or it fails (see `extras`)."""
        return await extras.push_dates(self, repository, registry_id, tags)

    async def get_plain(self, repository: Repository, url: str, kind: str, limit: int) -> Answer:
        """A GET without credentials, through the same limits (the registries' own APIs)."""
        self.stats[kind] += 1
        return await self._fetch(repository, "GET", url, {}, limit)

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
            os=text_of(config.get("os")) or text_of(platform.get("os")),
            architecture=text_of(config.get("architecture"))
            or text_of(platform.get("architecture")),
            variant=text_of(config.get("variant")) or text_of(platform.get("variant")),
            size=size,
            created=extras.timestamp(config.get("created")),
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

    # --- requests, auth, pauses and retries ----------------------------------------------------

    async def _call(
        self,
        repository: Repository,
        method: str,
        url: str,
        kind: str,
        limit: int,
        *,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        attempt = 0
        challenged = False
        limited = 0.0  # seconds this request waited because the registry said "too many"
        allowance = self._allowance(repository)
        while True:
            attempt += 1
            if allowance.rest() > self.max_wait:  # the allowance waits out shorter pauses
                raise rate_limited(repository, allowance.rest())
            request_headers = dict(headers or {})
            probing = await self._challenges.begin(repository)
            answer: Answer | None = None
            try:
                authorization = (
                    None if probing else await self._challenges.authorization(repository)
                )
                if authorization:
                    request_headers["Authorization"] = authorization
                self.stats[kind] += 1
                answer = await self._fetch(repository, method, url, request_headers, limit)
            finally:
                if probing:
                    self._challenges.end(repository, answer)
            self.pulls.note(repository, answer)
            if answer.status == 401 and not challenged:
                challenged = True
                if self._challenges.learn(repository, answer):
                    continue
            if answer.status in (401, 403):
                raise refused(repository, answer)
            retry_after = answer.headers.get("retry-after")
            if answer.status == 429 or (answer.status == 503 and retry_after):
                metrics.REGISTRY_THROTTLED.labels(repository.host).inc()
                wait = parse_retry_after(retry_after)
                allowance.pause(wait)
                # Waiting is how a metered registry is read: go on while the waits stay short.
                if limited + wait <= self.max_wait:
                    limited += wait
                    continue
                raise rate_limited(repository, wait)
            allowance.answered()
            if answer.status >= 500:
                if attempt <= self.retries:
                    await self._sleep(min(2.0**attempt, self.max_wait))
                    continue
                raise RegistryUnavailable(
                    f"server error {answer.status}{answer.detail()}",
                    oci_code=answer.oci_error()[0],
                    **repository.where(),
                )
            if answer.status == 404:
                code, message = answer.oci_error()
                raise RegistryNotFound(message or "not found", oci_code=code, **repository.where())
            if answer.status >= 400:
                raise RegistryError(
                    f"{method} answered {answer.status}{answer.detail()}",
                    oci_code=answer.oci_error()[0],
                    **repository.where(),
                )
            return answer

    async def _fetch(
        self, repository: Repository, method: str, url: str, headers: dict[str, str], limit: int
    ) -> Answer:
        """One request and its redirects, within the registry's requests in flight."""
        origin = _origin(url)
        slots = self._allowance(repository)
        for _ in range(MAX_REDIRECTS + 1):
            if _origin(url) != origin:  # credentials are for the origin they were given to
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            async with slots:
                reply = await self._exchange(repository, method, url, headers, limit)
            location = reply.headers.get("location")
            if reply.status not in REDIRECTS or location is None:
                return Answer(reply.status, reply.headers, reply.body, url)
            following = urljoin(url, location)
            scheme = urlsplit(following).scheme
            if urlsplit(url).scheme == "https" and scheme != "https":
                raise RegistryProtocolError(
                    f"the registry redirected from https to {scheme or 'another scheme'}, which "
                    "dockyard does not follow (it would send the request in clear text)",
                    **repository.where(),
                )
            url = following
            method = "GET" if reply.status == 303 else method
        raise RegistryProtocolError(f"more than {MAX_REDIRECTS} redirects", **repository.where())

    async def _exchange(
        self, repository: Repository, method: str, url: str, headers: dict[str, str], limit: int
    ) -> Reply:
        host = repository.host
        started = time.perf_counter()
        status = "error"
        try:
            reply = await self._send(
                method, url, {**DEFAULT_HEADERS, **headers}, limit=limit, timeout=self._timeout
            )
            status = str(reply.status)
            return reply
        except AnswerTooLarge as error:
            size = f"of {error.declared:,} bytes " if error.declared is not None else ""
            raise RegistryProtocolError(
                f"an answer {size}is larger than the {error.limit:,} bytes dockyard reads",
                **repository.where(),
            ) from None
        except TransportTimeout:
            raise RegistryUnavailable(
                f"timed out (no whole answer within {self._timeout:g} s)", **repository.where()
            ) from None
        except Unreachable as error:
            raise RegistryUnavailable(
                f"unreachable: {error.message}", **repository.where()
            ) from None
        except MalformedAnswer as error:
            raise RegistryProtocolError(error.message, **repository.where()) from None
        except RegistryHostRefused as error:  # told as the repository's problem
            text = error.message.removeprefix(f"{error.host}: ")
            if error.host != repository.host.partition(":")[0].lower():
                text += " (a redirect or token service of the registry pointed there)"
            raise RegistryHostRefused(text, **repository.where()) from None
        finally:
            metrics.REGISTRY_REQUESTS.labels(host, method, status).inc()
            metrics.REGISTRY_DURATION.labels(host).observe(time.perf_counter() - started)

    async def _token_answer(
        self, repository: Repository, url: str, headers: dict[str, str]
    ) -> Answer:
        self.stats["GET token"] += 1
        return await self._fetch(repository, "GET", url, headers, MAX_TOKEN_BYTES)

    def _allowance(self, repository: Repository) -> Allowance:
        allowance = self._allowances.get(repository.base_url)
        if allowance is None:
            allowance = Allowance(repository.max_in_flight, clock=self._clock, sleep=self._sleep)
            self._allowances[repository.base_url] = allowance
        return allowance


# --- helpers ----------------------------------------------------------------------------------


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return (parts.scheme, *host_and_port(parts))


def _next_link(values: list[str]) -> str | None:
    for value in values:
        for part in value.split(","):
            match = re.match(r"\s*<([^>]*)>\s*;(.*)", part)
            if match and re.search(r'rel\s*=\s*"?next"?', match.group(2)):
                return match.group(1)
    return None
