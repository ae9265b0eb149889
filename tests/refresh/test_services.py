"""Refresh against a real registry: versions, digests, platforms, moves, deletions, faults."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import Engine, func, select

from dockyard import db
from dockyard.accounts import services as accounts
from dockyard.catalog import contents, services
from dockyard.catalog.models import (
    DigestChange,
    Tool,
    ToolVersion,
    VersionFile,
    VersionImage,
)
from dockyard.egress import HostGuard
from dockyard.errors import RegistryHostRefused
from dockyard.refresh import apply as refresh_apply
from dockyard.refresh.models import RefreshRun
from dockyard.refresh.results import RefreshReport
from dockyard.refresh.services import Refresher
from dockyard.registries.catalog import BUILTIN_REGISTRIES, Catalog, Registry, Source
from dockyard.registries.transport import RegistryTransport, Reply
from tests.support.catalog import CATALOG
from tests.support.descriptors import CWL
from tests.support.network import PROXY_VARIABLES
from tests.support.queries import commits_during, statements_during
from tests.support.refresh import (
    CONFIG,
    CONFIG_DIGEST,
    MANIFEST,
    MANIFEST_DIGEST,
    proxy,
    refresh,
    register,
    stored,
    unique,
)
from tests.support.registry import LocalRegistry, digest_of
from tests.support.tinyproxy import Tinyproxy, run_tinyproxy


@pytest.fixture(scope="module")
def tinyproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tinyproxy]:
    with run_tinyproxy(tmp_path_factory.mktemp("tinyproxy-refresh")) as proxy:
        yield proxy


@pytest.fixture(autouse=True, params=["direct", "through tinyproxy"])
def route(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test here runs twice: straight to the registries, and with `HTTP_PROXY` and
    `HTTPS_PROXY` naming a real forward proxy (Debian's tinyproxy) on loopback, as behind an
    institute's proxy, where every registry and token request must go through the proxy."""
    if request.param == "direct":
        yield
        return
    tinyproxy: Tinyproxy = request.getfixturevalue("tinyproxy")
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", tinyproxy.url)
    monkeypatch.setenv("HTTPS_PROXY", tinyproxy.url)
    fetched: list[str] = []
    fetch = RegistryTransport.fetch

    async def noting(
        self: RegistryTransport, method: str, url: str, headers: Mapping[str, str], **kw: Any
    ) -> Reply:
        try:
            reply = await fetch(self, method, url, headers, **kw)
        except RegistryHostRefused:
            raise  # refused before anything was asked of the proxy
        except Exception:
            fetched.append(f"{method} {unquote(url)}")
            raise
        fetched.append(f"{method} {unquote(url)}")
        return reply

    monkeypatch.setattr(RegistryTransport, "fetch", noting)
    before = len(tinyproxy.requests())
    yield
    # Whatever the test's refreshes asked of registries, the proxy was asked.
    forwarded = [unquote(line) for line in tinyproxy.requests()[before:]]
    for asked in fetched:
        assert asked in forwarded, f"{asked} did not go through the proxy"


def test_refresh_reads_tags_digests_sizes_and_platforms_in_every_auth_mode(
    engine: Engine, registry: LocalRegistry
) -> None:
    repository = unique("tool")
    single = registry.push_image(repository, "1.0", architecture="amd64")
    multi = registry.push_index(
        repository, "2.0", [("linux", "amd64", None), ("linux", "arm64", "v8")], attestation=True
    )
    registry.push_index(repository, "latest", [("linux", "amd64", None), ("linux", "arm64", "v8")])
    tool_id = register(engine, registry, repository)

    report = refresh(engine, tool_id)
    assert report.status == "ok", report.message
    assert sorted(report.added) == ["1.0", "2.0", "latest"]
    state = stored(engine, tool_id)
    assert state["default"] == "latest"
    assert state["versions"]["1.0"]["digest"] == single
    assert state["versions"]["2.0"]["digest"] == multi
    manifest = json.loads(registry.raw_manifest(repository, "1.0"))
    size = manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
    assert state["versions"]["1.0"]["images"] == [(single, "linux", "amd64", None, size)]
    index = json.loads(registry.raw_manifest(repository, "2.0"))
    platforms = [
        (image[0], image[1], image[2], image[3]) for image in state["versions"]["2.0"]["images"]
    ]
    assert platforms == [
        (
            e["digest"],
            e["platform"]["os"],
            e["platform"]["architecture"],
            e["platform"].get("variant"),
        )
        for e in index["manifests"][:2]
    ]
    for image, entry in zip(state["versions"]["2.0"]["images"], index["manifests"], strict=False):
        platform_manifest = json.loads(registry.raw_manifest(repository, entry["digest"]))
        assert image[4] == platform_manifest["config"]["size"] + sum(
            layer["size"] for layer in platform_manifest["layers"]
        )


def test_an_unchanged_refresh_issues_no_manifest_gets(
    engine: Engine, registry: LocalRegistry
) -> None:
    repository = unique("steady")
    for tag in ("a", "b", "c"):
        registry.push_image(repository, tag, salt=tag)
    tool_id = register(engine, registry, repository)
    first = refresh(engine, tool_id)
    assert first.requests.get("GET manifest", 0) >= 3
    again = refresh(engine, tool_id)
    assert sorted(again.unchanged) == ["a", "b", "c"]
    assert again.requests.get("GET manifest", 0) == 0
    assert again.requests.get("GET blob", 0) == 0
    assert again.requests["HEAD manifest"] == 3


def test_a_refresh_costs_the_same_queries_for_two_tags_or_twelve(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    counts = []
    for size in (2, 12):
        repository = unique(f"queries{size}")
        for n in range(size):
            open_registry.push_image(repository, f"v{n}", salt=f"{repository}{n}")
        tool_id = register(engine, open_registry, repository)
        full = len(statements_during(engine, lambda: refresh(engine, tool_id)))  # noqa: B023
        unchanged = len(statements_during(engine, lambda: refresh(engine, tool_id)))  # noqa: B023
        counts.append((full, unchanged))
    assert counts[0][1] == counts[1][1], f"an unchanged refresh grew with its tags: {counts}"
    assert counts[1][0] - counts[0][0] <= 30, f"a first refresh grew too fast: {counts}"


def test_a_big_refresh_writes_a_batch_of_tags_per_transaction(
    engine: Engine, open_registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of tags are written a batch at a time, so reads never wait on one write."""
    repository = unique("batches")
    pushed = {
        f"v{n}": open_registry.push_image(repository, f"v{n}", salt=f"b{n}") for n in range(7)
    }
    tool_id = register(engine, open_registry, repository)
    monkeypatch.setattr("dockyard.refresh.apply.APPLY_BATCH", 3)
    report = refresh(engine, tool_id)
    assert sorted(report.added) == sorted(pushed)
    versions = stored(engine, tool_id)["versions"]
    assert {name: version["digest"] for name, version in versions.items()} == pushed
    assert all(version["images"] for version in versions.values())
    in_three = commits_during(engine, lambda: refresh(engine, tool_id))
    monkeypatch.setattr("dockyard.refresh.apply.APPLY_BATCH", 100)
    in_one = commits_during(engine, lambda: refresh(engine, tool_id))
    assert in_three - in_one == 2, (in_three, in_one)


def test_a_refresh_stopped_between_batches_keeps_whole_batches_and_the_next_one_finishes(
    engine: Engine, open_registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = unique("stopped")
    pushed = {
        f"v{n}": open_registry.push_image(repository, f"v{n}", salt=f"s{n}") for n in range(7)
    }
    tool_id = register(engine, open_registry, repository)
    monkeypatch.setattr("dockyard.refresh.apply.APPLY_BATCH", 3)
    apply_tag = refresh_apply._apply_tag
    applied: list[str] = []

    def fail_in_the_second_batch(version: ToolVersion, *args: Any) -> None:
        applied.append(version.name)
        if len(applied) == 5:
            raise RuntimeError("stopped")
        apply_tag(version, *args)

    monkeypatch.setattr(refresh_apply, "_apply_tag", fail_in_the_second_batch)
    failed = refresh(engine, tool_id)
    assert failed.status == "failed"
    versions = stored(engine, tool_id)["versions"]
    assert sorted(versions) == sorted(applied[:3]), "the second batch is written whole or not"
    monkeypatch.setattr(refresh_apply, "_apply_tag", apply_tag)
    refresh(engine, tool_id)
    versions = stored(engine, tool_id)["versions"]
    assert {name: version["digest"] for name, version in versions.items()} == pushed
    assert stored(engine, tool_id)["status"] == "ok"


def test_a_moved_tag_keeps_its_digest_history(engine: Engine, open_registry: LocalRegistry) -> None:
    repository = unique("moving")
    old = open_registry.push_image(repository, "1.0", salt="old")
    tool_id = register(engine, open_registry, repository)
    refresh(engine, tool_id)
    new = open_registry.push_image(repository, "1.0", salt="new")
    report = refresh(engine, tool_id)
    assert report.moved == ["1.0"]
    version = stored(engine, tool_id)["versions"]["1.0"]
    assert version["digest"] == new
    assert version["history"] == [old]
    assert version["images"][0][0] == new


def test_where_gets_count_as_pulls_tags_are_resolved_by_head_and_known_digests_not_fetched(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    """Docker Hub counts manifest GETs against its pull limit, not HEADs."""
    lab = Registry(
        id="lab", name="Lab", hosts=(open_registry.host,), counts_pulls=True, source=Source.OPERATOR
    )
    catalog = Catalog([*BUILTIN_REGISTRIES, lab])
    repository = unique("pulls")
    one = open_registry.push_image(repository, "1.0", salt="one")
    assert open_registry.push_image(repository, "latest", salt="one") == one
    two = open_registry.push_image(repository, "2.0", salt="two")
    tool_id = register(engine, open_registry, repository, catalog=catalog)

    first = refresh(engine, tool_id, catalog=catalog)
    assert first.requests["HEAD manifest"] == 3
    assert first.requests["GET manifest"] == 2, "1.0 and latest share one manifest: one GET"
    versions = stored(engine, tool_id)["versions"]
    assert versions["latest"]["images"] == versions["1.0"]["images"]

    assert open_registry.push_image(repository, "2.1", salt="two") == two  # a new tag, known digest
    assert open_registry.push_image(repository, "latest", salt="two") == two  # moved there
    again = refresh(engine, tool_id, catalog=catalog)
    assert sorted(again.added) == ["2.1"] and again.moved == ["latest"]
    assert again.requests.get("GET manifest", 0) == 0
    assert again.requests.get("GET blob", 0) == 0
    versions = stored(engine, tool_id)["versions"]
    assert versions["2.1"]["images"] == versions["2.0"]["images"] == versions["latest"]["images"]
    assert versions["latest"]["history"] == [one]


def test_a_tag_is_removed_only_when_the_registry_lists_the_tags_without_it(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    repository = unique("shrinking")
    open_registry.push_image(repository, "1.0", salt="one")
    open_registry.push_image(repository, "2.0", salt="two")
    tool_id = register(engine, open_registry, repository)
    refresh(engine, tool_id)
    sessions = db.make_sessionmaker(engine)
    with db.unit_of_work(sessions) as session:
        ada = accounts.find_user(session, "ada")
        assert ada is not None
        contents.replace_files(session, ada, tool_id, "2.0", CWL)
    assert sorted(refresh(engine, tool_id).unchanged) == ["1.0", "2.0"]
    with db.unit_of_work(sessions, write=False) as session:
        assert session.get_one(Tool, tool_id).descriptor_types == ",CWL,"
    open_registry.delete_tag(repository, "2.0")
    report = refresh(engine, tool_id)
    assert report.removed == ["2.0"]
    assert set(stored(engine, tool_id)["versions"]) == {"1.0"}
    with db.unit_of_work(sessions, write=False) as session:
        # What search keeps is recomputed without the removed version's descriptor, and
        # nothing of that version is left behind.
        assert session.get_one(Tool, tool_id).descriptor_types == ""
        for model in (VersionFile, VersionImage, DigestChange):
            orphans = session.scalar(
                select(func.count())
                .select_from(model)
                .where(model.version_id.not_in(select(ToolVersion.id)))
            )
            assert orphans == 0, model.__tablename__


def test_manual_versions_are_left_alone_by_refresh(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    repository = unique("manual")
    open_registry.push_image(repository, "1.0")
    tool_id = register(engine, open_registry, repository)
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        ada = accounts.get_user(session, "ada")
        contents.add_version(session, ada, tool_id, "dev-notes")
    refresh(engine, tool_id)
    assert set(stored(engine, tool_id)["versions"]) == {"1.0", "dev-notes"}


def test_a_tag_pattern_limits_which_tags_become_versions(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    repository = unique("pattern")
    for tag in ("1.0", "1.1", "nightly-2024", "latest"):
        open_registry.push_image(repository, tag, salt=tag)
    tool_id = register(engine, open_registry, repository)
    refresh(engine, tool_id)
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        services.update_tool(
            session,
            CATALOG,
            accounts.get_user(session, "ada"),
            tool_id,
            tag_pattern=r"[0-9]+\.[0-9]+",
        )
    report = refresh(engine, tool_id)
    assert sorted(report.removed) == ["latest", "nightly-2024"]
    assert set(stored(engine, tool_id)["versions"]) == {"1.0", "1.1"}


def test_an_unreachable_registry_changes_nothing_and_the_next_refresh_recovers(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    repository = unique("outage")
    open_registry.push_image(repository, "1.0")
    tool_id = register(engine, open_registry, repository)
    refresh(engine, tool_id)
    before = stored(engine, tool_id)["versions"]

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    report = refresh(engine, tool_id, transport=httpx.MockTransport(down))
    assert report.status == "failed"
    after = stored(engine, tool_id)
    assert after["versions"] == before
    assert after["status"] == "failed"
    assert "unreachable" in after["message"]
    assert refresh(engine, tool_id).status == "ok"
    assert stored(engine, tool_id)["status"] == "ok"


def test_a_server_error_on_one_tag_is_recorded_on_that_version_only(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    repository = unique("flaky")
    open_registry.push_image(repository, "good", salt="good")
    broken_digest = open_registry.push_image(repository, "bad", salt="bad")
    tool_id = register(engine, open_registry, repository)

    def tamper(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET" and request.url.path.endswith(
            ("/manifests/bad", f"/manifests/{broken_digest}")
        ):
            return httpx.Response(
                500, json={"errors": [{"code": "UNKNOWN", "message": "disk on fire"}]}
            )
        return None

    report = refresh(engine, tool_id, transport=proxy(open_registry, tamper), retries=0)
    assert report.status == "partial"
    assert "disk on fire" in report.problems["bad"]
    versions = stored(engine, tool_id)["versions"]
    assert versions["good"]["images"] and versions["good"]["problem"] is None
    assert "disk on fire" in versions["bad"]["problem"]
    healed = refresh(engine, tool_id)
    assert healed.status == "ok"
    assert stored(engine, tool_id)["versions"]["bad"]["problem"] is None


def test_a_429_with_retry_after_is_waited_for(engine: Engine, open_registry: LocalRegistry) -> None:
    repository = unique("limited")
    open_registry.push_image(repository, "1.0")
    tool_id = register(engine, open_registry, repository)
    limited = {"count": 0}

    def tamper(request: httpx.Request) -> httpx.Response | None:
        if "/manifests/" in request.url.path and limited["count"] == 0:
            limited["count"] += 1
            return httpx.Response(429, headers={"Retry-After": "2"})
        return None

    waits: list[float] = []
    now = [0.0]

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    report = refresh(
        engine, tool_id, transport=proxy(open_registry, tamper), sleep=sleep, clock=lambda: now[0]
    )
    assert report.status == "ok"
    assert waits == [2.0]  # once, for every request after the 429


def test_a_failing_token_server_changes_nothing(engine: Engine, registry: LocalRegistry) -> None:
    if registry.token_server is None:
        pytest.skip("only the token registry has a token server")
    repository = unique("tokens")
    registry.push_image(repository, "1.0")
    tool_id = register(engine, registry, repository)
    refresh(engine, tool_id)
    before = stored(engine, tool_id)["versions"]
    registry.token_server.failing = True
    try:
        report = refresh(engine, tool_id)
    finally:
        registry.token_server.failing = False
    assert report.status == "failed"
    assert "token server" in (report.message or "")
    assert stored(engine, tool_id)["versions"] == before


def test_garbage_from_the_registry_changes_nothing(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    repository = unique("garbage")
    open_registry.push_image(repository, "1.0")
    tool_id = register(engine, open_registry, repository)
    refresh(engine, tool_id)
    before = stored(engine, tool_id)["versions"]
    report = refresh(
        engine,
        tool_id,
        transport=httpx.MockTransport(
            lambda request: httpx.Response(200, content=b"<html>captive portal</html>")
        ),
    )
    assert report.status == "failed"
    assert stored(engine, tool_id)["versions"] == before


def test_every_tag_gone_unpublishes_a_published_tool(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    repository = unique("vanishing")
    open_registry.push_image(repository, "1.0")
    tool_id = register(engine, open_registry, repository)
    refresh(engine, tool_id)
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        services.publish(session, accounts.get_user(session, "ada"), tool_id)
    open_registry.delete_tag(repository, "1.0")
    report = refresh(engine, tool_id)
    assert report.removed == ["1.0"]
    state = stored(engine, tool_id)
    assert state["published"] is False
    assert "unpublished" in state["message"]


def test_private_network_registries_are_refused_without_the_operators_consent(
    engine: Engine, open_registry: LocalRegistry
) -> None:
    repository = unique("ssrf")
    open_registry.push_image(repository, "1.0")
    tool_id = register(engine, open_registry, repository)
    report = refresh(engine, tool_id, guard=HostGuard())
    assert report.status == "failed"
    assert "DOCKYARD_ALLOW_PRIVATE_NETWORK_REGISTRIES" in (report.message or "")
    assert stored(engine, tool_id)["versions"] == {}


def test_missing_credentials_are_a_clear_failure(engine: Engine, registry: LocalRegistry) -> None:
    if registry.mode == "open":
        pytest.skip("the open registry needs no credentials")
    repository = unique("nocreds")
    registry.push_image(repository, "1.0")
    tool_id = register(engine, registry, repository, credentials=False)
    report = refresh(engine, tool_id)
    assert report.status == "failed"
    assert "credentials" in (report.message or "")


def test_digest_helper_matches_the_registry(open_registry: LocalRegistry) -> None:
    repository = unique("digest")
    digest = open_registry.push_image(repository, "1.0")
    assert digest_of(open_registry.raw_manifest(repository, "1.0")) == digest


def test_docker_hub_tools_get_push_dates_from_the_hub_api(engine: Engine) -> None:
    def hub(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.url.host == "hub.docker.com":
            pushed = {"name": "1.0", "tag_last_pushed": "2025-03-04T05:06:07Z"}
            return httpx.Response(200, json={"next": None, "results": [pushed]})
        if path.endswith("/tags/list"):
            return httpx.Response(200, json={"tags": ["1.0"]})
        if "/manifests/" in path:
            headers = {
                "Docker-Content-Digest": MANIFEST_DIGEST,
                "Content-Type": "application/vnd.oci.image.manifest.v1+json",
            }
            return httpx.Response(200, headers=headers, content=MANIFEST)
        if path.endswith(CONFIG_DIGEST):
            return httpx.Response(200, content=CONFIG)
        return httpx.Response(404, json={"errors": [{"code": "NOT_FOUND", "message": path}]})

    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        user = accounts.create_user(session, username="hubber", email="hub@example.org")
        tool_id = services.register_tool(
            session, CATALOG, user, services.Registration(image="lab/hubtool")
        ).id
    report = refresh(engine, tool_id, transport=httpx.MockTransport(hub))
    assert report.status == "ok", report.problems
    assert report.requests.get("GET hub tags") == 1
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        tool = session.get(Tool, tool_id)
        assert tool is not None
        (version,) = tool.versions
        assert version.pushed_at is not None
        assert version.pushed_at.isoformat() == "2025-03-04T05:06:07+00:00"


def test_an_unexpected_exception_ends_the_run_failed_with_a_reference(
    engine: Engine, open_registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = unique("crash")
    open_registry.push_image(repository, "1.0")
    tool_id = register(engine, open_registry, repository)

    async def broken(self: Refresher, snapshot: Any, progress: Any) -> RefreshReport:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Refresher, "_refresh", broken)
    report = refresh(engine, tool_id)
    assert report.status == "failed"
    assert report.message is not None and "under reference" in report.message
    with db.unit_of_work(db.make_sessionmaker(engine), write=False) as session:
        run = session.scalars(select(RefreshRun).where(RefreshRun.tool_id == tool_id)).one()
        assert (run.status, run.finished_at is not None) == ("failed", True)
    assert stored(engine, tool_id)["status"] == "failed"
