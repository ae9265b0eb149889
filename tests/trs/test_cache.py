"""The TRS response cache: answers from memory, never older than the request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select, update

from dockyard import db
from dockyard.accounts import services as accounts
from dockyard.accounts.models import User
from dockyard.catalog.models import CatalogState, Tool, ToolVersion
from dockyard.trs.cache import Message, TrsCache
from dockyard.web.security import SESSION_COOKIE
from tests.support.app import MakeUser, bearer

TOOL = "/ga4gh/trs/v2/tools/quay.io%2Fns%2Fcached"


@pytest.fixture
def published(client: TestClient, make_user: MakeUser) -> dict[str, Any]:
    _, ada = make_user("ada")
    tool = client.post("/api/tools", json={"image": "quay.io/ns/cached"}, headers=bearer(ada))
    tid = tool.json()["id"]
    client.post(f"/api/tools/{tid}/versions", json={"name": "1.0"}, headers=bearer(ada))
    client.post(f"/api/tools/{tid}/publish", headers=bearer(ada))
    return {"id": tid, "token": ada}


def statements_on(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def generation(engine: Engine) -> int:
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        return int(session.scalar(select(CatalogState.generation)) or 0)


def test_a_repeated_anonymous_read_is_answered_without_the_database(
    client: TestClient, published: dict[str, Any]
) -> None:
    first = client.get(TOOL)
    seen = statements_on(client.app.state.context.engine)  # type: ignore[attr-defined]
    again = client.get(TOOL)
    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers["etag"] == first.headers["etag"]
    assert seen == []
    head = client.head(TOOL)
    assert (head.status_code, head.content, head.headers["etag"]) == (
        200,
        b"",
        first.headers["etag"],
    )
    unchanged = client.get(TOOL, headers={"If-None-Match": first.headers["etag"]})
    assert (unchanged.status_code, unchanged.headers["etag"]) == (304, first.headers["etag"])
    assert unchanged.headers["access-control-allow-origin"] == "*"
    assert seen == []


def test_a_change_through_the_api_shows_at_once(
    client: TestClient, published: dict[str, Any]
) -> None:
    assert "description" not in client.get(TOOL).json()
    client.patch(
        f"/api/tools/{published['id']}",
        json={"description": "Now described"},
        headers=bearer(published["token"]),
    )
    assert client.get(TOOL).json()["description"] == "Now described"
    client.post(f"/api/tools/{published['id']}/unpublish", headers=bearer(published["token"]))
    assert client.get(TOOL).status_code == 404


def test_a_change_by_another_process_shows_at_once(
    client: TestClient, published: dict[str, Any], database_url: str
) -> None:
    assert client.get(f"{TOOL}/versions").json()[0]["id"] == "1.0"
    other = db.make_engine(database_url)  # what a worker or another web process holds
    try:
        with db.unit_of_work(db.make_sessionmaker(other)) as session:
            version = session.scalars(select(ToolVersion)).one()
            version.name = "1.1"
        assert client.get(f"{TOOL}/versions").json()[0]["id"] == "1.1"
    finally:
        other.dispose()


def test_callers_with_a_token_always_reach_the_app(
    client: TestClient, published: dict[str, Any]
) -> None:
    client.get(TOOL)
    seen = statements_on(client.app.state.context.engine)  # type: ignore[attr-defined]
    assert client.get(TOOL, headers=bearer(published["token"])).status_code == 200
    assert seen != []


def test_a_signed_in_browser_reads_what_anyone_reads_from_the_cache(
    client: TestClient, published: dict[str, Any], make_user: MakeUser
) -> None:
    """TRS knows callers by token only: a session cookie neither reveals nor bypasses."""
    context = client.app.state.context  # type: ignore[attr-defined]
    with db.unit_of_work(context.sessions) as session:
        ada = session.scalars(select(User).where(User.username == "ada")).one()
        cookie = accounts.start_session(session, ada)
    hidden = client.post(
        "/api/tools", json={"image": "quay.io/ns/hidden"}, headers=bearer(published["token"])
    )
    assert hidden.status_code == 201
    browser = {"Cookie": f"{SESSION_COOKIE}={cookie}; _ga=GA1.1.1"}
    assert (
        client.get("/ga4gh/trs/v2/tools/quay.io%2Fns%2Fhidden", headers=browser).status_code == 404
    )
    assert (
        client.get(
            "/ga4gh/trs/v2/tools/quay.io%2Fns%2Fhidden", headers=bearer(published["token"])
        ).status_code
        == 200
    ), "the maintainer's token does see it"
    first = client.get(TOOL)
    seen = statements_on(context.engine)
    again = client.get(TOOL, headers=browser)
    assert (again.status_code, again.content) == (200, first.content)
    assert seen == [], "answered from the cache"


@pytest.mark.parametrize("sets_cookie", [False, True])
def test_answers_that_set_a_cookie_are_not_kept(sets_cookie: bool) -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        headers = [(b"content-type", b"application/json")]
        if sets_cookie:
            headers.append((b"set-cookie", b"id=1"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    cache = TrsCache(app, prefixes=("/trs",), source=FixedGeneration(), max_bytes=1 << 20)
    assert run_cache(cache, "/trs/tools") == (200, b"{}")
    assert run_cache(cache, "/trs/tools") == (200, b"{}")
    assert len(calls) == (2 if sets_cookie else 1)


def test_only_changes_that_readers_see_move_the_generation(
    engine: Engine, client: TestClient, published: dict[str, Any]
) -> None:
    before = generation(engine)
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        tool = session.scalars(select(Tool)).one()
        tool.refresh_status = "ok"
        tool.next_refresh_at = None
        session.scalars(select(ToolVersion)).one().problem = "tag missing"
    assert generation(engine) == before
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        session.scalars(select(Tool)).one().description = "seen by readers"
        session.flush()
        session.scalars(select(ToolVersion)).one().description = "also seen"
    assert generation(engine) == before + 1
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        session.execute(update(CatalogState).values(generation=CatalogState.generation))
    assert generation(engine) == before + 1


class FixedGeneration:
    def __init__(self) -> None:
        self.value: int | None = 1

    async def read(self) -> int | None:
        return self.value

    async def close(self) -> None:
        return None


def run_cache(cache: TrsCache, path: str, method: str = "GET") -> tuple[int, bytes]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
    }
    asyncio.run(cache(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_the_cache_keeps_to_its_memory_budget_and_empties_on_a_new_generation() -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        body = scope["path"].encode() * 20
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    source = FixedGeneration()
    cache = TrsCache(app, prefixes=("/trs",), source=source, max_bytes=250)
    for path in ("/trs/a", "/trs/b", "/trs/c", "/trs/a"):
        assert run_cache(cache, path) == (200, path.encode() * 20)
    assert calls == ["/trs/a", "/trs/b", "/trs/c", "/trs/a"]  # a was dropped for c
    assert cache.size <= 250
    run_cache(cache, "/trs/c")
    assert calls[-1] == "/trs/a"
    source.value = 2
    run_cache(cache, "/trs/c")
    assert calls[-1] == "/trs/c"
    source.value = None  # the database cannot be read: the app answers
    run_cache(cache, "/trs/c")
    run_cache(cache, "/elsewhere")
    assert calls[-2:] == ["/trs/c", "/elsewhere"]


def test_waiters_on_a_cancelled_postgresql_read_are_sent_to_the_app() -> None:
    from dockyard.trs.cache import PostgresGeneration

    class Stalled(PostgresGeneration):
        async def _query(self) -> int | None:
            await asyncio.sleep(10)
            return 7

    async def scenario() -> int | None:
        source = Stalled("postgresql://unused")
        first = asyncio.create_task(source.read())
        await asyncio.sleep(0)
        second = asyncio.create_task(source.read())
        await asyncio.sleep(0)
        first.cancel()
        return await asyncio.wait_for(second, timeout=2)

    assert asyncio.run(scenario()) is None


def test_descriptor_reads_pass_the_cache_without_reading_the_generation(
    client: TestClient, published: dict[str, Any]
) -> None:
    tid, token = published["id"], published["token"]
    cwl = {
        "path": "tool.cwl",
        "file_type": "PRIMARY_DESCRIPTOR",
        "descriptor_type": "CWL",
        "content": "cwlVersion: v1.2\n",
    }
    stored = client.put(
        f"/api/tools/{tid}/versions/1.0/files", json={"files": [cwl]}, headers=bearer(token)
    )
    assert stored.status_code == 200, stored.text
    cache = _cache(client)
    misses = cache.misses
    seen = statements_on(client.app.state.context.engine)  # type: ignore[attr-defined]
    for path in (f"{TOOL}/versions/1.0/CWL/descriptor", f"{TOOL}/versions/1.0/CWL/files"):
        answer = client.get(path)
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-cache"
    assert cache.misses == misses  # neither kept nor looked up
    assert not any("catalog_state" in statement for statement in seen)
    client.get(TOOL)
    assert cache.misses == misses + 1  # the tool itself still is


def _cache(client: TestClient) -> TrsCache:
    layer = client.app.middleware_stack  # type: ignore[attr-defined]
    while not isinstance(layer, TrsCache):
        layer = layer.app
    return layer
