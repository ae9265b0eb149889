"""The browser and the people the web tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright
from pydantic import SecretStr

from dockyard.settings import Settings
from tests.support.app import TEST_SECRET_KEY, MakeUser, serving
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD
from tests.support.oidc import StartInstance, instances


@pytest.fixture
def server(database_url: str, tmp_path: Path, engine: object) -> Iterator[str]:
    """A live dockyard on the test database (file:// repositories and a loopback registry
    allowed, as the workflow pages' tests read them)."""
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key=SecretStr(TEST_SECRET_KEY),
        background_refresh=False,
        allow_private_network_registries=True,
    )
    with serving(settings) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/test installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def people(make_user: MakeUser) -> None:
    make_user("maria", password=PASSWORD)
    make_user("bob", password=PASSWORD)


@pytest.fixture
def instance(database_url: str, tmp_path: Path, engine: object) -> Iterator[StartInstance]:
    """Starts a live dockyard that signs people in through a real OpenID provider."""
    with instances(database_url, tmp_path) as start:
        yield start
