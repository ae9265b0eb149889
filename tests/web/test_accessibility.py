"""Every page, as each kind of visitor sees it, checked by axe-core in Chromium: no serious
or critical violation (WCAG 2 A and AA rules, and axe's best practices)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, BrowserContext
from sqlalchemy import Engine

from dockyard import db
from dockyard.access import services as access
from dockyard.accounts import organizations as orgs
from dockyard.accounts import services as accounts
from dockyard.catalog import services as catalog
from dockyard.collections import services as collections
from tests.support.axe import serious_violations
from tests.support.browser import CHROMIUM_MISSING, PASSWORD
from tests.support.catalog import CATALOG
from tests.support.seeded import seed

pytestmark = CHROMIUM_MISSING

ANONYMOUS_PAGES = [
    "/",
    "/search",
    "/search?q=samtools&registry=quay",
    "/search?kind=workflow",
    "/tools/quay.io/biocontainers/samtools",
    "/tools/ghcr.io/lab/private-tool",
    "/registries",
    "/signin",
    "/organizations",
    "/organizations/lab",
    "/organizations/lab/collections/favourites",
    "/tools/quay.io/no/such-tool",  # the error page
]
MAINTAINER_PAGES = [
    "/my/tools",
    "/my/tools/1",
    "/my/tools/5",
    "/account",
    "/access",
    "/access/requests/{request}",
    "/organizations",
    "/organizations/lab",
    "/search?organization=lab",
    "/tools/quay.io/biocontainers/samtools",
]
REQUESTER_PAGES = ["/tools/ghcr.io/lab/private-tool", "/access", "/access/requests/{request}"]


def _prepared(engine: Engine) -> int:
    """The seeded catalogue with passwords, an organization with a collection, labels, and
    an access request of bob's for the private tool; the request's id."""
    seed(engine)
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        maria = accounts.get_user(session, "maria")
        bob = accounts.get_user(session, "bob")
        accounts.set_password(maria, PASSWORD)
        accounts.set_password(bob, PASSWORD)
        orgs.create_organization(session, maria, name="lab", display_name="The Lab")
        catalog.update_tool(
            session, CATALOG, maria, 1, labels=["alignment", "sam"], organization="lab"
        )
        catalog.star(session, bob, 1)
        collections.create_collection(
            session, maria, "lab", name="favourites", entries=[1, "docker.io/lab/aligner"]
        )
        catalog.update_tool(session, CATALOG, maria, 5, maintainer_email="maria@example.org")
        request = access.request_access(
            session,
            CATALOG,
            bob,
            5,
            registry_identity="bob-gh",
            message="For the benchmark paper.",
            base_url="",
        )
        return request.id


def _signed_in(browser: Browser, server: str, username: str) -> BrowserContext:
    context = browser.new_context(base_url=server, bypass_csp=True)
    page = context.new_page()
    page.goto("/signin")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/signin" not in url)
    page.close()
    return context


@pytest.mark.usefixtures("engine")
def test_no_page_has_a_serious_or_critical_accessibility_violation(
    browser: Browser, server: str, engine: Engine
) -> None:
    request = _prepared(engine)
    visitors = {
        "anonymous": (browser.new_context(base_url=server, bypass_csp=True), ANONYMOUS_PAGES),
        "maintainer": (_signed_in(browser, server, "maria"), MAINTAINER_PAGES),
        "requester": (_signed_in(browser, server, "bob"), REQUESTER_PAGES),
    }
    found: dict[str, list[str]] = {}
    checked = 0
    for who, (context, pages) in visitors.items():
        page = context.new_page()
        for path in pages:
            address = path.format(request=request)
            answer = page.goto(address)
            assert answer is not None
            assert answer.status < 500, f"{who} {address}: {answer.status}"
            problems = serious_violations(page)
            checked += 1
            if problems:
                found[f"{who} {address}"] = problems
        context.close()
    assert checked == len(ANONYMOUS_PAGES) + len(MAINTAINER_PAGES) + len(REQUESTER_PAGES)
    assert found == {}, "\n".join(f"{where}: {p}" for where, ps in found.items() for p in ps)


def test_the_check_finds_what_axe_calls_serious(browser: Browser) -> None:
    """The check above can fail: a page with an unnamed button and an image without a text
    alternative has two critical violations."""
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.set_content(
        '<!doctype html><html lang="en"><head><title>t</title></head><body><main>'
        '<button></button><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="></main></body></html>'
    )
    found = serious_violations(page)
    context.close()
    assert [problem.split(" ", 1)[0] for problem in found] == ["button-name", "image-alt"]
