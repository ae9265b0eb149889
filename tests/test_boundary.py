"""What every request must be before the app reads it: one trusted Host, Unicode text, no
secret in the access log; and the browser defences on every answer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dockyard.app import create_app
from dockyard.settings import Settings
from tests.support.app import MakeUser, bearer


def test_a_lone_surrogate_in_json_is_a_4xx(client: TestClient, make_user: MakeUser) -> None:
    _, token = make_user("ada")
    answer = client.post(
        "/api/tools",
        content=b'{"image": "quay.io/ns/tool", "description": "\\ud800"}',
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)


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
