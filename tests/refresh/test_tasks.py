"""When refreshes run: schedule, locks, history, webhooks and the embedded scheduler."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select

from dockyard import db
from dockyard.catalog.models import Tool
from dockyard.db.types import utcnow
from dockyard.refresh.locks import AdvisoryLocks, ProcessLocks, RefreshInProgress
from dockyard.refresh.models import RefreshRun
from dockyard.refresh.services import due_tool_ids, reclaim_runs
from dockyard.refresh.tasks import mark_due, run_embedded_scheduler
from dockyard.settings import Settings
from tests.support.app import TEST_SECRET_KEY, MakeUser, bearer
from tests.support.catalog import CATALOG
from tests.support.raw_server import HangUpServer
from tests.support.refresh import Host, proxy, refresh, register, unique
from tests.support.registry import LocalRegistry


def tool_state(engine: Engine, tool_id: int) -> Tool:
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        tool = session.get(Tool, tool_id)
        assert tool is not None
        session.expunge(tool)
        return tool


def runs(engine: Engine, tool_id: int) -> list[RefreshRun]:
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        found = list(
            session.scalars(
                select(RefreshRun).where(RefreshRun.tool_id == tool_id).order_by(RefreshRun.id)
            )
        )
        for run in found:
            session.expunge(run)
        return found


def test_due_tools_are_the_never_refreshed_and_the_overdue_oldest_first(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    ids = [register(engine, open_registry, unique(f"due{n}")) for n in range(4)]
    now = utcnow()
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        for tool_id, offset in zip(ids, [None, -60, -3600, 3600], strict=True):
            tool = session.get(Tool, tool_id)
            assert tool is not None
            tool.next_refresh_at = None if offset is None else now + timedelta(seconds=offset)
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        assert due_tool_ids(session, now, 10) == [ids[0], ids[2], ids[1]]
        assert due_tool_ids(session, now, 1) == [ids[0]]


def test_a_refresh_is_recorded_and_schedules_the_next_within_the_jitter(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    repository = unique("history")
    open_registry.push_image(repository, "1.0")
    tool_id = register(engine, open_registry, repository)
    before = utcnow()
    refresh(engine, tool_id)
    tool = tool_state(engine, tool_id)
    assert tool.next_refresh_at is not None
    delay = (tool.next_refresh_at - before).total_seconds()
    assert 21600 * 0.9 <= delay <= 21600 * 1.1 + 60
    [run] = runs(engine, tool_id)
    assert (run.trigger, run.status) == ("manual", "ok")
    assert run.finished_at is not None and run.summary is not None and run.summary["added"] == 1


def due_now(engine: Engine) -> list[int]:
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        return due_tool_ids(session, utcnow(), 1000)


@pytest.mark.parametrize("webhook_meanwhile", [False, True])
def test_a_tool_being_refreshed_is_not_due_unless_a_webhook_marks_it_meanwhile(
    engine: Engine, open_registry: LocalRegistry, webhook_meanwhile: bool
) -> None:
    repository = unique("held")
    open_registry.push_image(repository, "1.0")
    tool_id = register(engine, open_registry, repository)
    assert tool_id in due_now(engine), "a tool never refreshed is due"
    seen_while_running: list[bool] = []

    def during(request: httpx.Request) -> None:
        if request.url.path.endswith("/tags/list"):
            seen_while_running.append(tool_id in due_now(engine))
            if webhook_meanwhile:
                mark_due(db.make_sessionmaker(engine), tool_id)

    assert refresh(engine, tool_id, transport=proxy(open_registry, during)).status == "ok"
    assert seen_while_running == [False], "a scheduler would have queued it a second time"
    # A push announced during the refresh may have come after the tag list was read.
    assert (tool_id in due_now(engine)) is webhook_meanwhile


def test_a_rate_limited_registry_is_asked_again_after_its_retry_after(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    repository = unique("ratelimited")
    open_registry.push_image(repository, "1.0")
    tool_id = register(engine, open_registry, repository)
    before = utcnow()
    report = refresh(
        engine,
        tool_id,
        transport=httpx.MockTransport(
            lambda request: httpx.Response(429, headers={"Retry-After": "900"})
        ),
    )
    assert report.status == "failed"
    tool = tool_state(engine, tool_id)
    assert tool.next_refresh_at is not None
    assert 890 <= (tool.next_refresh_at - before).total_seconds() <= 960


def test_process_locks_refuse_a_second_refresh_of_the_same_tool() -> None:
    locks = ProcessLocks()

    async def scenario() -> None:
        async with locks.hold(1):
            with pytest.raises(RefreshInProgress):
                async with locks.hold(1):
                    pass
            async with locks.hold(2):
                pass
        async with locks.hold(1):
            pass

    asyncio.run(scenario())


@pytest.mark.postgresql
def test_advisory_locks_are_shared_by_every_connection(postgresql_url: str) -> None:
    engine = db.make_engine(postgresql_url)
    first, second = AdvisoryLocks(engine), AdvisoryLocks(engine)

    async def scenario() -> None:
        async with first.hold(7):
            with pytest.raises(RefreshInProgress, match="another process"):
                async with second.hold(7):
                    pass
        async with second.hold(7):
            pass

    try:
        asyncio.run(scenario())
    finally:
        engine.dispose()


def test_the_embedded_scheduler_refreshes_due_tools_and_stops_cleanly(
    engine: Engine, database_url: str, open_registry: LocalRegistry, tmp_path: object
) -> None:
    repository = unique("scheduled")
    open_registry.push_image(repository, "1.0")
    tool_id = register(engine, open_registry, repository)
    settings = Settings(
        database_url=database_url,
        secret_key=SecretStr(TEST_SECRET_KEY),
        allow_private_network_registries=True,
    )
    sessions = db.make_sessionmaker(engine)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_embedded_scheduler(settings, sessions, CATALOG, stop, poll=0.05)
        )
        for _ in range(200):
            await asyncio.sleep(0.05)
            if runs(engine, tool_id) and runs(engine, tool_id)[0].finished_at is not None:
                break
        stop.set()
        await asyncio.wait_for(task, timeout=10)

    asyncio.run(scenario())
    [run] = runs(engine, tool_id)
    assert (run.trigger, run.status) == ("schedule", "ok")
    tool = tool_state(engine, tool_id)
    assert tool.refresh_status == "ok"
    assert tool.next_refresh_at is not None and tool.next_refresh_at > utcnow()


def test_a_registry_that_never_answers_holds_back_only_its_own_tool(
    engine: Engine, database_url: str, open_registry: LocalRegistry
) -> None:
    silent = HangUpServer(answer=False)
    stuck_id = register(engine, Host(f"127.0.0.1:{silent.port}"), unique("stuck"))  # type: ignore[arg-type]
    repository = unique("prompt")
    open_registry.push_image(repository, "1.0")
    prompt_id = register(engine, open_registry, repository)
    later = unique("later")
    open_registry.push_image(later, "1.0")
    later_id = register(engine, open_registry, later)
    sessions = db.make_sessionmaker(engine)
    with db.unit_of_work(sessions) as session:  # only the first two are due at first
        session.get(Tool, later_id).next_refresh_at = utcnow() + timedelta(hours=1)  # type: ignore[union-attr]
    settings = Settings(
        database_url=database_url,
        secret_key=SecretStr(TEST_SECRET_KEY),
        allow_private_network_registries=True,
        refresh_deadline=2.0,
    )
    finished: dict[int, float] = {}

    async def scenario() -> None:
        stop = asyncio.Event()
        started = time.monotonic()
        task = asyncio.create_task(
            run_embedded_scheduler(settings, sessions, CATALOG, stop, poll=0.05)
        )
        marked = False
        while len(finished) < 3 and time.monotonic() - started < 20:
            await asyncio.sleep(0.05)
            for tool_id in (stuck_id, prompt_id, later_id):
                done = [run for run in runs(engine, tool_id) if run.finished_at is not None]
                if done and tool_id not in finished:
                    finished[tool_id] = time.monotonic() - started
            if prompt_id in finished and not marked:
                mark_due(sessions, later_id)  # comes due while the stuck one still waits
                marked = True
        stop.set()
        await asyncio.wait_for(task, timeout=10)

    try:
        asyncio.run(scenario())
    finally:
        silent.close()
    assert finished[prompt_id] < 1.5 and finished[later_id] < 1.8, finished
    assert 2.0 <= finished[stuck_id] < 4.0, finished
    [run] = runs(engine, stuck_id)
    assert run.status == "failed"
    assert "did not finish within 2 s" in tool_state(engine, stuck_id).refresh_message  # type: ignore[operator]
    assert [r.status for r in runs(engine, later_id)] == ["ok"]


def test_runs_left_running_by_a_killed_worker_are_reclaimed(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    tool_id = register(engine, open_registry, unique("killed"))
    sessions = db.make_sessionmaker(engine)
    with db.unit_of_work(sessions) as session:
        session.add(
            RefreshRun(
                tool_id=tool_id,
                trigger="schedule",
                worker="gone:1",
                started_at=utcnow() - timedelta(hours=2),
            )
        )
        session.add(RefreshRun(tool_id=tool_id, trigger="manual", worker="alive:2"))
    assert reclaim_runs(sessions, timedelta(minutes=30)) == 1
    old, current = runs(engine, tool_id)
    assert (old.status, current.status) == ("failed", "running")
    assert old.finished_at is not None
    assert "worker gone:1 stopped" in (old.summary or {})["message"]
    assert reclaim_runs(sessions, timedelta(minutes=30)) == 0


def test_webhooks_need_the_secret_and_mark_the_tool_due(
    client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    _, ada = make_user("ada")
    _, grace = make_user("grace")
    tool = client.post(
        "/api/tools", json={"image": "quay.io/biocontainers/samtools"}, headers=bearer(ada)
    ).json()
    assert client.post(f"/api/tools/{tool['id']}/webhook", headers=bearer(grace)).status_code == 404
    created = client.post(f"/api/tools/{tool['id']}/webhook", headers=bearer(ada))
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert created.json()["url"].endswith(f"/api/webhooks/tools/{tool['id']}?token={secret}")
    hook = f"/api/webhooks/tools/{tool['id']}"
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        session.get(Tool, tool["id"]).next_refresh_at = utcnow() + timedelta(hours=6)  # type: ignore[union-attr]

    assert client.post(hook, params={"token": "wrong"}).status_code == 404
    assert client.post(hook).status_code == 404
    assert client.post("/api/webhooks/tools/999999", params={"token": secret}).status_code == 404
    quay = {
        "repository": "biocontainers/samtools",
        "updated_tags": ["1.18"],
        "namespace": "biocontainers",
        "name": "samtools",
    }
    accepted = client.post(hook, params={"token": secret}, json=quay)
    assert accepted.status_code == 202
    assert accepted.json() == {"status": "queued", "tool": "quay.io/biocontainers/samtools"}
    due = tool_state(engine, tool["id"]).next_refresh_at
    assert due is not None and due <= utcnow()

    assert (
        client.post(
            hook, headers={"X-Gitlab-Token": secret}, json={"object_kind": "push"}
        ).status_code
        == 202
    )
    assert (
        client.post(
            hook,
            headers={"Authorization": secret},
            json={"event_data": {"repository": {"repo_full_name": "biocontainers/samtools"}}},
        ).status_code
        == 202
    )
    wrong_repo = client.post(
        hook,
        params={"token": secret},
        json={"repository": {"repo_name": "someone/else"}, "push_data": {"tag": "x"}},
    )
    assert wrong_repo.status_code == 422
    assert "belongs to quay.io/biocontainers/samtools" in wrong_repo.json()["error"]["message"]

    rotated = client.post(f"/api/tools/{tool['id']}/webhook", headers=bearer(ada)).json()["secret"]
    assert client.post(hook, params={"token": secret}).status_code == 404
    assert client.post(hook, params={"token": rotated}).status_code == 202
    assert client.delete(f"/api/tools/{tool['id']}/webhook", headers=bearer(ada)).status_code == 204
    assert client.post(hook, params={"token": rotated}).status_code == 404


def test_a_refresh_already_running_answers_409(
    client: TestClient, make_user: MakeUser, database_url: str
) -> None:
    from dockyard.refresh.locks import locks_for

    _, ada = make_user("ada")
    tool = client.post(
        "/api/tools", json={"image": f"127.0.0.1:1/{uuid.uuid4().hex[:6]}/img"}, headers=bearer(ada)
    ).json()
    engine = db.make_engine(database_url)
    locks = locks_for(engine)

    async def scenario() -> int:
        async with locks.hold(tool["id"]):
            answer = client.post(f"/api/tools/{tool['id']}/refresh", headers=bearer(ada))
            status: int = answer.status_code
            return status

    try:
        assert asyncio.run(scenario()) == 409
    finally:
        engine.dispose()
