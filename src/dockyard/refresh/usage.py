"""How often tools are used, and when API tokens were last used, kept in memory and written
to the database in batches.

A use is a fetch that runs a tool: a TRS descriptor, its files or zip, or the pull
instructions. Reads must not write (on SQLite a write takes the database's lock, and a read
that waits for it behind a refresh fails), so each process counts in memory and adds its
counts with one additive UPDATE per tool every `FLUSH_SECONDS` (and when it stops); additive
updates from many processes never overwrite each other. A token's `last_used_at` is moved
forward the same way, never back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from contextlib import suppress
from datetime import datetime

from anyio import to_thread
from sqlalchemy import or_, update
from sqlalchemy.orm import Session, sessionmaker

from dockyard.accounts.models import ApiToken
from dockyard.catalog.models import Tool
from dockyard.db import unit_of_work

log = logging.getLogger("dockyard.usage")
FLUSH_SECONDS = 30.0


class UsageCounter:
    """Uses per tool since the last flush; safe to share between threads."""

    def __init__(self) -> None:
        self._counts: Counter[int] = Counter()
        self._tokens: dict[int, datetime] = {}
        self._lock = threading.Lock()

    def token_used(self, token_id: int, when: datetime) -> None:
        """Note that a token was used (its `last_used_at` is written at the next flush)."""
        with self._lock:
            self._tokens[token_id] = max(when, self._tokens.get(token_id, when))

    def add(self, tool_id: int) -> None:
        """Count one use."""
        with self._lock:
            self._counts[tool_id] += 1

    def flush(self, sessions: sessionmaker[Session]) -> int:
        """Add the counts to the tools; how many tools were updated."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
            tokens, self._tokens = self._tokens, {}
        if not counts and not tokens:
            return 0
        try:
            with unit_of_work(sessions) as session:
                for tool_id, uses in sorted(counts.items()):
                    session.execute(
                        update(Tool).where(Tool.id == tool_id).values(uses=Tool.uses + uses)
                    )
                for token_id, when in sorted(tokens.items()):
                    session.execute(
                        update(ApiToken)
                        .where(
                            ApiToken.id == token_id,
                            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < when),
                        )
                        .values(last_used_at=when)
                    )
        except Exception:
            with self._lock:
                self._counts.update(counts)  # keep them for the next flush
            for token_id, when in tokens.items():
                self.token_used(token_id, when)
            raise
        return len(counts)


async def run_usage_flusher(
    counter: UsageCounter,
    sessions: sessionmaker[Session],
    stop: asyncio.Event,
    *,
    every: float = FLUSH_SECONDS,
) -> None:
    """Flush every `every` seconds until `stop`, then once more."""
    while not stop.is_set():
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
        try:
            await to_thread.run_sync(counter.flush, sessions)
        except Exception:
            log.exception("adding tool uses failed; they are kept for the next try")
