"""A real Prometheus (Debian's) scrapes `dockyard serve` with its bearer token, and the
refresh, registry and HTTP series are there when read back through Prometheus's HTTP API;
the example alert rules load into it."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.app import bearer
from tests.support.network import free_port
from tests.support.processes import clean_environment, run, serving, start, stop
from tests.support.registry import LocalRegistry

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"


@contextmanager
def prometheus(target: str, token: str, directory: Path) -> Iterator[str]:
    """Debian's Prometheus on loopback, scraping `target` every second; its URL."""
    binary = shutil.which("prometheus")
    assert binary, "Prometheus is needed: scripts/install installs Debian's package"
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": "dockyard",
                "static_configs": [{"targets": [target]}],
                "authorization": {"type": "Bearer", "credentials": token},
            }
        ],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (directory / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (directory / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "Prometheus did not become ready"
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def query(url: str, expression: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": expression}, timeout=10).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def eventually(url: str, expression: str, *, timeout: float = 30) -> list[dict[str, Any]]:
    """The query's result once it has one (Prometheus scrapes every second)."""
    deadline = time.monotonic() + timeout
    while True:
        found = query(url, expression)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_prometheus_scrapes_refresh_registry_and_http_series(
    tmp_path: Path, open_registry: LocalRegistry
) -> None:
    token = "scrape-" + uuid.uuid4().hex
    env = clean_environment(
        DOCKYARD_DATA_DIR=str(tmp_path / "data"),
        DOCKYARD_METRICS_TOKEN=token,
        DOCKYARD_ALLOW_PRIVATE_NETWORK_REGISTRIES="true",
        DOCKYARD_BACKGROUND_REFRESH="false",
    )
    run(["users", "create", "ada", "--email", "ada@example.org"], env)
    api_token = run(["tokens", "create", "ada"], env).strip().splitlines()[-1]
    repository = f"team/scraped-{uuid.uuid4().hex[:6]}"
    open_registry.push_image(repository, "1.0")
    with (
        serving(env, tmp_path / "serve.log") as server,
        httpx.Client(base_url=str(server.url), headers=bearer(api_token), timeout=30) as api,
    ):
        assert server.url is not None
        tool = api.post("/api/tools", json={"image": f"{open_registry.host}/{repository}"})
        assert tool.status_code == 201, tool.text
        refreshed = api.post(f"/api/tools/{tool.json()['id']}/refresh").json()
        assert refreshed["status"] == "ok", refreshed
        target = server.url.removeprefix("http://")
        with prometheus(target, token, tmp_path / "prometheus") as url:
            up = eventually(url, 'up{job="dockyard"} == 1')
            assert up, query(url, "up")
            refreshes = eventually(url, 'dockyard_refreshes_total{outcome="ok"}')
            assert [float(r["value"][1]) for r in refreshes] == [1.0]
            registry = refreshes[0]["metric"]["registry"]
            tags = query(url, f'dockyard_refresh_tags_changed_total{{registry="{registry}"}}')
            assert {r["metric"]["change"]: float(r["value"][1]) for r in tags} == {"added": 1.0}
            host = open_registry.host
            gets = query(url, f'dockyard_registry_requests_total{{host="{host}",status="200"}}')
            assert sum(float(r["value"][1]) for r in gets) >= 2
            http = query(
                url,
                'dockyard_http_requests_total{route="/api/tools/{tool_id}/refresh",status="200"}',
            )
            assert [float(r["value"][1]) for r in http] == [1.0]
            assert query(url, 'dockyard_tools{published="false"}')
            assert query(url, "dockyard_database_up == 1")
            rules = httpx.get(f"{url}/api/v1/rules", timeout=10).json()["data"]["groups"]
            loaded = [rule for group in rules for rule in group["rules"]]
            assert len(loaded) >= 10 and all(rule["health"] != "err" for rule in loaded)
    assert token not in server.output()


def test_a_scrape_without_the_token_is_refused_and_shows_as_down(tmp_path: Path) -> None:
    env = clean_environment(
        DOCKYARD_DATA_DIR=str(tmp_path / "data"),
        DOCKYARD_METRICS_TOKEN="right-" + uuid.uuid4().hex,
    )
    with serving(env, tmp_path / "serve.log") as server:
        assert server.url is not None
        with prometheus(server.url.removeprefix("http://"), "wrong", tmp_path / "p") as url:
            down = eventually(url, 'up{job="dockyard"} == 0')
            assert down
            targets = httpx.get(f"{url}/api/v1/targets", timeout=10).json()["data"]
            assert "401" in targets["activeTargets"][0]["lastError"]


@pytest.mark.postgresql
def test_a_worker_serves_its_metrics_on_its_own_port(postgresql_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = clean_environment(
        DOCKYARD_DATABASE_URL=postgresql_url,
        DOCKYARD_SECRET_KEY="k3y-" + "Zq8vR2mW5tY1" * 4,
    )
    worker = start(["worker", "--metrics-port", str(port)], env, tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
                break
            except httpx.TransportError:
                assert worker.process.poll() is None, worker.output()
                assert time.monotonic() < deadline, worker.output()
                time.sleep(0.3)
        assert answer.status_code == 200
        assert "dockyard_workers_alive" in answer.text
        assert "dockyard_queue_jobs" in answer.text
    finally:
        stop(worker)
