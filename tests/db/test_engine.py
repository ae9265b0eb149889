"""The engine for each backend: what a request can count on from the connection pool."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import text

from dockyard import db


def test_sqlite_opens_more_connections_than_its_pool_instead_of_making_a_request_wait(
    tmp_path: Path,
) -> None:
    # More requests at once than request threads: each still gets a connection at once, where
    # a bounded pool would make the later ones wait and then fail with a pool timeout (500).
    engine = db.make_engine(f"sqlite:///{tmp_path}/pool.db")
    engine.pool._timeout = 1  # type: ignore[attr-defined]  # a bounded pool would fail fast
    wanted = db.SQLITE_POOL * 2
    with ExitStack() as held:
        connections = [held.enter_context(engine.connect()) for _ in range(wanted)]
        assert [c.execute(text("SELECT 1")).scalar() for c in connections] == [1] * wanted
    engine.dispose()


def test_sqlite_in_memory_keeps_one_database_for_the_thread() -> None:
    engine = db.make_engine("sqlite:///:memory:")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 0
