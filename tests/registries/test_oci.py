"""The OCI client against a real registry (three auth modes) and against scripted answers."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.egress import HostGuard
from dockyard.errors import (
    RegistryAuthFailed,
    RegistryHostRefused,
    RegistryNotFound,
    RegistryProtocolError,
    RegistryRateLimited,
    RegistryUnavailable,
    UnsupportedManifest,
)
from dockyard.registries.manifests import ACCEPT, OCI_MANIFEST
from dockyard.registries.oci import RegistryClient
from dockyard.registries.repository import Credentials, Repository, base_url_for
from tests.support.network import OPEN_GUARD
from tests.support.registry import LocalRegistry, digest_of, run_registry
from tests.support.scripted import fetch_from


def repo(
    registry: LocalRegistry, name: str, credentials: tuple[str, str] | None = None
) -> Repository:
    creds = credentials or registry.pull_credentials
    return Repository(
        host=registry.host,
        name=name,
        base_url=base_url_for(registry.host),
        credentials=Credentials(*creds) if creds else None,
    )


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def _with_client(action: Callable[[RegistryClient], Any], **kwargs: Any) -> Any:
    async with RegistryClient(guard=kwargs.pop("guard", OPEN_GUARD), **kwargs) as client:
        return await action(client)


def test_tags_digests_and_platforms_match_what_was_pushed(registry: LocalRegistry) -> None:
    single = registry.push_image("lab/single", "1.0", architecture="arm64", variant="v8")
    index = registry.push_index(
        "lab/multi", "2.0", [("linux", "amd64", None), ("linux", "arm64", "v8")], attestation=True
    )
    registry.push_image("lab/single", "latest", architecture="arm64", variant="v8")

    async def action(client: RegistryClient) -> Any:
        tags = await client.list_tags(repo(registry, "lab/single"))
        head = await client.head_manifest(repo(registry, "lab/multi"), "2.0")
        _, single_images = await client.platform_images(repo(registry, "lab/single"), "1.0")
        multi_head, multi_images = await client.platform_images(repo(registry, "lab/multi"), "2.0")
        return tags, head, single_images, multi_head, multi_images

    tags, head, single_images, multi_head, multi_images = run(_with_client(action))
    assert sorted(tags) == ["1.0", "latest"]
    assert head.digest == index == multi_head.digest
    [image] = single_images
    assert (image.digest, image.os, image.architecture, image.variant) == (
        single,
        "linux",
        "arm64",
        "v8",
    )
    manifest = json.loads(registry.raw_manifest("lab/single", "1.0"))
    assert image.size == manifest["config"]["size"] + sum(
        layer["size"] for layer in manifest["layers"]
    )
    assert (
        image.created is not None
        and image.created.isoformat() == "2024-05-01T12:00:00.123456+00:00"
    )
    assert [(i.os, i.architecture, i.variant) for i in multi_images] == [
        ("linux", "amd64", None),
        ("linux", "arm64", "v8"),
    ]
    entries = json.loads(registry.raw_manifest("lab/multi", "2.0"))["manifests"]
    assert [i.digest for i in multi_images] == [e["digest"] for e in entries[:2]]


def test_results_agree_with_skopeo_inspect_raw(registry: LocalRegistry) -> None:
    registry.push_index(
        "lab/skopeo", "1.0", [("linux", "amd64", None), ("linux", "arm", "v7")], salt="skopeo"
    )
    command = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
    if registry.pull_credentials:
        command += ["--creds", ":".join(registry.pull_credentials)]
    raw = subprocess.run(
        [*command, f"docker://{registry.host}/lab/skopeo:1.0"], capture_output=True, check=True
    ).stdout
    index = json.loads(raw)

    head, images = run(
        _with_client(lambda client: client.platform_images(repo(registry, "lab/skopeo"), "1.0"))
    )
    assert head.digest == digest_of(raw)
    assert [i.digest for i in images] == [entry["digest"] for entry in index["manifests"]]
    for image, entry in zip(images, index["manifests"], strict=True):
        platform_raw = subprocess.run(
            [*command, f"docker://{registry.host}/lab/skopeo@{entry['digest']}"],
            capture_output=True,
            check=True,
        ).stdout
        platform = json.loads(platform_raw)
        assert image.size == platform["config"]["size"] + sum(
            layer["size"] for layer in platform["layers"]
        )
        assert (image.os, image.architecture, image.variant) == (
            entry["platform"]["os"],
            entry["platform"]["architecture"],
            entry["platform"].get("variant"),
        )


def test_a_missing_tag_is_not_found_with_the_oci_code(registry: LocalRegistry) -> None:
    registry.push_image("lab/missing", "1.0")
    with pytest.raises(RegistryNotFound) as caught:
        run(
            _with_client(lambda client: client.head_manifest(repo(registry, "lab/missing"), "nope"))
        )
    assert caught.value.host == registry.host
    assert caught.value.repository == "lab/missing"


def test_without_credentials_a_protected_registry_says_what_is_needed(
    registry: LocalRegistry,
) -> None:
    if registry.mode == "open":
        pytest.skip("the open registry needs no credentials")
    anonymous = Repository(host=registry.host, name="lab/single", base_url=registry.url)
    with pytest.raises(RegistryAuthFailed, match=r"needs credentials|refused anonymous access"):
        run(_with_client(lambda client: client.list_tags(anonymous)))


def test_wrong_credentials_are_refused_without_echoing_them(registry: LocalRegistry) -> None:
    if registry.mode == "open":
        pytest.skip("the open registry needs no credentials")
    wrong = repo(registry, "lab/single", ("robot", "not-the-password-xyz"))
    with pytest.raises(RegistryAuthFailed) as caught:
        run(_with_client(lambda client: client.list_tags(wrong)))
    assert "refused the credentials" in caught.value.message
    assert "not-the-password-xyz" not in caught.value.message


def test_tokens_are_cached_per_scope(tmp_path: Path) -> None:
    with run_registry("token", tmp_path) as registry:
        registry.push_image("lab/cached", "1.0")
        registry.push_image("lab/cached", "2.0")
        assert registry.token_server is not None
        before = registry.token_server.requests

        async def action(client: RegistryClient) -> None:
            for tag in ("1.0", "2.0", "1.0"):
                await client.head_manifest(repo(registry, "lab/cached"), tag)
            await client.list_tags(repo(registry, "lab/cached"))

        run(_with_client(action))
        assert registry.token_server.requests - before == 1


def test_a_failing_token_server_is_an_auth_failure_naming_it(tmp_path: Path) -> None:
    with run_registry("token", tmp_path) as registry:
        assert registry.token_server is not None
        registry.token_server.failing = True
        with pytest.raises(RegistryAuthFailed, match=r"token server answered 500"):
            run(_with_client(lambda client: client.list_tags(repo(registry, "lab/x"))))


def test_loopback_registries_are_refused_unless_the_operator_allows_them(
    registry: LocalRegistry,
) -> None:
    with pytest.raises(RegistryHostRefused, match="DOCKYARD_ALLOW_PRIVATE_NETWORK_REGISTRIES"):
        run(
            _with_client(
                lambda client: client.list_tags(repo(registry, "lab/single")), guard=HostGuard()
            )
        )
    token_host = [registry.token_server.realm.split("/")[2]] if registry.token_server else []
    trusted = HostGuard(trusted_hosts=[registry.host, *token_host])
    run(_with_client(lambda client: client.list_tags(repo(registry, "lab/single")), guard=trusted))


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.5",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.169.254",
        "127.0.0.1",
        "::1",
        "fe80::1",
        "::ffff:10.0.0.1",
        "100.64.0.1",
    ],
)
def test_private_and_metadata_addresses_are_refused(address: str) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return [address]

    with pytest.raises(RegistryHostRefused):
        asyncio.run(HostGuard(resolve=resolve).check("https://registry.example.org/v2/"))


def test_public_addresses_pass_the_guard() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]

    asyncio.run(HostGuard(resolve=resolve).check("https://registry.example.org/v2/"))


# --- registry behaviour a local registry lacks, through httpx.MockTransport ------------------

PUBLIC = HostGuard(resolve=lambda host, port: _public())


async def _public() -> list[str]:
    return ["93.184.216.34"]


def scripted(
    handler: Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[Any, Any, httpx.Response]],
    **kwargs: Any,
) -> RegistryClient:
    sleeps: list[float] = kwargs.pop("sleeps", [])
    now = [1000.0]  # time passes only when the client sleeps (unless the test keeps it)
    kwargs.setdefault("clock", lambda: now[0])

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    return RegistryClient(
        guard=PUBLIC, fetch=fetch_from(httpx.MockTransport(handler)), sleep=sleep, **kwargs
    )


HUB = Repository(host="docker.io", name="library/ubuntu", base_url="https://registry-1.docker.io")


def test_tag_pages_follow_the_link_header_verbatim() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if "page=opaque-token-2" in str(request.url):
            return httpx.Response(200, json={"name": "library/ubuntu", "tags": ["c"]})
        return httpx.Response(
            200,
            json={"tags": ["a", "b"]},
            headers={"Link": '</v2/library/ubuntu/tags/list?page=opaque-token-2&n=2>; rel="next"'},
        )

    async def action() -> list[str]:
        async with scripted(handler) as client:
            return await client.list_tags(HUB)

    assert asyncio.run(action()) == ["a", "b", "c"]
    assert (
        seen[1]
        == "https://registry-1.docker.io/v2/library/ubuntu/tags/list?page=opaque-token-2&n=2"
    )


def test_429_waits_for_retry_after_then_succeeds() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(200, json={"tags": ["x"]}),
        ]
    )
    sleeps: list[float] = []

    async def action() -> list[str]:
        async with scripted(lambda request: next(answers), sleeps=sleeps) as client:
            return await client.list_tags(HUB)

    assert asyncio.run(action()) == ["x"]
    assert sleeps == [7.0]


def test_a_long_retry_after_is_reported_instead_of_waited_for() -> None:
    async def action() -> None:
        async with scripted(
            lambda request: httpx.Response(
                429,
                headers={"Retry-After": "3600"},
                json={"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]},
            )
        ) as client:
            await client.list_tags(HUB)

    with pytest.raises(RegistryRateLimited) as caught:
        asyncio.run(action())
    assert caught.value.retry_after == 3600


def test_server_errors_are_retried_a_little_then_reported() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(
            503, json={"errors": [{"code": "UNAVAILABLE", "message": "maintenance"}]}
        )

    async def action() -> None:
        async with scripted(handler) as client:
            await client.list_tags(HUB)

    with pytest.raises(RegistryUnavailable, match="server error 503: maintenance") as caught:
        asyncio.run(action())
    assert caught.value.oci_code == "UNAVAILABLE"
    assert len(calls) == 3


def test_timeouts_and_unreachable_hosts_are_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow", request=request)

    async def action() -> None:
        async with scripted(handler) as client:
            await client.list_tags(HUB)

    with pytest.raises(RegistryUnavailable, match="timed out"):
        asyncio.run(action())


def test_credentials_are_not_forwarded_to_another_host_on_redirect() -> None:
    seen: list[tuple[str, str | None]] = []
    config = json.dumps({"os": "linux", "architecture": "amd64"}).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"digest": digest_of(config), "size": len(config)},
            "layers": [],
        }
    ).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        if request.url.host == "cdn.example.net":
            return httpx.Response(200, content=config)
        if request.headers.get("authorization") is None:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="lab"'})
        if "/blobs/" in request.url.path:
            return httpx.Response(307, headers={"Location": "https://cdn.example.net/blob?sig=abc"})
        return httpx.Response(
            200,
            content=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )

    repository = Repository(
        host="lab.example.org",
        name="ns/img",
        base_url="https://lab.example.org",
        credentials=Credentials("u", "p"),
    )

    async def action() -> None:
        async with scripted(handler) as client:
            await client.platform_images(repository, "1.0")

    asyncio.run(action())
    assert seen[-1] == ("cdn.example.net", None)
    assert [auth is not None for host, auth in seen if host == "lab.example.org"] == [
        False,
        True,
        True,
    ]


def test_the_same_accept_list_is_sent_on_head_and_get() -> None:
    accepts: list[str | None] = []
    config = b"{}"
    manifest = json.dumps(
        {"schemaVersion": 2, "config": {"digest": digest_of(config), "size": 2}, "layers": []}
    ).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        if "/manifests/" in request.url.path:
            accepts.append(request.headers.get("accept"))
            return httpx.Response(
                200,
                content=manifest if request.method == "GET" else b"",
                headers={
                    "Docker-Content-Digest": digest_of(manifest),
                    "Content-Type": "application/vnd.oci.image.manifest.v1+json",
                },
            )
        return httpx.Response(200, content=config)

    async def action() -> None:
        async with scripted(handler) as client:
            await client.head_manifest(HUB, "latest")
            await client.platform_images(HUB, "latest")

    asyncio.run(action())
    assert accepts == [ACCEPT, ACCEPT]


def test_schema_1_manifests_are_refused_with_advice() -> None:
    body = json.dumps(
        {"schemaVersion": 1, "name": "library/ubuntu", "tag": "old", "fsLayers": []}
    ).encode()

    async def action() -> None:
        async with scripted(
            lambda request: httpx.Response(
                200,
                content=body,
                headers={
                    "Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"
                },
            )
        ) as client:
            await client.platform_images(HUB, "old")

    with pytest.raises(UnsupportedManifest, match="schema 1"):
        asyncio.run(action())


def test_a_manifest_whose_content_does_not_match_its_digest_is_refused() -> None:
    async def action() -> None:
        async with scripted(
            lambda request: httpx.Response(200, content=b'{"schemaVersion": 2}')
        ) as client:
            await client.get_manifest(HUB, "sha256:" + "0" * 64)

    with pytest.raises(RegistryProtocolError, match="arrived with content of digest"):
        asyncio.run(action())


def test_oversized_and_garbage_answers_are_protocol_errors() -> None:
    async def huge() -> None:
        async with scripted(
            lambda request: httpx.Response(200, content=b"x" * (4 * 1024 * 1024 + 1))
        ) as client:
            await client.get_manifest(HUB, "latest")

    async def garbage() -> None:
        async with scripted(
            lambda request: httpx.Response(200, content=b"<html>oops</html>")
        ) as client:
            await client.list_tags(HUB)

    with pytest.raises(RegistryProtocolError, match="larger than"):
        asyncio.run(huge())
    with pytest.raises(RegistryProtocolError, match="not valid JSON"):
        asyncio.run(garbage())


def test_docker_hub_rate_limit_headers_are_recorded() -> None:
    async def action() -> dict[str, int]:
        async with scripted(
            lambda request: httpx.Response(
                200, json={"tags": []}, headers={"ratelimit-remaining": "76;w=21600"}
            )
        ) as client:
            await client.list_tags(HUB)
            return client.pulls.remaining

    assert asyncio.run(action()) == {"docker.io": 76}


def test_bearer_challenges_fetch_a_token_once_and_use_it() -> None:
    token_calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.docker.io":
            token_calls.append(str(request.url))
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 300})
        if request.headers.get("authorization") != "Bearer tok":
            return httpx.Response(
                401,
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"'
                },
            )
        return httpx.Response(200, json={"tags": ["22.04"]})

    async def action() -> list[str]:
        async with scripted(handler) as client:
            await client.list_tags(HUB)
            return await client.list_tags(HUB)

    assert asyncio.run(action()) == ["22.04"]
    assert token_calls == [
        "https://auth.docker.io/token?scope=repository%3Alibrary%2Fubuntu%3Apull&service=registry.docker.io"
    ]


def test_the_first_of_several_challenges_is_answered_with_its_own_realm() -> None:
    """Registries may offer Bearer and Basic in two headers, which arrive joined."""
    token_calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.docker.io":
            token_calls.append(request.url.path)
            return httpx.Response(200, json={"token": "tok"})
        if request.headers.get("authorization") != "Bearer tok":
            return httpx.Response(
                401,
                headers=[
                    ("WWW-Authenticate", 'Bearer realm="https://auth.docker.io/token"'),
                    ("WWW-Authenticate", 'Basic realm="https://registry-1.docker.io/v2/"'),
                ],
            )
        return httpx.Response(200, json={"tags": ["22.04"]})

    async def action() -> list[str]:
        async with scripted(handler) as client:
            return await client.list_tags(HUB)

    assert asyncio.run(action()) == ["22.04"]
    assert token_calls == ["/token"]


def test_base_urls_use_plain_http_only_for_loopback_or_insecure_hosts() -> None:
    assert base_url_for("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert base_url_for("localhost:5000") == "http://localhost:5000"
    assert base_url_for("[::1]:5000") == "http://[::1]:5000"
    assert base_url_for("quay.io") == "https://quay.io"
    assert (
        base_url_for("docker.io", api_host="registry-1.docker.io") == "https://registry-1.docker.io"
    )
    assert base_url_for("lab.example.org:5000", insecure=True) == "http://lab.example.org:5000"


def test_after_a_long_retry_after_no_request_reaches_that_host_until_it_is_over() -> None:
    calls: list[str] = []
    now = [1000.0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(429, headers={"Retry-After": "600"})

    other = Repository(
        host="docker.io", name="library/debian", base_url="https://registry-1.docker.io"
    )

    async def action() -> None:
        async with scripted(handler, clock=lambda: now[0]) as client:
            with pytest.raises(RegistryRateLimited):
                await client.list_tags(HUB)
            with pytest.raises(
                RegistryRateLimited, match=r"rate-limited until \d{4}-\d\d-\d\d [\d:]+ UTC"
            ) as caught:
                await client.list_tags(other)
            assert caught.value.retry_after == pytest.approx(600)
            now[0] += 601
            with pytest.raises(RegistryRateLimited, match="rate-limited until") as caught:
                await client.list_tags(other)

            assert caught.value.retry_after == pytest.approx(600)

    asyncio.run(action())
    assert calls == ["/v2/library/ubuntu/tags/list", "/v2/library/debian/tags/list"]


def test_connections_are_kept_after_head_requests(
    open_registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    open_registry.push_image("keep/alive", "1", salt="keepalive")
    connects: list[object] = []
    connect = socket.socket.connect

    def counting(self: socket.socket, address: Any) -> None:
        connects.append(address)
        connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", counting)

    async def many(client: RegistryClient) -> None:
        repository = repo(open_registry, "keep/alive")
        for _ in range(5):
            await client.head_manifest(repository, "1")
            await client.list_tags(repository)

    run(_with_client(many))
    assert len(connects) == 1  # one connection for ten requests, HEADs included


def test_docker_hub_push_dates_follow_the_hub_api_pages() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert request.url.host == "hub.docker.com"
        if "page=2" in str(request.url):
            return httpx.Response(
                200,
                json={
                    "next": None,
                    "results": [{"name": "22.04", "last_updated": "2024-02-01T00:00:00Z"}],
                },
            )
        return httpx.Response(
            200,
            json={
                "next": "https://hub.docker.com/v2/namespaces/library/repositories/ubuntu/tags?page=2&page_size=100",
                "results": [
                    {"name": "24.04", "tag_last_pushed": "2024-05-01T12:30:00.123456789Z"},
                    {"name": "weird"},
                ],
            },
        )

    async def action() -> dict[str, Any]:
        async with scripted(handler) as client:
            return await client.push_dates(HUB, "dockerhub", [])

    dates = asyncio.run(action())
    assert {tag: moment.isoformat() for tag, moment in dates.items()} == {
        "24.04": "2024-05-01T12:30:00.123456+00:00",
        "22.04": "2024-02-01T00:00:00+00:00",
    }
    assert seen[0] == (
        "https://hub.docker.com/v2/namespaces/library/repositories/ubuntu/tags?page_size=100"
    )


def test_quay_push_dates_page_until_no_more_and_failures_give_nothing() -> None:
    quay = Repository(host="quay.io", name="biocontainers/samtools", base_url="https://quay.io")
    pages: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        pages.append(request.url.params["page"])
        assert request.url.path == "/api/v1/repository/biocontainers/samtools/tag/"
        more = request.url.params["page"] == "1"
        tag = {"name": f"1.{request.url.params['page']}", "start_ts": 1714566600}
        return httpx.Response(200, json={"tags": [tag], "has_additional": more})

    async def action(answer: Callable[[httpx.Request], httpx.Response]) -> dict[str, Any]:
        async with scripted(answer) as client:
            return await client.push_dates(quay, "quay", [])

    dates = asyncio.run(action(handler))
    assert pages == ["1", "2"]
    assert dates["1.2"].isoformat() == "2024-05-01T12:30:00+00:00"
    private = asyncio.run(action(lambda request: httpx.Response(401, json={"error": "private"})))
    garbage = asyncio.run(action(lambda request: httpx.Response(200, content=b"<html>")))
    assert private == {} and garbage == {}
    assert asyncio.run(action(lambda request: httpx.Response(200))) == {}


def test_gitlab_push_dates_find_the_project_then_ask_each_changed_tag() -> None:
    image = Repository(
        host="registry.gitlab.com",
        name="group/project/aligner",
        base_url="https://registry.gitlab.com",
    )
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        asked.append(path)
        assert request.url.host == "gitlab.com"
        if path.startswith("/api/v4/projects/group%2Fproject%2Faligner/"):
            return httpx.Response(404, json={"message": "404 Project Not Found"})
        if path.startswith("/api/v4/projects/group%2Fproject/registry/repositories"):
            other = {"id": 1, "project_id": 7, "path": "group/project"}
            ours = {"id": 2, "project_id": 7, "path": "group/project/aligner"}
            return httpx.Response(200, json=[other, ours])
        if path == "/api/v4/projects/7/registry/repositories/2/tags/1.0":
            return httpx.Response(
                200, json={"name": "1.0", "created_at": "2025-01-02T03:04:05+00:00"}
            )
        return httpx.Response(404, json={"message": "404 Tag Not Found"})

    async def action() -> dict[str, Any]:
        async with scripted(handler) as client:
            return await client.push_dates(image, "gitlab", ["1.0", "gone"])

    dates = asyncio.run(action())
    assert {tag: moment.isoformat() for tag, moment in dates.items()} == {
        "1.0": "2025-01-02T03:04:05+00:00"
    }
    assert asked[-1] == "/api/v4/projects/7/registry/repositories/2/tags/gone"
    assert len(asked) == 4  # two project guesses, two tags


def test_the_manifest_cache_keeps_only_the_most_recently_used(
    open_registry: LocalRegistry,
) -> None:
    digests = [
        open_registry.push_image("bounded/cache", f"v{n}", salt=f"bounded{n}") for n in range(3)
    ]

    async def reads(client: RegistryClient) -> list[int]:
        repository = repo(open_registry, "bounded/cache")
        counts = []
        for digest in [*digests, digests[2], digests[1], digests[0]]:
            await client.get_manifest(repository, digest)
            counts.append(client.stats["GET manifest"])
        return counts

    # Three reads, then the two kept are served from memory and the evicted one is asked again.
    assert run(_with_client(reads, cache_entries=2)) == [1, 2, 3, 3, 3, 4]


@pytest.mark.parametrize("fails", [False, True])
def test_tags_asking_for_one_digest_at_once_share_a_single_get(fails: bool) -> None:
    manifest = json.dumps({"schemaVersion": 2, "config": {}, "layers": []}).encode()
    digest = digest_of(manifest)
    gets: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        gets.append(request.url.path)
        await asyncio.sleep(0.05)  # the others ask while this one is on the wire
        if fails:
            return httpx.Response(500, json={"errors": [{"code": "UNKNOWN", "message": "down"}]})
        return httpx.Response(200, content=manifest, headers={"Content-Type": OCI_MANIFEST})

    async def together() -> list[Any]:
        async with scripted(handler, retries=0) as client:
            answers = await asyncio.gather(
                *(client.get_manifest(HUB, digest) for _ in range(5)), return_exceptions=True
            )
            assert client._fetching == {}  # nothing left waiting
            return answers

    answers = asyncio.run(together())
    assert len(gets) == 1
    if fails:
        assert all(isinstance(a, RegistryUnavailable) for a in answers)
    else:
        assert {a[1].digest for a in answers} == {digest}


# --- origins, challenges learnt once, tokens for many scopes, shared pauses ------------------


def _redirecting(location: str, seen: list[tuple[str, str | None]]) -> Any:
    """lab.example.org asks for Basic credentials, then redirects its tag list elsewhere."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        at_origin = str(request.url).startswith("https://lab.example.org/")
        if at_origin and request.headers.get("authorization") is None:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="lab"'})
        if at_origin:
            return httpx.Response(307, headers={"Location": location})
        return httpx.Response(200, json={"tags": ["1.0"]})

    return handler


LAB = Repository(
    host="lab.example.org",
    name="ns/img",
    base_url="https://lab.example.org",
    credentials=Credentials("u", "p"),
)


def test_a_redirect_from_https_to_http_is_refused_and_sends_nothing_in_clear_text() -> None:
    seen: list[tuple[str, str | None]] = []

    async def action() -> None:
        async with scripted(_redirecting("http://lab.example.org/v2/ns/img/tags/list", seen)) as c:
            await c.list_tags(LAB)

    with pytest.raises(RegistryProtocolError, match="redirected from https to http") as caught:
        asyncio.run(action())
    assert all(url.startswith("https://") for url, _ in seen), "nothing went over http"
    assert "p" not in caught.value.message.split(": ", 1)[1].split()


@pytest.mark.parametrize(
    "location",
    ["https://lab.example.org:8443/v2/ns/img/tags/list", "https://cdn.example.net/tags"],
    ids=["another port", "another host"],
)
def test_credentials_stay_with_the_origin_they_were_given_for(location: str) -> None:
    seen: list[tuple[str, str | None]] = []

    async def action() -> list[str]:
        async with scripted(_redirecting(location, seen)) as client:
            return await client.list_tags(LAB)

    assert asyncio.run(action()) == ["1.0"]
    assert seen[-1] == (location, None)
    assert [auth is not None for _, auth in seen[:-1]] == [False, True]


def test_many_repositories_at_once_learn_the_challenge_once_and_share_one_token() -> None:
    unauthenticated: list[str] = []
    token_scopes: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.lab.example.org":
            token_scopes.append(request.url.params.get_list("scope"))
            return httpx.Response(200, json={"token": "tok", "expires_in": 300})
        if request.headers.get("authorization") != "Bearer tok":
            unauthenticated.append(request.url.path)
            return httpx.Response(
                401,
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://auth.lab.example.org/token",'
                    'service="lab"'
                },
            )
        return httpx.Response(200, json={"tags": [request.url.path.split("/")[3]]})

    names = [f"lab/tool{n}" for n in range(60)]

    async def action() -> list[list[str]]:
        async with scripted(handler) as client:
            repositories = [
                Repository(host="lab.example.org", name=name, base_url="https://lab.example.org")
                for name in names
            ]
            return list(await asyncio.gather(*(client.list_tags(r) for r in repositories)))

    assert asyncio.run(action()) == [[f"tool{n}"] for n in range(60)]
    assert len(unauthenticated) == 1, "one request learnt the challenge; the others waited"
    # One token request per 50 scopes (the token specification lets `scope` repeat).
    assert sorted(len(scopes) for scopes in token_scopes) == [10, 50]
    assert sorted(s for scopes in token_scopes for s in scopes) == sorted(
        f"repository:{name}:pull" for name in names
    )


def test_a_429_pauses_every_request_to_that_registry_once() -> None:
    answered_429 = 0
    now = [0.0]
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal answered_429
        if now[0] < 3 and answered_429 == 0:
            answered_429 += 1
            return httpx.Response(429, headers={"Retry-After": "3"})
        if now[0] < 3:
            raise AssertionError("a request reached the registry during its pause")
        return httpx.Response(200, json={"tags": ["1"]})

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0)
        now[0] = max(now[0], 3.0)

    async def action() -> None:
        client = RegistryClient(
            guard=PUBLIC,
            fetch=fetch_from(httpx.MockTransport(handler)),
            sleep=sleep,
            clock=lambda: now[0],
        )
        async with client:
            repositories = [
                Repository(host="docker.io", name=f"lab/t{n}", base_url=HUB.base_url)
                for n in range(5)
            ]
            await asyncio.gather(*(client.list_tags(r) for r in repositories))

    asyncio.run(action())
    assert answered_429 == 1
    assert sleeps == [3.0] * 5  # the one answered 429, and the four that waited with it


def test_a_reserve_of_docker_hubs_pull_allowance_is_kept() -> None:
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}
    ).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=manifest,
            headers={
                "Content-Type": OCI_MANIFEST,
                "Docker-Content-Digest": digest_of(manifest),
                "ratelimit-remaining": "5;w=21600",
            },
        )

    async def action() -> None:
        async with scripted(handler) as client:
            await client.get_manifest(HUB, "22.04")  # learns that 5 pulls are left
            assert (await client.head_manifest(HUB, "22.04")).digest == digest_of(manifest)
            with pytest.raises(RegistryRateLimited, match="pulls are left") as caught:
                await client.get_manifest(HUB, "24.04")
            assert caught.value.retry_after == pytest.approx(21600, abs=5)
            assert client.stats["GET manifest"] == 1

    asyncio.run(action())
