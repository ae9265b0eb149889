"""One refresh per tool at a time, across threads, processes and machines.

On PostgreSQL a session-level advisory lock, held on a connection of its own for the length of
the refresh, keeps every web and worker process from refreshing a tool twice at once; a
process that dies drops its connection and with it the lock. The embedded mode has a single
process, where an in-process set does the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from anyio import to_thread
from sqlalchemy import Connection, Engine, text

from dockyard.errors import Conflict

#: The first key of dockyard's advisory locks (the second is the tool id).
LOCK_SPACE = 0x646B79  # "dky"


class RefreshInProgress(Conflict):
    """Another process is refreshing this tool right now."""

    code = "refresh_in_progress"


class ToolLocks(Protocol):
    """Holds a tool's refresh lock for the length of a block, or raises `RefreshInProgress`."""

    def hold(self, tool_id: int) -> AbstractAsyncContextManager[None]: ...


class ProcessLocks:
    """Refresh locks within one process (the embedded mode)."""

    def __init__(self) -> None:
        self._held: set[int] = set()

    @asynccontextmanager
    async def hold(self, tool_id: int) -> AsyncIterator[None]:
        if tool_id in self._held:
            raise RefreshInProgress(f"tool {tool_id} is being refreshed right now; try again soon")
        self._held.add(tool_id)
        try:
            yield
        finally:
            self._held.discard(tool_id)


class AdvisoryLocks:
    """Refresh locks shared by every process on one PostgreSQL database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def hold(self, tool_id: int) -> AsyncIterator[None]:
        connection = await to_thread.run_sync(self._engine.connect)
        try:
            if not await to_thread.run_sync(_try_lock, connection, tool_id):
                raise RefreshInProgress(
                    f"tool {tool_id} is being refreshed by another process; try again soon"
                )
            try:
                yield
            finally:
                await to_thread.run_sync(_unlock, connection, tool_id)
        finally:
            await to_thread.run_sync(connection.close)


def _try_lock(connection: Connection, tool_id: int) -> bool:
    query = text("SELECT pg_try_advisory_lock(:space, :tool)")
    got = bool(connection.execute(query, {"space": LOCK_SPACE, "tool": tool_id}).scalar())
    connection.commit()
    return got


def _unlock(connection: Connection, tool_id: int) -> None:
    connection.execute(
        text("SELECT pg_advisory_unlock(:space, :tool)"), {"space": LOCK_SPACE, "tool": tool_id}
    )
    connection.commit()


_process_locks: dict[str, ProcessLocks] = {}


def locks_for(engine: Engine) -> ToolLocks:
    """The lock kind that fits the database: advisory on PostgreSQL, in-process on SQLite."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLocks(engine)
    key = str(engine.url)
    if key not in _process_locks:
        _process_locks[key] = ProcessLocks()
    return _process_locks[key]
