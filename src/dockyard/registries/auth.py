"""How registries want to be asked: `WWW-Authenticate` challenges, Basic, and Bearer tokens.

A registry says once, in a 401's challenge, whether it takes Basic credentials or tokens from
a token service (distribution's token authentication). Tokens are asked for a set of
repository scopes at once: the token specification allows `scope` to repeat, so the
repositories that need a token at about the same time (a refresh of many tools of one
registry starts them together) share one request, and every scope's token is kept until it
is about to expire.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from dockyard.errors import RegistryAuthFailed, RegistryUnavailable
from dockyard.registries.lru import Recent
from dockyard.registries.repository import Answer, Credentials, Repository

MAX_TOKEN_BYTES = 64 * 1024
DEFAULT_TOKEN_LIFETIME = 60.0
#: Seconds before a token's end when it is no longer used.
TOKEN_MARGIN = 10.0
#: Scopes asked in one token request (the request's address stays a few kilobytes).
MAX_SCOPES = 50
#: Seconds a token request waits for other repositories that need a token from the same
#: service with the same credentials.
GATHER_WINDOW = 0.05

TokenFetch = Callable[[Repository, str, dict[str, str]], Awaitable[Answer]]


@dataclass(frozen=True)
class Challenge:
    """One registry's answer to an unauthenticated request."""

    scheme: str  # "bearer", "basic"
    realm: str | None = None
    service: str | None = None


_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """The Bearer and Basic challenges of `WWW-Authenticate` headers, in order; others are
    skipped. One header may hold several challenges, each with its own parameters."""
    found: list[Challenge] = []
    for value in values:
        text = value.strip()
        while text:
            scheme, _, rest = text.partition(" ")
            params: dict[str, str] = {}
            position = 0
            for match in _CHALLENGE_PARAM.finditer(rest):
                if rest[position : match.start()].strip(" ,\t"):
                    break  # the next challenge's scheme
                key, quoted, bare = match.groups()
                params.setdefault(key.lower(), quoted if quoted is not None else bare)
                position = match.end()
            if scheme.lower() in {"bearer", "basic"}:
                found.append(Challenge(scheme.lower(), params.get("realm"), params.get("service")))
            text = rest[position:].strip(" ,\t") if position else ""
    return found


def basic(credentials: Credentials) -> str:
    """The Basic `Authorization` value of the credentials."""
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass
class _Batch:
    """Scopes waiting for one token request."""

    future: asyncio.Future[str]
    scopes: dict[str, Repository] = field(default_factory=dict)


_Group = tuple[str, str, Credentials | None]


class Tokens:
    """Bearer tokens per (realm, service, scope, user), asked for several scopes at once."""

    def __init__(
        self,
        fetch: TokenFetch,
        *,
        clock: Callable[[], float] = time.monotonic,
        entries: int,
        gather_window: float = GATHER_WINDOW,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._window = gather_window
        self._cache: Recent[tuple[str, str, str, str], tuple[str, float]] = Recent(entries)
        #: The batch each group is gathering; a batch leaves when its request is sent.
        self._batches: dict[_Group, _Batch] = {}

    def forget(self, realm: str, scope: str) -> None:
        """Drop the tokens of a scope, which the registry no longer accepts."""
        for key in [key for key in self._cache if key[0] == realm and key[2] == scope]:
            del self._cache[key]

    async def token(self, repository: Repository, challenge: Challenge) -> str:
        """A token that lets the repository be read, from the cache or the token service."""
        if not challenge.realm:
            raise RegistryAuthFailed("the Bearer challenge names no realm", **repository.where())
        cached = self._cache.get(_cache_key(challenge, repository))
        if cached and cached[1] > self._clock():
            return cached[0]
        group = (challenge.realm, challenge.service or "", repository.credentials)
        batch = self._batches.get(group)
        if batch is None or len(batch.scopes) >= MAX_SCOPES:
            batch = _Batch(future=asyncio.get_running_loop().create_future())
            self._batches[group] = batch
            asyncio.get_running_loop().create_task(self._send(group, batch, challenge))
        batch.scopes.setdefault(repository.pull_scope, repository)
        try:
            return await asyncio.shield(batch.future)
        except RegistryAuthFailed as error:  # told as this repository's problem
            raise RegistryAuthFailed(error.message, **repository.where()) from None

    async def _send(self, group: _Group, batch: _Batch, challenge: Challenge) -> None:
        await asyncio.sleep(self._window)
        if self._batches.get(group) is batch:  # a full batch was already replaced
            del self._batches[group]
        try:
            token, lifetime = await self._ask(list(batch.scopes.values()), challenge)
        except Exception as error:
            batch.future.set_exception(error)
            batch.future.exception()  # retrieved: every waiter may have gone
            return
        expires = self._clock() + max(lifetime - TOKEN_MARGIN, lifetime / 2)
        for repository in batch.scopes.values():
            self._cache[_cache_key(challenge, repository)] = (token, expires)
        batch.future.set_result(token)

    async def _ask(self, repositories: list[Repository], challenge: Challenge) -> tuple[str, float]:
        first = repositories[0]
        query = [("scope", repository.pull_scope) for repository in repositories]
        if challenge.service:
            query.append(("service", challenge.service))
        realm = challenge.realm or ""
        url = f"{realm}{'&' if '?' in realm else '?'}{urlencode(query)}"
        headers = {}
        if first.credentials is not None:
            headers["Authorization"] = basic(first.credentials)
        try:
            answer = await self._fetch(first, url, headers)
        except RegistryUnavailable as error:
            raise RegistryAuthFailed(
                f"the token server at {urlsplit(realm).netloc} failed: {error.message}",
                **first.where(),
            ) from None
        if answer.status in (401, 403):
            raise RegistryAuthFailed(
                "the token server refused the credentials"
                if first.credentials
                else "the token server refused anonymous access: the image needs credentials",
                **first.where(),
            )
        if answer.status != 200:
            raise RegistryAuthFailed(f"the token server answered {answer.status}", **first.where())
        body = answer.json("the token server's answer", first)
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryAuthFailed("the token server sent no token", **first.where())
        lifetime = body.get("expires_in")
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        return token, float(lifetime)


def _cache_key(challenge: Challenge, repository: Repository) -> tuple[str, str, str, str]:
    """A token's place in the cache: its service, the scope, and whose it is."""
    user = repository.credentials.username if repository.credentials else ""
    return (challenge.realm or "", challenge.service or "", repository.pull_scope, user)


#: A registry learnt to need no credentials (it answered without a challenge).
_OPEN: list[Challenge] = []


class Challenges:
    """What each registry asks of a client, learnt by one request while the others wait, and
    the `Authorization` that answers it."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens
        #: base URL -> its challenges (`_OPEN` when it needs none), once learnt.
        self._known: dict[str, list[Challenge]] = {}
        #: base URL -> the first request's end, which the others wait for.
        self._probes: dict[str, asyncio.Future[None]] = {}

    async def begin(self, repository: Repository) -> bool:
        """Wait until the registry's challenge is known, or be the request that learns it
        (True: send without credentials, then `end`)."""
        base = repository.base_url
        while base not in self._known:
            probe = self._probes.get(base)
            if probe is None:
                self._probes[base] = asyncio.get_running_loop().create_future()
                return True
            await asyncio.shield(probe)
        return False

    def end(self, repository: Repository, answer: Answer | None) -> None:
        """The learning request's answer (None: it failed, and the next request learns)."""
        base = repository.base_url
        probe = self._probes.pop(base, None)
        if answer is not None and answer.status == 401:
            self._known[base] = parse_challenges(answer.headers.getall("www-authenticate", []))
        elif answer is not None and base not in self._known:
            self._known[base] = _OPEN
        if probe is not None and not probe.done():
            probe.set_result(None)

    async def authorization(self, repository: Repository) -> str | None:
        """The `Authorization` value the registry's challenge asks for, if any."""
        challenges = self._known.get(repository.base_url) or []
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        if bearer is not None:
            return f"Bearer {await self.tokens.token(repository, bearer)}"
        if challenges and repository.credentials is not None:
            return basic(repository.credentials)
        return None

    def learn(self, repository: Repository, answer: Answer) -> bool:
        """Remember a 401's challenges; True when asking again can succeed."""
        challenges = parse_challenges(answer.headers.getall("www-authenticate", []))
        if not challenges:
            return False
        self._known[repository.base_url] = challenges
        first = challenges[0]
        if first.scheme == "basic":
            return repository.credentials is not None
        if first.realm:
            self.tokens.forget(first.realm, repository.pull_scope)
        return True


def refused(repository: Repository, answer: Answer) -> RegistryAuthFailed:
    """The error for a 401 or 403 that asking again will not change."""
    if answer.status == 403:
        text = "access denied"
    elif repository.credentials is None:
        text = "the registry needs credentials for this image"
    else:
        text = "the registry refused the credentials"
    code = answer.oci_error()[0]
    return RegistryAuthFailed(f"{text}{answer.detail()}", oci_code=code, **repository.where())
