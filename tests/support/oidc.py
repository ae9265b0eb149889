"""A real OpenID provider on loopback (node-oidc-provider under Node, from
tests/support/node), and signing in through its development login page in Chromium."""

from __future__ import annotations

import json
import select
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from pydantic import SecretStr

from dockyard.settings import Settings
from tests.support.app import TEST_SECRET_KEY, serving

NODE_TOOLS = Path(__file__).parent / "node"
CLIENT_SECRET = "a-client-secret-of-the-tests-0123456789"


@dataclass(frozen=True)
class Client:
    """A client registered at the provider: dockyard, as one `[providers.KEY]` of its file."""

    key: str
    client_id: str
    #: The provider signs this client's ID tokens for another application.
    wrong_audience: bool = False


@contextmanager
def oidc_provider(tmp_path: Path, dockyard_url: str, clients: Sequence[Client]) -> Iterator[str]:
    """The provider, with `clients` allowed back to `dockyard_url`; its issuer URL."""
    node = shutil.which("node")
    if node is None or not (NODE_TOOLS / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("Node and tests/support/node's packages are needed: run scripts/install")
    config = tmp_path / "oidc-provider.json"
    config.write_text(
        json.dumps(
            {
                "port": 0,
                "clients": [
                    {
                        "client_id": client.client_id,
                        "client_secret": CLIENT_SECRET,
                        "redirect_uris": [f"{dockyard_url}/signin/oidc/{client.key}/callback"],
                    }
                    for client in clients
                ],
                "wrong_audience_clients": [c.client_id for c in clients if c.wrong_audience],
            }
        )
    )
    log = (tmp_path / "oidc-provider.log").open("wb")
    process = subprocess.Popen(
        [node, str(NODE_TOOLS / "oidc_provider.mjs"), str(config)],
        stdout=subprocess.PIPE,
        stderr=log,
        cwd=NODE_TOOLS,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 20)
        line = process.stdout.readline() if ready else b""
        if not line:
            pytest.fail(f"the OpenID provider did not start: {_tail(tmp_path)}", pytrace=False)
        yield str(json.loads(line)["issuer"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if process.stdout is not None:
            process.stdout.close()
        log.close()


def providers_file(path: Path, issuer: str, clients: Sequence[Client]) -> Path:
    """dockyard's providers file for these clients of the provider at `issuer`."""
    tables = [
        f'[providers.{c.key}]\ndisplay_name = "{c.key.title()} login"\nissuer = "{issuer}"\n'
        f'client_id = "{c.client_id}"\nclient_secret = "{CLIENT_SECRET}"\n'
        for c in clients
    ]
    path.write_text("\n".join(tables))
    return path


def log_in_at_provider(page: Page, login: str) -> None:
    """The provider's development login page: any login name, any password."""
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password will do")
    page.get_by_role("button", name="Sign-in").click()


#: The clients of the web tests' provider: `lab`, and `mixup`, whose ID tokens the provider
#: issues for another application.
CLIENTS = (Client("lab", "dockyard-lab"), Client("mixup", "dockyard-mixup", wrong_audience=True))


@dataclass
class Instance:
    """A live dockyard whose sign-in providers are the loopback provider's clients."""

    url: str
    issuer: str


StartInstance = Callable[..., Instance]


@contextmanager
def instances(database_url: str, tmp_path: Path) -> Iterator[StartInstance]:
    """Starts such dockyards (and their provider), all stopped when the block ends."""
    with ExitStack() as stack:

        def start(self_signup: str = "true") -> Instance:
            issuers: list[str] = []

            def settings(url: str) -> Settings:
                issuer = stack.enter_context(oidc_provider(tmp_path, url, CLIENTS))
                issuers.append(issuer)
                return Settings(
                    database_url=database_url,
                    data_dir=tmp_path,
                    secret_key=SecretStr(TEST_SECRET_KEY),
                    background_refresh=False,
                    auth_providers_file=providers_file(tmp_path / "auth.toml", issuer, CLIENTS),
                    self_signup=self_signup,
                )

            url = stack.enter_context(serving(settings))
            return Instance(url, issuers[0])

        yield start


def new_page(browser: Browser, url: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(base_url=url, viewport={"width": 1200, "height": 900})
    return context, context.new_page()


def sign_in_with(page: Page, provider: str, login: str) -> None:
    """Click the provider's button; log in there unless the provider still knows this
    browser (then it answers at once)."""
    page.goto("/signin")
    page.get_by_role("link", name=f"Sign in with {provider} login").click()
    at_provider(page, login)


def at_provider(page: Page, login: str) -> None:
    """Log in at the provider, if it asks (it remembers a browser it signed in before)."""
    page.wait_for_url(
        lambda url: "/interaction/" in url or "/callback" in url or "/signin/oidc/" not in url
    )
    if "/interaction/" in page.url:
        log_in_at_provider(page, login)


def _tail(tmp_path: Path) -> str:
    log = tmp_path / "oidc-provider.log"
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""
