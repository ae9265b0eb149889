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

#: The first key of dockyard's advisory locks on tools (the second is the tool id), and on
#: workflows (the second is the workflow id).
LOCK_SPACE = 0x646B79  # "dky"
WORKFLOW_LOCK_SPACE = 0x646B77  # "dkw"
_WHAT = {LOCK_SPACE: "tool", WORKFLOW_LOCK_SPACE: "workflow"}


class RefreshInProgress(Conflict):
    """Another process is refreshing this tool right now."""

    code = "refresh_in_progress"


class ToolLocks(Protocol):
    """Holds a tool's refresh lock for the length of a block, or raises `RefreshInProgress`."""

    def hold(self, tool_id: int) -> AbstractAsyncContextManager[None]: ...


class ProcessLocks:
    """Refresh locks within one process (the embedded mode)."""

    def __init__(self, what: str = "tool") -> None:
        self._held: set[int] = set()
        self._what = what

    @asynccontextmanager
    async def hold(self, tool_id: int) -> AsyncIterator[None]:
        if tool_id in self._held:
            raise RefreshInProgress(
                f"{self._what} {tool_id} is being refreshed right now; try again soon"
            )
        self._held.add(tool_id)
        try:
            yield
        finally:
            self._held.discard(tool_id)


class AdvisoryLocks:
    """Refresh locks shared by every process on one PostgreSQL database."""

    def __init__(self, engine: Engine, space: int = LOCK_SPACE) -> None:
        self._engine = engine
        self._space = space

    @asynccontextmanager
    async def hold(self, tool_id: int) -> AsyncIterator[None]:
        connection = await to_thread.run_sync(self._engine.connect)
        try:
            if not await to_thread.run_sync(_try_lock, connection, self._space, tool_id):
                raise RefreshInProgress(
                    f"{_WHAT[self._space]} {tool_id} is being refreshed by another process; "
                    "try again soon"
                )
            try:
                yield
            finally:
                await to_thread.run_sync(_unlock, connection, self._space, tool_id)
        finally:
            await to_thread.run_sync(connection.close)


def _try_lock(connection: Connection, space: int, tool_id: int) -> bool:
    query = text("SELECT pg_try_advisory_lock(:space, :tool)")
    got = bool(connection.execute(query, {"space": space, "tool": tool_id}).scalar())
    connection.commit()
    return got


def _unlock(connection: Connection, space: int, tool_id: int) -> None:
    connection.execute(
        text("SELECT pg_advisory_unlock(:space, :tool)"), {"space": space, "tool": tool_id}
    )
    connection.commit()


_process_locks: dict[tuple[str, int], ProcessLocks] = {}


def locks_for(engine: Engine, space: int = LOCK_SPACE) -> ToolLocks:
    """The lock kind that fits the database: advisory on PostgreSQL, in-process on SQLite.
    `space` keeps tools' locks apart from workflows' (`WORKFLOW_LOCK_SPACE`)."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLocks(engine, space)
    key = (str(engine.url), space)
    if key not in _process_locks:
        _process_locks[key] = ProcessLocks(_WHAT[space])
    return _process_locks[key]
