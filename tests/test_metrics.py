"""What a process tells Prometheus: its HTTP answers by route template, its refreshes and
registry requests, the TRS cache, and the database's figures; and who may read them."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine, select

from dockyard import metrics
from dockyard.app import create_app
from dockyard.catalog.models import Tool
from dockyard.settings import Settings
from tests.support.app import TEST_SECRET_KEY, bearer
from tests.support.processes import clean_environment, serving
from tests.support.refresh import proxy, refresh, register, unique
from tests.support.registry import LocalRegistry
from tests.support.seeded import seed


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_refresh_counts_its_outcome_tags_and_registry_requests(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    repository = unique("metered")
    open_registry.push_image(repository, "1.0")
    open_registry.push_image(repository, "1.1", salt="other")
    tool_id = register(engine, open_registry, repository)
    with engine.connect() as connection:
        registry = connection.execute(
            select(Tool.registry_id).where(Tool.id == tool_id)
        ).scalar_one()
    host = open_registry.host
    before = {
        "ok": value("dockyard_refreshes_total", registry=registry, outcome="ok"),
        "seen": value("dockyard_refresh_tags_seen_total", registry=registry),
        "added": value("dockyard_refresh_tags_changed_total", registry=registry, change="added"),
        "took": value("dockyard_refresh_duration_seconds_count", registry=registry, outcome="ok"),
        "gets": value("dockyard_registry_requests_total", host=host, method="GET", status="200"),
    }
    assert refresh(engine, tool_id).status == "ok"
    assert value("dockyard_refreshes_total", registry=registry, outcome="ok") == before["ok"] + 1
    assert value("dockyard_refresh_tags_seen_total", registry=registry) == before["seen"] + 2
    added = value("dockyard_refresh_tags_changed_total", registry=registry, change="added")
    assert added == before["added"] + 2
    took = value("dockyard_refresh_duration_seconds_count", registry=registry, outcome="ok")
    assert took == before["took"] + 1
    gets = value("dockyard_registry_requests_total", host=host, method="GET", status="200")
    assert gets >= before["gets"] + 3  # the tag list and two manifests at least


def test_429s_and_the_pull_allowance_are_told_per_host(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    repository = unique("throttled")
    open_registry.push_image(repository, "1.0")
    tool_id = register(engine, open_registry, repository)
    host = open_registry.host
    answered: list[str] = []

    def tamper(request: httpx.Request) -> httpx.Response | None:
        if "/manifests/" in request.url.path and not answered:
            answered.append("429")
            return httpx.Response(429, headers={"Retry-After": "0"})
        return None

    throttled = value("dockyard_registry_throttled_total", host=host)
    assert refresh(engine, tool_id, transport=proxy(open_registry, tamper)).status == "ok"
    assert value("dockyard_registry_throttled_total", host=host) == throttled + 1

    metrics.REGISTRY_ALLOWANCE.labels("registry.example").set(76)
    assert value("dockyard_registry_rate_limit_remaining", host="registry.example") == 76


def test_metrics_name_route_templates_statuses_and_the_databases_figures(
    client: TestClient, engine: Engine
) -> None:
    seed(engine)
    for _ in range(3):
        assert client.get("/api/tools/1").status_code == 200
    assert client.get("/api/tools/999999").status_code == 404
    assert client.get("/ga4gh/trs/v2/tools/quay.io%2Fbiocontainers%2Fsamtools").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    scrape = client.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain; version=")
    found = samples(scrape.text)

    def http(route: str, status: str) -> float:
        labels = frozenset({("method", "GET"), ("route", route), ("status", status)})
        return found.get(("dockyard_http_requests_total", labels), 0.0)

    assert http("/api/tools/{tool_id}", "200") >= 3
    assert http("/api/tools/{tool_id}", "404") >= 1
    assert http("/ga4gh/trs/v2/tools/{rest:path}", "200") >= 1  # answered ahead of routing
    assert http("unrouted", "404") >= 1
    assert not any("samtools" in str(labels) for _, labels in found)  # templates, not paths
    tools = frozenset({("published", "true"), ("private", "false")})
    assert found[("dockyard_tools", tools)] >= 1
    assert found[("dockyard_database_up", frozenset())] == 1
    assert ("dockyard_access_requests_pending", frozenset()) in found
    assert ("dockyard_tools_refresh_failing", frozenset()) in found


def test_the_trs_cache_counts_hits_and_misses(client: TestClient) -> None:
    hits = value("dockyard_trs_cache_requests_total", result="hit")
    misses = value("dockyard_trs_cache_requests_total", result="miss")
    client.get("/ga4gh/trs/v2/tools?limit=5")
    client.get("/ga4gh/trs/v2/tools?limit=5")
    assert value("dockyard_trs_cache_requests_total", result="miss") == misses + 1
    assert value("dockyard_trs_cache_requests_total", result="hit") == hits + 1


@pytest.fixture
def metered(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    with_token = settings.model_copy(update={"metrics_token": SecretStr("scrape-me-" + "s" * 20)})
    with TestClient(create_app(with_token)) as client:
        yield client


def test_a_metrics_token_is_asked_for_and_compared(metered: TestClient) -> None:
    assert metered.get("/metrics").status_code == 401
    assert metered.get("/metrics", headers=bearer("wrong")).status_code == 401
    answer = metered.get("/metrics", headers=bearer("scrape-me-" + "s" * 20))
    assert answer.status_code == 200 and "dockyard_http_requests_total" in answer.text
    assert "scrape-me" not in metered.get("/metrics").text


def test_metrics_on_their_own_port_are_not_on_the_apps(settings: Settings) -> None:
    moved = settings.model_copy(update={"metrics_port": 9464})
    with TestClient(create_app(moved)) as client:
        answer = client.get("/metrics")
    assert answer.status_code == 404
    assert "DOCKYARD_METRICS_PORT" in answer.json()["error"]["message"]


def test_metrics_answer_whatever_the_host_like_the_probes(settings: Settings) -> None:
    strict = settings.model_copy(update={"base_url": "https://tools.example.org"})
    with TestClient(create_app(strict), base_url="http://10.0.0.7:8000") as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/api/tools").status_code != 200


def test_scraping_with_the_database_down_says_so(settings: Settings, tmp_path: Path) -> None:
    broken = Settings(
        database_url=f"sqlite:///{tmp_path / 'missing' / 'no.db'}",
        data_dir=tmp_path,
        secret_key=SecretStr(TEST_SECRET_KEY),
        background_refresh=False,
    )
    app = create_app(broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        found = samples(client.get("/metrics").text)
    assert found[("dockyard_database_up", frozenset())] == 0


def test_the_web_processes_of_one_serve_add_their_figures_up(tmp_path: Path) -> None:
    env = clean_environment(DOCKYARD_DATA_DIR=str(tmp_path / "data"))
    before = set(Path(tempfile.gettempdir()).glob("dockyard-metrics-*"))
    with serving(env, tmp_path / "serve.log", "--workers", "2") as server:
        for _ in range(40):  # a new connection each: both processes answer some
            assert httpx.get(f"{server.url}/healthz").status_code == 200
        counted = set()
        for _ in range(6):  # whichever process answers the scrape tells the sum
            found = samples(httpx.get(f"{server.url}/metrics").text)
            labels = frozenset({("method", "GET"), ("route", "/healthz"), ("status", "200")})
            counted.add(found[("dockyard_http_requests_total", labels)])
        (shared,) = set(Path(tempfile.gettempdir()).glob("dockyard-metrics-*")) - before
        writers = {path.name for path in shared.glob("counter_*.db")}
        assert len(writers) == 2, writers  # both processes counted requests
    assert counted == {40.0}
    assert not shared.exists()  # removed when serve stops
    assert "several workers share one SQLite file" in server.output()
