"""What an action asks of the database: its statements and its commits, as the engine sees them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event


def statements_during(engine: Engine, action: Callable[[], Any]) -> list[str]:
    """The SQL of every statement the engine ran while `action` ran."""
    seen: list[str] = []

    def note(_connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return seen


def commits_during(engine: Engine, action: Callable[[], Any]) -> int:
    """How many transactions the engine committed while `action` ran."""
    seen: list[object] = []

    def note(connection: object) -> None:
        seen.append(connection)

    event.listen(engine, "commit", note)
    try:
        action()
    finally:
        event.remove(engine, "commit", note)
    return len(seen)
