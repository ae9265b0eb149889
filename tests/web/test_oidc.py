"""Signing in through a real OpenID provider (node-oidc-provider on loopback) in Chromium: a new
person gets an account, a known one their own, and a forged state, a replayed answer, a
replayed code and an ID token for another application sign nobody in."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect
from sqlalchemy import Engine, select

from dockyard import db
from dockyard.accounts import services as accounts
from dockyard.accounts.models import User, UserIdentity
from tests.support.app import MakeUser
from tests.support.browser import PASSWORD, shoot
from tests.support.oidc import (
    StartInstance,
    at_provider,
    log_in_at_provider,
    new_page,
    sign_in_with,
)

pytestmark = pytest.mark.usefixtures("engine")


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
