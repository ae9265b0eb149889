"""compose.yaml: what it declares (read as YAML, each dockyard command parsed by the CLI),
and the same topology run as processes on the local PostgreSQL: the migration (which makes
the first administrator), two web servers and a worker. A refresh queued through one web
server is done by the worker and seen through the other, and every /metrics tells it."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from dockyard.cli import main
from dockyard.settings import Settings
from tests.support.app import bearer
from tests.support.network import free_port
from tests.support.processes import Running, clean_environment, run, start, stop, wait_until_ready
from tests.support.registry import LocalRegistry

ROOT = Path(__file__).resolve().parents[2]
DOCKYARD_SERVICES = ("migrate", "web-1", "web-2", "worker")
_VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def interpolated(values: Mapping[str, str], given: Mapping[str, str]) -> dict[str, str]:
    """Compose's `${NAME:-default}` and `${NAME:?message}`, with `given` as the shell's."""

    def one(text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name, rest = match.group(1), match.group(0)
            if name in given:
                return given[name]
            assert ":?" not in rest, f"compose would refuse to start without {name}"
            return match.group(2) or ""

        return _VARIABLE.sub(replace, text)

    return {key: one(str(value)) for key, value in values.items()}


def test_compose_declares_the_topology_with_health_checks_and_volumes() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "migrate", "web-1", "web-2", "proxy", "worker", "mail"}
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web-1", "web-2", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
        assert services[name]["healthcheck"]["test"]
    assert services["postgres"]["healthcheck"]["test"]
    assert "postgres:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert set(services["proxy"]["depends_on"]) == {"web-1", "web-2"}
    assert len(services["proxy"]["ports"]) == 1  # one port for both replicas
    nginx = compose()["configs"]["nginx"]["content"]
    assert "server web-1:8000" in nginx and "server web-2:8000" in nginx
    assert services["migrate"]["restart"] == "no"


def test_every_dockyard_command_and_setting_in_compose_is_real() -> None:
    services = compose()["services"]
    known = {f"DOCKYARD_{name.upper()}" for name in Settings.model_fields}
    runner = CliRunner()
    for name in DOCKYARD_SERVICES:
        service = services[name]
        assert service["image"].startswith("${DOCKYARD_IMAGE")
        assert service["build"]["dockerfile"] == "Containerfile"
        settings = {k for k in service["environment"] if k.startswith("DOCKYARD_")}
        assert settings <= known, settings - known
        parsed = runner.invoke(main, [*service["command"], "--help"])
        assert parsed.exit_code == 0, (name, parsed.output)
    environment = services["web-1"]["environment"]
    assert environment["DOCKYARD_SECRET_KEY"].startswith("${DOCKYARD_SECRET_KEY:?")  # none baked in
    assert services["migrate"]["environment"]["DOCKYARD_ADMIN_PASSWORD"].startswith(
        "${DOCKYARD_ADMIN_PASSWORD:?"
    )


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def mail() -> Iterator[int]:
    """The mail catcher's stand-in: a real SMTP server (aiosmtpd) on loopback."""
    port = free_port()
    controller = Controller(_Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


def _as_process(
    service: dict[str, Any], given: dict[str, str], ports: dict[str, int]
) -> tuple[list[str], dict[str, str]]:
    """A compose service's command and environment for a process on this machine: loopback
    instead of 0.0.0.0, free ports instead of 8000 and 9464, the local services' addresses."""
    command = [
        "127.0.0.1" if part == "0.0.0.0" else str(ports.get(part, part))  # noqa: S104
        for part in service["command"]
    ]
    environment = interpolated(service["environment"], given)
    environment |= {k: v for k, v in given.items() if k.startswith("DOCKYARD_")}
    if environment.get("DOCKYARD_METRICS_HOST") == "0.0.0.0":  # noqa: S104
        environment["DOCKYARD_METRICS_HOST"] = "127.0.0.1"
    return command, clean_environment(**environment)


def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(url, timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.postgresql
def test_the_compose_topology_as_processes_refreshes_through_the_worker(
    empty_postgresql: str, mail: int, open_registry: LocalRegistry, tmp_path: Path
) -> None:
    services = compose()["services"]
    web_ports = [free_port(), free_port()]
    metrics_port = free_port()
    urls = [f"http://127.0.0.1:{port}" for port in web_ports]
    given = {
        "DOCKYARD_SECRET_KEY": "compose-" + uuid.uuid4().hex * 2,
        "DOCKYARD_ADMIN_PASSWORD": "first-admin-" + uuid.uuid4().hex,
        # What the compose network gives by name, the machine gives on loopback:
        "DOCKYARD_DATABASE_URL": empty_postgresql,
        "DOCKYARD_SMTP_URL": f"smtp://127.0.0.1:{mail}",
        "DOCKYARD_BASE_URL": urls[0],
        "DOCKYARD_ALLOWED_HOSTS": ",".join(u.removeprefix("http://") for u in urls),
        "DOCKYARD_ALLOW_PRIVATE_NETWORK_REGISTRIES": "true",  # the registry is on loopback
    }
    command, env = _as_process(services["migrate"], given, {})
    migrated = run(command, env)
    assert "created administrator admin" in migrated
    assert "exists" in run(command, env)  # a second `up` changes nothing
    started: list[Running] = []
    closing = ExitStack()
    try:
        for url, name, port in zip(urls, ("web-1", "web-2"), web_ports, strict=True):
            command, env = _as_process(services[name], given, {"8000": port})
            web = start(command, env, tmp_path / f"{name}.log")
            started.append(web)
            wait_until_ready(web, url)
        command, env = _as_process(services["worker"], given, {"9464": metrics_port})
        worker = start(command, env, tmp_path / "worker.log")
        started.append(worker)
        token = run(["tokens", "create", "admin"], env).strip().splitlines()[-1]
        one, other = (httpx.Client(base_url=u, headers=bearer(token), timeout=30) for u in urls)
        closing.callback(one.close)
        closing.callback(other.close)
        assert one.get("/api/users/me").json()["is_admin"] is True
        repository = f"team/composed-{uuid.uuid4().hex[:6]}"
        open_registry.push_image(repository, "1.0")
        tool = one.post("/api/tools", json={"image": f"{open_registry.host}/{repository}"})
        assert tool.status_code == 201, tool.text
        tool_id = tool.json()["id"]
        hook = one.post(f"/api/tools/{tool_id}/webhook").json()
        assert httpx.post(hook["url"], json={}).json()["status"] == "queued"
        deadline = time.monotonic() + 90
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:
            seen = other.get(f"/api/tools/{tool_id}").json()
            if seen["versions"]:
                break
            assert worker.process.poll() is None, worker.output()
            time.sleep(0.5)
        assert seen["versions"] == ["1.0"], worker.output()
        for url in urls:
            found = _scrape(f"{url}/metrics")
            assert found[("dockyard_refresh_runs", frozenset({("status", "ok")}))] == 1
            assert found[("dockyard_workers_alive", frozenset())] == 1
        webhook = frozenset(
            {("method", "POST"), ("route", "/api/webhooks/tools/{tool_id}"), ("status", "202")}
        )
        assert _scrape(f"{urls[0]}/metrics")[("dockyard_http_requests_total", webhook)] == 1
        read = frozenset({("method", "GET"), ("route", "/api/tools/{tool_id}"), ("status", "200")})
        assert _scrape(f"{urls[1]}/metrics")[("dockyard_http_requests_total", read)] >= 1
        own = _scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        done = [
            v
            for (n, labels), v in own.items()
            if n == "dockyard_refreshes_total" and ("outcome", "ok") in labels
        ]
        assert done == [1.0]
    finally:
        closing.close()
        logs = {process.log.name: stop(process) for process in started}
    worker_lines = [json.loads(line) for line in logs["worker.log"].splitlines()]
    assert any(line.get("job_id") for line in worker_lines), logs["worker.log"]
    for name, text in logs.items():
        assert given["DOCKYARD_SECRET_KEY"] not in text, name
        assert given["DOCKYARD_ADMIN_PASSWORD"] not in text, name
