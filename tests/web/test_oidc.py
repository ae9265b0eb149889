"""Signing in through a real OpenID provider (node-oidc-provider on loopback) in Chromium: a new
person gets an account, a known one their own, and a forged state, a replayed answer, a
replayed code and an ID token for another application sign nobody in."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect
from pydantic import SecretStr
from sqlalchemy import Engine, select

from dockyard import db
from dockyard.accounts import services as accounts
from dockyard.accounts.models import User, UserIdentity
from dockyard.settings import Settings
from tests.support.app import TEST_SECRET_KEY, MakeUser, serving
from tests.support.browser import PASSWORD, shoot
from tests.support.oidc import Client, log_in_at_provider, oidc_provider, providers_file

pytestmark = pytest.mark.usefixtures("engine")

CLIENTS = (Client("lab", "dockyard-lab"), Client("mixup", "dockyard-mixup", wrong_audience=True))


@dataclass
class Instance:
    url: str
    issuer: str


StartInstance = Callable[..., Instance]


@pytest.fixture
def instance(database_url: str, tmp_path: Path) -> Iterator[StartInstance]:
    """Starts dockyard with the loopback provider's clients in its providers file."""
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


def held_callback(page: Page, provider: str, login: str) -> str:
    """Sign in at the provider, but keep its answer (the callback address, with the code and
    state) from dockyard: the provider's redirects after the login form are followed by
    hand, in the browser's own cookie jar, up to the one that goes back to dockyard."""
    held: list[str] = []

    def hold(route: Route) -> None:
        if route.request.method != "POST":  # the login page itself
            route.continue_()
            return
        answer = route.fetch(max_redirects=0)
        location = answer.headers.get("location", "")
        while location and not location.startswith(here[0]):
            answer = page.request.get(urljoin(answer.url, location), max_redirects=0)
            location = answer.headers.get("location", "")
        held.append(location)
        route.fulfill(status=204, body="")

    page.goto("/signin")
    here = [page.url.removesuffix("/signin")]
    page.route(re.compile(r".*/interaction/[^/?]+$"), hold)
    page.get_by_role("link", name=f"Sign in with {provider} login").click()
    page.wait_for_url(lambda url: "/interaction/" in url)
    log_in_at_provider(page, login)
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(100)
    page.unroute(re.compile(r".*/interaction/[^/?]+$"))
    assert held and "/callback?" in held[0], f"the provider never sent the browser back: {held}"
    return held[0]


def with_param(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def users_and_identities(engine: Engine) -> tuple[list[str], list[tuple[str, str]]]:
    with db.make_sessionmaker(engine)() as session:
        users = list(session.scalars(select(User.username).order_by(User.id)))
        linked = [
            (row.user.username, row.subject)
            for row in session.scalars(select(UserIdentity).order_by(UserIdentity.id))
        ]
    return users, linked


def test_a_new_person_signs_in_and_comes_back_to_the_same_account(
    instance: StartInstance, browser: Browser, engine: Engine, database_url: str
) -> None:
    live = instance(self_signup="true")
    context, page = new_page(browser, live.url)
    page.goto("/signin")
    expect(page.get_by_role("link", name="Sign in with Lab login")).to_be_visible()
    shoot(page, "signin-providers", database_url)

    sign_in_with(page, "Lab", "grace")
    expect(page.get_by_role("status")).to_contain_text("Welcome! Your account is made")
    expect(page.get_by_role("link", name="grace")).to_be_visible()
    expect(page.locator("li", has_text="Lab login as grace@example.org")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    sign_in_with(page, "Lab", "grace")
    expect(page.get_by_role("link", name="grace")).to_be_visible()
    context.close()

    users, linked = users_and_identities(engine)
    assert users == ["grace"]
    assert linked == [("grace", "grace")]
    with db.make_sessionmaker(engine)() as session:
        grace = accounts.get_user(session, "grace")
        assert grace.email == "grace@example.org"
        assert grace.password_hash is None


def test_a_forged_state_a_replayed_answer_and_another_browser_sign_nobody_in(
    instance: StartInstance, browser: Browser, engine: Engine
) -> None:
    live = instance()
    context, page = new_page(browser, live.url)
    answer = held_callback(page, "Lab", "mallory")
    assert dict(parse_qsl(urlsplit(answer).query))["iss"] == live.issuer

    page.goto(with_param(answer, state="forged-by-someone"))
    expect(page.get_by_role("alert")).to_contain_text("matches no sign-in started here")
    assert users_and_identities(engine) == ([], [])

    # The answer itself, carried to another browser: it did not start this sign-in.
    other, other_page = new_page(browser, live.url)
    response = other_page.goto(answer)
    assert response is not None and response.status == 401
    expect(other_page.get_by_role("alert")).to_contain_text("started in another browser")
    other.close()

    response = page.goto(answer)  # the browser that started it
    assert response is not None and response.ok
    expect(page.get_by_role("link", name="mallory")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    response = page.goto(answer)  # the same answer again
    assert response is not None and response.status == 401
    expect(page.get_by_role("alert")).to_contain_text("it was used already")
    expect(page.get_by_role("link", name="mallory")).to_have_count(0)
    context.close()
    assert users_and_identities(engine)[0] == ["mallory"]


def test_a_code_replayed_into_another_sign_in_is_refused_by_the_provider(
    instance: StartInstance, browser: Browser, engine: Engine
) -> None:
    live = instance()
    victim, victim_page = new_page(browser, live.url)
    stolen = dict(parse_qsl(urlsplit(held_callback(victim_page, "Lab", "victim")).query))
    victim.close()

    attacker, attacker_page = new_page(browser, live.url)
    own = held_callback(attacker_page, "Lab", "attacker")
    attacker_page.goto(with_param(own, code=stolen["code"]))
    expect(attacker_page.get_by_role("alert")).to_contain_text("refused the sign-in: invalid_grant")
    expect(attacker_page.get_by_role("link", name="victim")).to_have_count(0)
    attacker.close()
    assert "victim" not in users_and_identities(engine)[0]


def test_an_id_token_issued_for_another_application_is_refused(
    instance: StartInstance, browser: Browser, engine: Engine
) -> None:
    live = instance()
    context, page = new_page(browser, live.url)
    sign_in_with(page, "Mixup", "eve")
    expect(page.get_by_role("alert")).to_contain_text("issued for another application")
    expect(page.get_by_role("link", name="eve")).to_have_count(0)
    context.close()
    assert users_and_identities(engine) == ([], [])


def test_an_existing_email_is_never_joined_until_its_owner_connects_the_sign_in(
    instance: StartInstance,
    browser: Browser,
    engine: Engine,
    make_user: MakeUser,
    database_url: str,
) -> None:
    make_user("ada", password=PASSWORD)  # ada@example.org, the address the provider gives
    live = instance()
    context, page = new_page(browser, live.url)
    sign_in_with(page, "Lab", "ada")
    expect(page.get_by_role("alert")).to_contain_text("accounts are never joined by email alone")
    expect(page.get_by_role("link", name="ada")).to_have_count(0)

    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.goto("/account")
    page.get_by_role("link", name="Connect Lab login").click()
    at_provider(page, "ada")
    expect(page.get_by_role("status")).to_contain_text("Lab login is connected to your account")
    expect(page.locator("li", has_text="Lab login as ada@example.org")).to_be_visible()
    shoot(page, "account-signins", database_url)

    page.get_by_role("button", name="Sign out").click()
    sign_in_with(page, "Lab", "ada")
    expect(page.get_by_role("link", name="ada")).to_be_visible()
    context.close()
    assert users_and_identities(engine) == (["ada"], [("ada", "ada")])


def test_without_self_signup_an_unknown_person_is_told_how_to_get_in(
    instance: StartInstance, browser: Browser, engine: Engine
) -> None:
    live = instance(self_signup="false")
    context, page = new_page(browser, live.url)
    sign_in_with(page, "Lab", "newcomer")
    expect(page.get_by_role("alert")).to_contain_text("ask one for an account")
    context.close()
    assert users_and_identities(engine) == ([], [])


def test_under_approval_a_new_account_waits_for_an_administrator(
    instance: StartInstance, browser: Browser, engine: Engine
) -> None:
    live = instance(self_signup="approval")
    context, page = new_page(browser, live.url)
    sign_in_with(page, "Lab", "pending")
    expect(page.get_by_role("heading", name="Waiting for approval")).to_be_visible()
    expect(page.get_by_role("link", name="pending")).to_have_count(0)

    sign_in_with(page, "Lab", "pending")  # not yet
    expect(page.get_by_role("heading", name="Waiting for approval")).to_be_visible()
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        accounts.approve_user(session, "pending")
    sign_in_with(page, "Lab", "pending")
    expect(page.get_by_role("link", name="pending")).to_be_visible()
    context.close()
