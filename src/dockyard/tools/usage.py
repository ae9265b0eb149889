"""How often tools are used, counted in memory and added to the database in batches.

A use is a fetch that runs a tool: a TRS descriptor, its files or zip, or the pull
instructions. Reads must not write, so each process counts in memory and adds its counts
with one additive UPDATE per tool every `FLUSH_SECONDS` (and when it stops); additive
updates from many processes never overwrite each other.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from contextlib import suppress

from anyio import to_thread
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from dockyard.db import unit_of_work
from dockyard.tools.models import Tool

log = logging.getLogger("dockyard.usage")
FLUSH_SECONDS = 30.0


class UsageCounter:
    """Uses per tool since the last flush; safe to share between threads."""

    def __init__(self) -> None:
        self._counts: Counter[int] = Counter()
        self._lock = threading.Lock()

    def add(self, tool_id: int) -> None:
        """Count one use."""
        with self._lock:
            self._counts[tool_id] += 1

    def flush(self, sessions: sessionmaker[Session]) -> int:
        """Add the counts to the tools; how many tools were updated."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        if not counts:
            return 0
        try:
            with unit_of_work(sessions) as session:
                for tool_id, uses in sorted(counts.items()):
                    session.execute(
                        update(Tool).where(Tool.id == tool_id).values(uses=Tool.uses + uses)
                    )
        except Exception:
            with self._lock:
                self._counts.update(counts)  # keep them for the next flush
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
