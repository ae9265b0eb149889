"""The refresh tests again, with `HTTP_PROXY` and `HTTPS_PROXY` naming a real forward proxy
(Debian's tinyproxy) on loopback, as behind an institute's proxy: every registry and token
request the registry client makes goes through it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

import pytest

from dockyard.errors import RegistryHostRefused
from dockyard.registries.transport import RegistryTransport, Reply
from tests.registries.test_proxy import PROXY_VARIABLES
from tests.registries.tinyproxy import Tinyproxy, run_tinyproxy
from tests.tools.test_refresh import *  # noqa: F403 - the same tests, collected again here


@pytest.fixture(scope="module")
def tinyproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tinyproxy]:
    with run_tinyproxy(tmp_path_factory.mktemp("tinyproxy-refresh")) as proxy:
        yield proxy


@pytest.fixture(autouse=True)
def through_tinyproxy(tinyproxy: Tinyproxy, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
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
    for request in fetched:
        assert request in forwarded, f"{request} did not go through the proxy"
