"""Input that used to end in a 500: each is now a clear 4xx, and nothing stored changes."""

from __future__ import annotations

import asyncio
import logging
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select

from dockyard import db
from dockyard.access.models import OutboxEmail
from dockyard.accounts.models import ApiToken, User
from dockyard.app import create_app
from dockyard.errors import ConfigurationError
from dockyard.settings import Settings, load_settings
from tests.support.app import bearer

MakeUser = Callable[..., tuple[User, str]]


@pytest.mark.parametrize(
    "path",
    [
        "/ga4gh/trs/v2/tools?offset=%C2%B2",
        "/ga4gh/trs/v2/tools?offset=9223372036854775808",
        "/api/tools?offset=9223372036854775808",
        "/api/tools?limit=9223372036854775808",
        "/api/tools/99999999999999999999999",
        "/ga4gh/trs/v2/tools/99999999999999999999999",
        "/api/access/requests?offset=9223372036854775808",
    ],
)
def test_out_of_range_numbers_are_a_4xx(client: TestClient, make_user: MakeUser, path: str) -> None:
    _, token = make_user("ada")
    answer = client.get(path, headers=bearer(token))
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)


def test_a_huge_trs_limit_is_the_largest_page(client: TestClient) -> None:
    answer = client.get("/ga4gh/trs/v2/tools?limit=9223372036854775808")
    assert answer.status_code == 200
    assert int(answer.headers["current_limit"]) <= 1000


def test_a_lone_surrogate_in_json_is_a_4xx(client: TestClient, make_user: MakeUser) -> None:
    _, token = make_user("ada")
    answer = client.post(
        "/api/tools",
        content=b'{"image": "quay.io/ns/tool", "description": "\\ud800"}',
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)


def test_a_git_source_at_an_ipv6_literal_is_a_4xx_or_refused(
    client: TestClient, make_user: MakeUser
) -> None:
    _, token = make_user("ada")
    answer = client.post(
        "/api/tools",
        json={
            "image": "quay.io/ns/gittool",
            "source": {"git_url": "http://[::1]:5000/x.git"},
        },
        headers=bearer(token),
    )
    assert answer.status_code == 201, (answer.status_code, answer.text)
    if answer.status_code == 201:
        refreshed = client.post(f"/api/tools/{answer.json()['id']}/refresh", headers=bearer(token))
        # 502 is the registry's failure here (no network), told as such; never a 500.
        assert refreshed.status_code in (200, 502), (refreshed.status_code, refreshed.text)
        assert "internal_error" not in refreshed.text
        tool = client.get(f"/api/tools/{answer.json()['id']}", headers=bearer(token)).json()
        assert tool["refresh_status"] == "failed", tool


# --- one Host, the hosts dockyard answers for, links built from configuration only --------


def raw_get(client: TestClient, path: str, hosts: list[bytes]) -> tuple[int, bytes]:
    """A GET with exactly these Host headers, straight into the ASGI app."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path.partition("?")[0],
        "raw_path": path.partition("?")[0].encode(),
        "query_string": path.partition("?")[2].encode(),
        "root_path": "",
        "headers": [(b"host", host) for host in hosts],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


@pytest.fixture
def published(client: TestClient, make_user: MakeUser) -> None:
    _, ada = make_user("ada")
    tool = client.post("/api/tools", json={"image": "quay.io/ns/hosted"}, headers=bearer(ada))
    tid = tool.json()["id"]
    client.post(f"/api/tools/{tid}/versions", json={"name": "1.0"}, headers=bearer(ada))
    assert client.post(f"/api/tools/{tid}/publish", headers=bearer(ada)).status_code == 200


def test_two_host_headers_are_refused_and_never_reach_the_cache(
    client: TestClient, published: None
) -> None:
    status, body = raw_get(client, "/ga4gh/trs/v2/tools", [b"evil.example", b"testserver"])
    assert status == 400 and b"one Host header" in body
    status, body = raw_get(client, "/ga4gh/trs/v2/tools", [b"testserver"])
    assert status == 200
    assert b"evil.example" not in body
    assert b"http://testserver/ga4gh/trs/v2/tools/" in body


def test_with_a_base_url_only_its_hosts_are_answered(settings: Settings) -> None:
    configured = settings.model_copy(
        update={"base_url": "https://dockyard.example.org", "allowed_hosts": "internal:8000"}
    )
    with TestClient(create_app(configured), base_url="https://dockyard.example.org") as client:
        assert client.get("/ga4gh/trs/v2/tools").status_code == 200
        foreign = client.get("/ga4gh/trs/v2/tools", headers={"Host": "evil.example"})
        assert foreign.status_code == 400
        assert "DOCKYARD_ALLOWED_HOSTS" in foreign.json()["error"]["message"]
        assert client.get("/api/tools", headers={"Host": "internal:8000"}).status_code == 200
        # Load balancers probe by address.
        assert client.get("/healthz", headers={"Host": "10.0.0.7:8000"}).status_code == 200


def test_access_request_emails_never_link_to_the_requests_host(
    client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    _, maria = make_user("maria")
    _, bob = make_user("bob")
    body = {"image": "quay.io/lab/secret", "private": True, "maintainer_email": "l@example.org"}
    tid = client.post("/api/tools", json=body, headers=bearer(maria)).json()["id"]
    client.post(f"/api/tools/{tid}/versions", json={"name": "1.0"}, headers=bearer(maria))
    client.post(f"/api/tools/{tid}/publish", headers=bearer(maria))
    asked = client.post(
        f"/api/tools/{tid}/access-requests",
        json={"registry_username": "bobby", "message": "please"},
        headers={**bearer(bob), "Host": "evil.example"},
    )
    assert asked.status_code == 201, asked.text
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        emails = [e.body_text + e.body_html for e in session.scalars(select(OutboxEmail))]
    assert emails and not any("evil.example" in text for text in emails)
    assert any(f"/access/requests/{asked.json()['id']}" in text for text in emails)


def test_email_without_a_base_url_refuses_to_start() -> None:
    with pytest.raises(ConfigurationError, match="need DOCKYARD_BASE_URL"):
        load_settings(
            {
                "DOCKYARD_DATABASE_URL": "sqlite:////tmp/never.db",
                "DOCKYARD_SECRET_KEY": "x" * 40,
                "DOCKYARD_SMTP_URL": "smtp://127.0.0.1:25",
            }
        )


def test_the_data_dir_and_the_database_are_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    settings = load_settings({"DOCKYARD_DATA_DIR": str(data)})
    engine = db.make_engine(settings.database_url)
    try:
        db.upgrade(engine)
    finally:
        engine.dispose()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_a_token_authenticated_read_writes_nothing_and_the_use_is_kept_for_later(
    client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    user, token = make_user("reader")
    statements: list[str] = []
    context = client.app.state.context  # type: ignore[attr-defined]

    def note(*args: Any) -> None:
        statements.append(args[2])

    event.listen(context.engine, "before_cursor_execute", note)
    try:
        assert client.get("/api/tools", headers=bearer(token)).status_code == 200
        assert client.get("/ga4gh/trs/v2/tools", headers=bearer(token)).status_code == 200
    finally:
        event.remove(context.engine, "before_cursor_execute", note)
    written = [s for s in statements if s.lstrip().upper().startswith(("UPDATE", "INSERT"))]
    assert written == [], written
    assert context.usage.flush(context.sessions) == 0  # no tool uses, but the token's use:
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        used = session.scalar(select(ApiToken.last_used_at).where(ApiToken.user_id == user.id))
    assert used is not None


def test_the_access_log_never_shows_a_webhook_secret(client: TestClient) -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/api/webhooks/tools/3?token=s3cr3t-hook&x=1", "1.1", 202),
        None,
    )
    for handler_filter in logging.getLogger("uvicorn.access").filters:
        assert not isinstance(handler_filter, logging.Filter) or handler_filter.filter(record)
    line = record.getMessage()
    assert "s3cr3t-hook" not in line
    assert "token=[redacted]&x=1" in line


# --- browser defences --------------------------------------------------------------------


def test_every_answer_carries_the_browser_defences(
    client: TestClient, published: None, make_user: MakeUser
) -> None:
    _, token = make_user("ada2")
    page = client.get("/")
    api = client.get("/api/tools", headers=bearer(token))
    trs = client.get("/ga4gh/trs/v2/tools")
    missing = client.get("/no/such/page")
    for answer in (page, api, trs, missing):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert "unsafe-eval" not in page.headers["content-security-policy"]
    assert "sandbox" in api.headers["content-security-policy"]
    assert '"allowEval": false' in page.text
    assert "strict-transport-security" not in page.headers  # plain HTTP here


def test_under_https_browsers_are_told_to_keep_to_it(settings: Settings) -> None:
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        answer = client.get("/")
    assert answer.headers["strict-transport-security"].startswith("max-age=")


def test_a_notice_in_the_address_is_never_shown(client: TestClient) -> None:
    page = client.get("/?notice=Your+account+is+suspended.+Call+555-0100")
    assert "Call 555-0100" not in page.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/registry-requests?status=%00x", None),
        ("GET", "/api/tools?q=a%00b", None),
        ("POST", "/api/tools", b'{"image": "quay.io/ns/nul", "description": "a\\u0000b"}'),
    ],
)
def test_nul_in_text_is_a_4xx(
    client: TestClient, make_user: MakeUser, method: str, path: str, body: bytes | None
) -> None:
    _, token = make_user("ada")
    headers = {**bearer(token), "Content-Type": "application/json"}
    answer = client.request(method, path, content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert "NUL" in answer.json()["error"]["message"]
