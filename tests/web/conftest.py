"""The browser and the people the web tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support.app import MakeUser
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD


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
