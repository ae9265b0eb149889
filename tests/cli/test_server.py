"""`dockyard serve` and `dockyard db` as real processes: a fresh data dir, the demo, migrations, one-line errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from dockyard import db
from tests.support.app import TEST_SECRET_KEY
from tests.support.cli import assert_one_line_error, run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_creates_the_embedded_database_loads_the_demo_and_becomes_ready(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env["DOCKYARD_DATA_DIR"] = str(tmp_path / "data")
    process = subprocess.Popen(
        [sys.executable, "-m", "dockyard", "serve", "--port", str(port), "--demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None, process.communicate(timeout=5)[0].decode()
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "database": "sqlite"}
        assert httpx.get(f"http://127.0.0.1:{port}/registries").status_code == 200
        demo = httpx.get(f"http://127.0.0.1:{port}/api/tools", params={"q": "samtools"}).json()
        assert [tool["path"] for tool in demo["items"]] == ["quay.io/biocontainers/samtools"]
        assert (tmp_path / "data" / "dockyard.db").exists()
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def test_serve_with_a_bad_setting_exits_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env |= {"DOCKYARD_DATA_DIR": str(tmp_path), "DOCKYARD_DATABASE_URL": "oracle://x/y"}
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "dockyard: error: DOCKYARD_DATABASE_URL uses 'oracle'; dockyard supports sqlite:// and postgresql://"
    ]


def test_a_bad_database_url_is_one_line(tmp_path: Path) -> None:
    result = run(
        ["users", "list"],
        {"DOCKYARD_DATABASE_URL": "mysql://h/db", "DOCKYARD_DATA_DIR": str(tmp_path)},
    )
    assert_one_line_error(result, "supports sqlite:// and postgresql://")


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    env = {
        "DOCKYARD_DATABASE_URL": "postgresql://u:topsecret@127.0.0.1:1/db",
        "DOCKYARD_SECRET_KEY": TEST_SECRET_KEY,
    }
    result = run(["users", "list"], env)
    assert_one_line_error(result, "did not answer")
    assert "topsecret" not in result.output


def test_db_upgrade_migrates_a_fresh_database_and_is_idempotent(tmp_path: Path) -> None:
    env = {"DOCKYARD_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}
    first = run(["db", "upgrade"], env)
    assert first.exit_code == 0, first.output
    assert f"upgraded from empty to {db.head_revision()}" in first.stdout
    assert "already at" in run(["db", "upgrade"], env).stdout
    assert f"current: {db.head_revision()}" in run(["db", "current"], env).stdout


@pytest.mark.postgresql
def test_postgresql_with_an_old_schema_asks_for_db_upgrade(postgresql_url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(postgresql_url)
    empty = f"{url.database}_empty"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{empty}"'))
    try:
        env = {
            "DOCKYARD_DATABASE_URL": url.set(database=empty).render_as_string(hide_password=False),
            "DOCKYARD_SECRET_KEY": TEST_SECRET_KEY,
        }
        assert_one_line_error(run(["users", "list"], env), "run `dockyard db upgrade` first")
        assert run(["db", "upgrade"], env).exit_code == 0
        assert run(["users", "list"], env).exit_code == 0
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{empty}" WITH (FORCE)'))
        admin.dispose()


def test_the_demo_catalog_loads_once_into_an_empty_database(engine: Engine) -> None:
    from sqlalchemy import func, select

    from dockyard.catalog.demo import DEMO_TOOLS, load_demo
    from dockyard.catalog.listing import ToolQuery, find_tools
    from dockyard.catalog.models import Tool
    from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog

    catalog = Catalog(BUILTIN_REGISTRIES)
    with db.unit_of_work(db.make_sessionmaker(engine)) as unit:
        assert load_demo(unit, catalog) == len(DEMO_TOOLS)
    with db.unit_of_work(db.make_sessionmaker(engine)) as unit:
        assert load_demo(unit, catalog) == 0
        assert unit.scalar(select(func.count()).select_from(Tool)) == len(DEMO_TOOLS)
        page = find_tools(unit, None, ToolQuery(q="samtools"))
        assert [t.path for t in page.items] == ["quay.io/biocontainers/samtools"]
        assert page.items[0].descriptor_types == ",CWL,"
