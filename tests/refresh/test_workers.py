"""`dockyard worker` processes on PostgreSQL share refreshes, never overlap, survive a kill."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select, text

from dockyard import db
from dockyard.accounts import services as accounts
from dockyard.catalog import services
from dockyard.catalog.models import Tool
from dockyard.refresh.models import RefreshRun
from dockyard.refresh.tasks import build_queue
from dockyard.settings import Settings
from tests.support.app import TEST_SECRET_KEY
from tests.support.catalog import CATALOG
from tests.support.network import free_port
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.postgresql


@pytest.fixture
def pg(postgresql_url: str) -> Iterator[Engine]:
    engine = db.make_engine(postgresql_url)
    yield engine
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM procrastinate_jobs"))
        connection.execute(text("DELETE FROM tools"))
        connection.execute(text("DELETE FROM users"))
    engine.dispose()


def worker(postgresql_url: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env |= {
        "DOCKYARD_DATABASE_URL": postgresql_url,
        "DOCKYARD_SECRET_KEY": TEST_SECRET_KEY,
        "DOCKYARD_ALLOW_PRIVATE_NETWORK_REGISTRIES": "true",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "dockyard", "worker", "--log-level", "warning", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stderr is None:
        return ""
    with process.stderr:
        return process.stderr.read().decode(errors="replace")


def register_many(engine: Engine, hosts_and_repos: list[tuple[str, str]]) -> list[int]:
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        user = accounts.create_user(
            session,
            username=f"w{uuid.uuid4().hex[:6]}",
            email=f"{uuid.uuid4().hex[:6]}@example.org",
        )
        return [
            services.register_tool(
                session, CATALOG, user, services.Registration(image=f"{host}/{repo}")
            ).id
            for host, repo in hosts_and_repos
        ]


def enqueue(postgresql_url: str, engine: Engine, tool_ids: list[int]) -> None:
    settings = Settings(database_url=postgresql_url, secret_key=SecretStr(TEST_SECRET_KEY))

    async def go() -> None:
        queue = build_queue(settings, db.make_sessionmaker(engine))
        async with queue.app.open_async():
            for tool_id in tool_ids:
                assert await queue.enqueue(tool_id, "schedule")
            assert not await queue.enqueue(tool_ids[0], "schedule"), "a tool is queued at most once"

    asyncio.run(go())


def finished_runs(engine: Engine, tool_ids: list[int]) -> list[RefreshRun]:
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        found = list(session.scalars(select(RefreshRun).where(RefreshRun.tool_id.in_(tool_ids))))
        for run in found:
            session.expunge(run)
        return found


def test_two_workers_share_200_tools_and_never_refresh_one_twice_at_once(
    pg: Engine, postgresql_url: str, open_registry: LocalRegistry
) -> None:
    prefix = f"fleet-{uuid.uuid4().hex[:6]}"
    repos = [f"{prefix}/tool{n}" for n in range(200)]
    for n, repo in enumerate(repos):
        open_registry.push_image(repo, "1.0", salt=f"{prefix}{n}", layers=1)
    tool_ids = register_many(pg, [(open_registry.host, repo) for repo in repos])
    enqueue(postgresql_url, pg, tool_ids)

    workers = [worker(postgresql_url, "--concurrency", "4") for _ in range(2)]
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            runs = finished_runs(pg, tool_ids)
            if len({r.tool_id for r in runs if r.finished_at is not None}) == len(tool_ids):
                break
            assert all(w.poll() is None for w in workers), [stop(w) for w in workers]
            time.sleep(0.5)
    finally:
        logs = [stop(w) for w in workers]
    runs = finished_runs(pg, tool_ids)
    done = {r.tool_id for r in runs if r.status == "ok"}
    assert done == set(tool_ids), logs
    assert len({r.worker for r in runs}) == 2, "both workers took part"
    by_tool: dict[int, list[RefreshRun]] = {}
    for run in runs:
        by_tool.setdefault(run.tool_id, []).append(run)
    for tool_runs in by_tool.values():
        tool_runs.sort(key=lambda r: r.started_at)
        for earlier, later in itertools.pairwise(tool_runs):
            assert earlier.finished_at is not None and earlier.finished_at <= later.started_at, (
                "a tool was refreshed twice at once"
            )


class SlowProxy:
    """Forwards to a registry, holding the tag list for a while (a refresh in progress)."""

    def __init__(self, upstream: str, delay: float) -> None:
        self.port = free_port()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                if "/tags/list" in self.path:
                    time.sleep(delay)
                answer = httpx.request(
                    self.command,
                    f"{upstream}{self.path}",
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                )
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.content)

            do_GET = do_HEAD = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        del proxy

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_worker_killed_mid_refresh_loses_nothing_and_its_job_is_retried(
    pg: Engine, postgresql_url: str, open_registry: LocalRegistry, tmp_path: Path
) -> None:
    repo = f"killed-{uuid.uuid4().hex[:6]}/tool"
    open_registry.push_image(repo, "1.0", layers=1)
    proxy = SlowProxy(open_registry.url, delay=6)
    try:
        [tool_id] = register_many(pg, [(f"127.0.0.1:{proxy.port}", repo)])
        enqueue(postgresql_url, pg, [tool_id])
        first = worker(postgresql_url, "--stalled-after", "5")
        deadline = time.monotonic() + 60
        while not finished_runs(pg, [tool_id]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert finished_runs(pg, [tool_id]), stop(first)
        first.kill()
        first.wait()
        stop(first)
        with db.unit_of_work(db.make_sessionmaker(pg), write=False) as session:
            tool = session.get(Tool, tool_id)
            assert tool is not None and tool.versions == [] and tool.refreshed_at is None

        second = worker(postgresql_url, "--stalled-after", "5")
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if any(r.status == "ok" for r in finished_runs(pg, [tool_id])):
                    break
                assert second.poll() is None, stop(second)
                time.sleep(0.5)
        finally:
            log = stop(second)
        statuses = sorted(r.status for r in finished_runs(pg, [tool_id]))
        assert statuses == ["ok", "running"], log
        with db.unit_of_work(db.make_sessionmaker(pg), write=False) as session:
            tool = session.get(Tool, tool_id)
            assert tool is not None and [v.name for v in tool.versions] == ["1.0"]
    finally:
        proxy.close()


def test_worker_refuses_the_embedded_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")} | {
        "DOCKYARD_DATA_DIR": str(tmp_path)
    }
    result = subprocess.run(
        [sys.executable, "-m", "dockyard", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "dockyard worker needs PostgreSQL" in result.stderr
