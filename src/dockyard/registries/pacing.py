"""How fast the registry client asks one registry: at most `max_in_flight` requests at once,
the pauses the registry asked for, and, once it has said "too many", a pace it allows.

A registry that meters requests per second answers 429 (or 503) with `Retry-After` once the
client goes faster than it allows. Every request to that registry then waits until the time
it named: one pause for all, not one per request, including requests that were already
waiting for their turn. The answers the registry accepted in the last `Retry-After` window
(at least a second) tell its rate; from then on requests are spaced to 90% of it, so the
client settles just below the limit instead of meeting it again as soon as the pause ends.
Each second's worth of answers without a 429 raises the pace by 5%, so a limit that was
lifted is found again.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType

from dockyard import metrics
from dockyard.errors import RegistryRateLimited
from dockyard.registries.repository import Answer, Repository

#: Share of the registry's observed rate the client keeps to after a 429.
BELOW = 0.9
#: Growth of the pace per second of answers without a 429.
GROWTH = 1.05
#: Answers accepted in the window before a 429 that tell a rate; fewer (a quota, not a
#: rate, or a first request refused) only pause.
MIN_SAMPLE = 10
#: Answers remembered to tell the registry's rate.
REMEMBERED = 10_000
#: Docker Hub pulls (manifest GETs) left unused in its window, for the people who share the
#: address: below this, refresh stops GETting manifests there until the window ends.
PULL_RESERVE = 5
#: Docker Hub's window when its header does not say (six hours).
PULL_WINDOW = 21600.0


class Allowance:
    """Requests to one registry: at most `limit` in flight, paused and paced as it asked."""

    def __init__(
        self,
        limit: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limit = limit
        self.in_flight = 0
        #: Requests a second to keep to (None: as fast as `limit` allows).
        self.rate: float | None = None
        #: Until when (clock time) no request is sent: the registry asked.
        self.paused_until = 0.0
        self._clock = clock
        self._sleep = sleep
        self._turns = asyncio.Semaphore(limit)
        self._answered: deque[float] = deque(maxlen=REMEMBERED)
        self._next = 0.0
        self._calm = 0

    async def __aenter__(self) -> None:
        await self._turns.acquire()
        self.in_flight += 1
        try:
            # Holding its turn: nothing is sent meanwhile anyway.
            await self._wait_for_pace()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.in_flight -= 1
        self._turns.release()

    async def _wait_for_pace(self) -> None:
        now = self._clock()
        start = max(now, self.paused_until)
        if self.rate is not None:
            start = max(start, self._next)
            self._next = start + 1 / self.rate
        if start > now:
            await self._sleep(start - now)

    def pause(self, seconds: float) -> None:
        """The registry asked to wait `seconds`: pause it, and keep below the rate it
        accepted (measured once per pause: the requests in flight meet the same limit)."""
        now = self._clock()
        if now >= self.paused_until:
            window = max(1.0, seconds)
            accepted = sum(1 for moment in self._answered if moment > now - window)
            if accepted >= MIN_SAMPLE:  # too few accepted tell no rate: only the pause then
                rate = max(1.0, BELOW * accepted / window)
                self.rate = rate if self.rate is None else min(rate, self.rate)
                self._calm = 0
        self.paused_until = max(self.paused_until, now + seconds)

    def answered(self) -> None:
        """An answer that was not "too many"."""
        self._answered.append(self._clock())
        if self.rate is None:
            return
        self._calm += 1
        if self._calm >= self.rate:
            self._calm = 0
            self.rate *= GROWTH

    def rest(self) -> float:
        """Seconds the registry's pause still lasts (0 or less: none)."""
        return self.paused_until - self._clock()


class PullReserve:
    """Docker Hub's pull allowance (`ratelimit-remaining: 76;w=21600`), per host: the last
    `PULL_RESERVE` pulls of a window are left for the people who share the address."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: host -> pulls left when last told.
        self.remaining: dict[str, int] = {}
        self._window: dict[str, tuple[float, float]] = {}

    def note(self, repository: Repository, answer: Answer) -> None:
        """Read the allowance an answer tells."""
        header = answer.headers.get("ratelimit-remaining")
        if not header:
            return
        count, _, window = header.partition(";")
        value = _int(count.strip())
        if value is not None:
            self.remaining[repository.host] = value
            metrics.REGISTRY_ALLOWANCE.labels(repository.host).set(value)
            seconds = _int(window.strip().removeprefix("w=")) or PULL_WINDOW
            self._window[repository.host] = (self._clock(), float(seconds))

    def keep(self, repository: Repository) -> None:
        """Refuse a pull that would spend the reserve, until the window has passed."""
        remaining = self.remaining.get(repository.host)
        if remaining is None or remaining > PULL_RESERVE:
            return
        seen, window = self._window[repository.host]
        rest = seen + window - self._clock()
        if rest <= 0:
            del self.remaining[repository.host]
            return
        raise rate_limited(
            repository,
            rest,
            f"{remaining} pulls are left in the registry's allowance, kept for other uses",
        )


def rate_limited(repository: Repository, seconds: float, why: str = "") -> RegistryRateLimited:
    """The error that says until when the registry is not asked, and why."""
    until = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S UTC")
    return RegistryRateLimited(
        f"rate-limited until {until}{f' ({why})' if why else ''}; refresh tries again then",
        retry_after=seconds,
        **repository.where(),
    )


def retry_after(value: str | None) -> float:
    """Seconds a `Retry-After` value (seconds or an HTTP date) asks for; 1 when unreadable."""
    if not value:
        return 1.0
    if value.strip().isdigit() and value.strip().isascii():
        return float(value.strip())
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 1.0
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None
