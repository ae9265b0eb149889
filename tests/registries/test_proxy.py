"""The registry client through a real forward proxy (tinyproxy): plain HTTP forwarded,
HTTPS tunnelled with CONNECT, NO_PROXY honoured, and the private-network guard still
deciding what may be asked for."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from dockyard.egress import HostGuard
from dockyard.errors import RegistryHostRefused, RegistryUnavailable
from dockyard.registries.oci import RegistryClient
from dockyard.registries.repository import Repository
from tests.support.network import OPEN_GUARD, PROXY_VARIABLES
from tests.support.registry import LocalRegistry
from tests.support.tinyproxy import Tinyproxy, run_tinyproxy


@pytest.fixture(scope="module")
def tinyproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tinyproxy]:
    with run_tinyproxy(tmp_path_factory.mktemp("tinyproxy")) as proxy:
        yield proxy


@pytest.fixture
def proxied(tinyproxy: Tinyproxy, monkeypatch: pytest.MonkeyPatch) -> Tinyproxy:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", tinyproxy.url)
    monkeypatch.setenv("HTTPS_PROXY", tinyproxy.url)
    return tinyproxy


def read(registry: LocalRegistry, name: str, guard: HostGuard = OPEN_GUARD) -> str:
    async def go() -> str:
        async with RegistryClient(guard=guard, retries=0) as client:
            repository = Repository(host=registry.host, name=name, base_url=registry.url)
            assert await client.list_tags(repository)
            head, _ = await client.platform_images(repository, "1.0")
            return head.digest

    return asyncio.run(go())


def test_plain_http_registries_are_read_through_the_proxy(
    open_registry: LocalRegistry, proxied: Tinyproxy
) -> None:
    digest = open_registry.push_image("proxied/plain", "1.0", salt="tinyproxy-http")
    before = len(proxied.requests())
    assert read(open_registry, "proxied/plain") == digest
    sent = proxied.requests()[before:]
    assert f"GET {open_registry.url}/v2/proxied/plain/tags/list?n=1000" in sent
    assert any("/manifests/1.0" in line for line in sent)


def test_https_registries_are_tunnelled_with_the_certificate_still_verified(
    tls_registry: LocalRegistry, proxied: Tinyproxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = tls_registry.push_image("proxied/tls", "1.0", salt="tinyproxy-tls")
    assert tls_registry.certificate is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_registry.certificate))
    before = len(proxied.requests())
    assert read(tls_registry, "proxied/tls") == digest
    assert f"CONNECT {tls_registry.host}" in proxied.requests()[before:]


def test_no_proxy_sends_the_named_hosts_directly(
    open_registry: LocalRegistry, proxied: Tinyproxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = open_registry.push_image("proxied/direct", "1.0", salt="tinyproxy-direct")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    before = len(proxied.requests())
    assert read(open_registry, "proxied/direct") == digest
    assert proxied.requests()[before:] == []


def test_through_the_proxy_the_guard_still_refuses_private_targets(
    open_registry: LocalRegistry, proxied: Tinyproxy
) -> None:
    before = len(proxied.requests())
    with pytest.raises(RegistryHostRefused, match="loopback, private or link-local"):
        read(open_registry, "proxied/refused", guard=HostGuard())
    assert proxied.requests()[before:] == [], "nothing was asked of the proxy"


def test_a_proxy_on_a_private_address_is_the_operators_choice_and_allowed(
    proxied: Tinyproxy,
) -> None:
    """The proxy itself is on loopback here; only targets are judged by the guard, which
    resolves their names before anything is asked of the proxy."""

    async def go() -> None:
        async with RegistryClient(guard=HostGuard(), retries=0) as client:
            repository = Repository(
                host="registry.invalid", name="x/y", base_url="https://registry.invalid"
            )
            await client.list_tags(repository)

    before = len(proxied.requests())
    with pytest.raises(RegistryUnavailable, match=r"cannot resolve registry\.invalid"):
        asyncio.run(go())
    assert proxied.requests()[before:] == []
