"""`dockyard db backup` and `dockyard db restore` as an operator runs them: a backup taken
while 16 clients write holds every row committed before it began and nothing half-written;
a restore brings a backup back, keeps what it replaced, and refuses what is no backup."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, insert, select, text

from dockyard import db
from dockyard.catalog.models import Tool
from tests.support.app import bearer
from tests.support.network import free_port
from tests.support.processes import clean_environment, run, serving

WRITERS = 16


def _paths(database: Path) -> set[str]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {row[0] for row in connection.execute("SELECT path FROM tools")}


def test_a_backup_taken_while_16_clients_write_holds_every_committed_row(
    tmp_path: Path,
) -> None:
    env = clean_environment(
        DOCKYARD_DATA_DIR=str(tmp_path / "data"), DOCKYARD_BACKGROUND_REFRESH="false"
    )
    run(["users", "create", "ada", "--email", "ada@example.org"], env)
    token = run(["tokens", "create", "ada"], env).strip().splitlines()[-1]
    committed: list[tuple[float, str]] = []  # when the 201 arrived, and the tool's path
    failures: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def write(url: str, writer: int) -> None:
        with httpx.Client(base_url=url, headers=bearer(token), timeout=60) as client:
            n = 0
            while not stop.is_set():
                image = f"quay.io/backup{writer}/tool{n}"
                answer = client.post("/api/tools", json={"image": image})
                if answer.status_code != 201:
                    failures.append(f"{answer.status_code} {answer.text}")
                    return
                with lock:
                    committed.append((time.monotonic(), answer.json()["path"]))
                n += 1

    port = free_port()
    with serving(env, tmp_path / "serve.log", port=port) as server:
        threads = [
            threading.Thread(target=write, args=(server.url, n), daemon=True)
            for n in range(WRITERS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        began = time.monotonic()
        output = run(["db", "backup", str(tmp_path / "backup.db")], env)
        ended = time.monotonic()
        time.sleep(0.5)  # the writers go on after it, too
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not failures, failures[:3]
    assert "backed up the database to" in output and "secret_key" in output
    before = {path for at, path in committed if at < began}
    everything = {path for _, path in committed}
    during = {path for at, path in committed if began <= at <= ended}
    copied = _paths(tmp_path / "backup.db")
    assert len(before) > WRITERS  # the clients were writing
    assert before <= copied  # every row committed before the backup began
    assert copied <= everything  # and nothing that was never committed
    assert len(everything) > len(copied)  # writes went on while and after it was taken
    print(f"{len(before)} rows before, {len(during)} during, {len(everything)} in all")
    current = run(
        ["db", "current"],
        clean_environment(DOCKYARD_DATABASE_URL=f"sqlite:///{tmp_path / 'backup.db'}"),
    )
    assert f"current: {db.head_revision()}" in current  # it opens, migrated


def test_a_restore_brings_the_backup_back_and_keeps_what_it_replaced(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = clean_environment(DOCKYARD_DATA_DIR=str(data))
    run(["db", "upgrade"], env)
    engine = db.make_engine(f"sqlite:///{data / 'dockyard.db'}")
    add_tool(engine, "quay.io/lab/kept")
    run(["db", "backup", str(tmp_path)], env)  # a directory: a dated file in it
    (backup,) = tmp_path.glob("dockyard-*.db")
    add_tool(engine, "quay.io/lab/after-the-backup")
    engine.dispose()
    output = run(["db", "restore", str(backup), "--yes"], env)
    assert _paths(data / "dockyard.db") == {"quay.io/lab/kept"}
    (kept,) = data.glob("dockyard.db.before-restore-*")
    assert _paths(kept) == {"quay.io/lab/kept", "quay.io/lab/after-the-backup"}
    assert str(kept) in output


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"not a database at all", "is not a SQLite database"), (None, "not one of dockyard's")],
)
def test_a_restore_refuses_what_is_no_backup_and_changes_nothing(
    tmp_path: Path, content: bytes | None, says: str
) -> None:
    data = tmp_path / "data"
    env = clean_environment(DOCKYARD_DATA_DIR=str(data))
    run(["db", "upgrade"], env)
    engine = db.make_engine(f"sqlite:///{data / 'dockyard.db'}")
    add_tool(engine, "quay.io/lab/precious")
    engine.dispose()
    wrong = tmp_path / "wrong.db"
    if content is None:
        with sqlite3.connect(wrong) as other:
            other.execute("CREATE TABLE notes (body TEXT)")
    else:
        wrong.write_bytes(content)
    done = subprocess.run(
        [sys.executable, "-m", "dockyard", "db", "restore", str(wrong), "--yes"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert _paths(data / "dockyard.db") == {"quay.io/lab/precious"}
    assert not list(data.glob("*.before-restore-*"))


def add_tool(engine: Engine, path: str) -> None:
    host, _, repository = path.partition("/")
    with engine.begin() as connection:
        connection.execute(
            insert(Tool).values(
                path=path,
                registry_id="quay",
                host=host,
                repository=repository,
                namespace=repository.partition("/")[0],
                name=repository.rpartition("/")[2],
                search_text=path,
            )
        )


@pytest.mark.postgresql
def test_postgresql_backs_up_with_pg_dump_and_restores_into_a_new_database(
    postgresql_url: str, empty_postgresql: str, tmp_path: Path
) -> None:
    engine = db.make_engine(postgresql_url)
    path = f"quay.io/lab/dumped-{uuid.uuid4().hex[:6]}"
    add_tool(engine, path)
    source = clean_environment(DOCKYARD_DATABASE_URL=postgresql_url)
    output = run(["db", "backup", str(tmp_path / "dockyard.dump")], source)
    assert "backed up the database to" in output
    target = clean_environment(DOCKYARD_DATABASE_URL=empty_postgresql)
    run(["db", "restore", str(tmp_path / "dockyard.dump"), "--yes"], target)
    restored = db.make_engine(empty_postgresql)
    try:
        with restored.connect() as connection:
            paths = set(connection.execute(select(Tool.path)).scalars())
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert path in paths
        assert revision == db.head_revision()
    finally:
        restored.dispose()
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM tools WHERE path = :p"), {"p": path})
        engine.dispose()
