"""Log lines: JSON objects or human lines, each with the request id or job id it belongs to."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from dockyard import logs
from dockyard.observe import Observe
from tests.support.app import bearer
from tests.support.network import free_port
from tests.support.processes import clean_environment, run, serving
from tests.support.registry import run_registry


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.ContextIds())
    logger = logging.getLogger("dockyard.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream, handler
    logger.removeHandler(handler)


async def _logging_app(scope: Scope, receive: Receive, send: Send) -> None:
    logging.getLogger("dockyard.test").info("answering", extra={"tool_id": 7})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_every_line_of_a_request_carries_its_id_and_the_answer_tells_it(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    stream, handler = captured
    handler.setFormatter(logs.JsonLines())
    client = TestClient(Observe(_logging_app, trs_prefixes=()))
    answer = client.get("/")
    given = client.get("/", headers={"X-Request-ID": "proxy-4f2a.1"})
    forged = client.get("/", headers={"X-Request-ID": "bad id\nwith a line break"})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == [
        answer.headers["x-request-id"],
        "proxy-4f2a.1",
        forged.headers["x-request-id"],
    ]
    assert given.headers["x-request-id"] == "proxy-4f2a.1"
    assert len(forged.headers["x-request-id"]) == 32  # replaced, not echoed
    assert lines[0]["message"] == "answering" and lines[0]["tool_id"] == 7
    assert lines[0]["level"] == "info" and lines[0]["logger"] == "dockyard.test"
    assert logs.request_id.get() is None  # nothing leaks out of the request


def test_text_lines_show_the_ids_and_json_lines_the_exception(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    stream, handler = captured
    text = logging.Formatter(logs.config("text", "info")["formatters"]["dockyard"]["format"])
    handler.setFormatter(text)
    log = logging.getLogger("dockyard.test")
    with logs.in_job(42):
        log.info("refreshing")
    log.info("outside")
    first, second = stream.getvalue().splitlines()
    assert first.endswith("INFO dockyard.test [job=42] refreshing")
    assert second.endswith("INFO dockyard.test outside")
    stream.truncate(0)
    stream.seek(0)
    handler.setFormatter(logs.JsonLines())
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    entry = json.loads(stream.getvalue())
    assert entry["message"] == "failed" and "ValueError: boom" in entry["exception"]
    assert "job_id" not in entry


def test_uvicorns_access_lines_become_fields() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/tools", "1.1", 200),
        None,
    )
    entry = json.loads(logs.JsonLines().format(record))
    assert entry["method"] == "GET" and entry["path"] == "/api/tools" and entry["status"] == 200
    assert entry["message"] == '127.0.0.1:5000 - "GET /api/tools HTTP/1.1" 200'


def test_a_whole_run_logs_json_lines_with_request_ids_and_no_secret(tmp_path: Path) -> None:
    with ExitStack() as stack, run_registry("htpasswd", tmp_path / "registry") as private:
        repository = f"team/logged-{uuid.uuid4().hex[:6]}"
        private.push_image(repository, "1.0")
        assert private.pull_credentials is not None
        registry_user, registry_password = private.pull_credentials
        secrets = {
            "secret key": "run-secret-key-" + uuid.uuid4().hex * 2,
            "password": "ada-password-" + uuid.uuid4().hex,
            "metrics token": "metrics-token-" + uuid.uuid4().hex,
            "SMTP password": "smtp-password-" + uuid.uuid4().hex,
            "registry password": registry_password,
        }
        port = free_port()
        env = clean_environment(
            DOCKYARD_DATA_DIR=str(tmp_path / "data"),
            DOCKYARD_BASE_URL=f"http://127.0.0.1:{port}",
            DOCKYARD_SECRET_KEY=secrets["secret key"],
            DOCKYARD_LOG_FORMAT="json",
            DOCKYARD_METRICS_TOKEN=secrets["metrics token"],
            DOCKYARD_SMTP_URL=f"smtp://mailer:{secrets['SMTP password']}@127.0.0.1:{free_port()}",
            DOCKYARD_MAIL_FROM="dockyard@example.org",
            DOCKYARD_ALLOW_PRIVATE_NETWORK_REGISTRIES="true",
            DOCKYARD_BACKGROUND_REFRESH="false",
        )
        run(
            ["users", "create", "ada", "--email", "ada@example.org", "--password-stdin"],
            env,
            stdin=secrets["password"] + "\n",
        )
        secrets["API token"] = run(["tokens", "create", "ada"], env).strip().splitlines()[-1]
        log = tmp_path / "serve.log"
        with serving(env, log, "--log-level", "debug", port=port) as server:
            api = httpx.Client(base_url=str(server.url), headers=bearer(secrets["API token"]))
            stack.callback(api.close)
            tool = api.post("/api/tools", json={"image": f"{private.host}/{repository}"})
            assert tool.status_code == 201, tool.text
            tool_id = tool.json()["id"]
            credentials = {"username": registry_user, "password": registry_password}
            assert api.put(f"/api/tools/{tool_id}/credentials", json=credentials).status_code == 204
            assert api.post(f"/api/tools/{tool_id}/refresh").json()["status"] == "ok"
            hook = api.post(f"/api/tools/{tool_id}/webhook").json()
            secrets["webhook secret"] = hook["secret"]
            assert httpx.post(hook["url"], json={}).status_code == 202
            wrong = httpx.post(f"{server.url}/api/webhooks/tools/{tool_id}?token=guess")
            assert wrong.status_code == 404  # a wrong secret is told as no such webhook
            signin = {"username": "ada", "password": secrets["password"]}
            httpx.post(f"{server.url}/signin", data=signin)
            scrape = httpx.get(f"{server.url}/metrics", headers=bearer(secrets["metrics token"]))
            assert scrape.status_code == 200
            assert httpx.get(f"{server.url}/metrics", headers=bearer("nope")).status_code == 401
            answered = api.get(f"/api/tools/{tool_id}", headers={"X-Request-ID": "traced-1"})
            assert answered.headers["x-request-id"] == "traced-1"
        text = log.read_text()
    leaked = [name for name, secret in secrets.items() if secret in text]
    assert not leaked, f"the log holds the {', '.join(leaked)}"
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert len(access) >= 10
    assert all(line.get("request_id") for line in access)
    assert any(line["request_id"] == "traced-1" for line in access)
    assert any(line["message"].startswith("dockyard ") for line in lines)  # the start-up line
    assert any("[redacted]" in line["message"] for line in access)  # the webhook's ?token=
