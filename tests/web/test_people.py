"""People and discovery end to end in Chromium: a new person signs in through a real OpenID
provider, makes an organization, adds a colleague as maintainer, labels a tool and moves it
in, builds a collection, stars the tool, and finds it by facet."""

from __future__ import annotations

from playwright.sync_api import Browser, expect
from sqlalchemy import Engine

from dockyard import db
from dockyard.accounts import services as accounts
from tests.support.app import MakeUser
from tests.support.browser import PASSWORD, shoot, sign_in
from tests.support.catalog import published
from tests.support.oidc import StartInstance, new_page, sign_in_with


def test_sign_in_organize_curate_star_and_find_by_facet(
    instance: StartInstance,
    browser: Browser,
    engine: Engine,
    make_user: MakeUser,
    database_url: str,
) -> None:
    make_user("bob", password=PASSWORD)
    live = instance(self_signup="true")
    context, page = new_page(browser, live.url)
    sign_in_with(page, "Lab", "grace")
    expect(page.get_by_role("link", name="grace")).to_be_visible()

    # grace's tools (registered for her; the registry side is tested elsewhere).
    with db.unit_of_work(db.make_sessionmaker(engine)) as session:
        grace = accounts.get_user(session, "grace")
        aligner = published(session, grace, "quay.io/smith/aligner").id
        published(session, grace, "quay.io/smith/caller")

    page.get_by_role("link", name="Organizations").click()
    page.get_by_role("textbox", name="Name (in its address").fill("smith-lab")
    page.get_by_label("Display name").fill("Smith Lab")
    page.get_by_label("Description").fill("Long-read genomics.")
    page.get_by_role("button", name="Make organization").click()
    expect(page.get_by_role("status")).to_contain_text("Organization made; you are its admin")
    expect(page.get_by_role("heading", name="Smith Lab", level=1)).to_be_visible()

    page.get_by_label("Username").fill("bob")
    page.get_by_label("Role").select_option("maintainer")
    page.get_by_role("button", name="Add or change member").click()
    expect(page.get_by_role("status")).to_contain_text("bob is a maintainer of smith-lab")
    members = page.get_by_role("region", name="Members")
    expect(members.get_by_role("row", name="bob maintainer")).to_be_visible()

    page.goto(f"/my/tools/{aligner}")
    page.get_by_label("Labels").fill("alignment long-reads")
    page.get_by_label("Organization").select_option("smith-lab")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("It belongs to Smith Lab")

    page.goto("/tools/quay.io/smith/aligner")
    page.get_by_role("button", name="Star", exact=True).click()
    expect(page.get_by_label("1 star", exact=True)).to_be_visible()

    page.goto("/organizations/smith-lab")
    page.get_by_role("textbox", name="Name (letters").fill("aligners")
    page.get_by_label("Description", exact=True).fill("What we align long reads with.")
    page.get_by_role("checkbox", name="quay.io/smith/aligner").check()
    page.get_by_role("button", name="Make collection").click()
    expect(page.get_by_role("status")).to_contain_text("Collection aligners made with 1 entry")
    shoot(page, "organization", database_url)
    page.get_by_role("link", name="aligners").click()
    expect(page.get_by_role("heading", name="aligners")).to_be_visible()
    expect(page.get_by_role("listitem").filter(has_text="quay.io/smith/aligner")).to_be_visible()
    expect(page.get_by_text("collection:smith-lab/aligners")).to_be_visible()
    shoot(page, "collection", database_url)

    # The finder: facets with counts, each a link that narrows the results.
    page.goto("/search")
    facets = page.get_by_role("complementary", name="Refine the results")
    organization = facets.get_by_role("region", name="Organization")
    expect(organization.get_by_role("link", name="Smith Lab 1")).to_be_visible()
    organization.get_by_role("link", name="Smith Lab 1").click()
    results = page.locator(".results ul.tools > li")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("quay.io/smith/aligner")
    expect(results.first).to_contain_text("★ 1")
    expect(results.first.get_by_role("link", name="long-reads")).to_be_visible()
    expect(organization.get_by_role("link", name="Smith Lab 1")).to_have_attribute(
        "aria-current", "true"
    )
    facets.get_by_role("region", name="Label").get_by_role("link", name="alignment 1").click()
    expect(results).to_have_count(1)
    shoot(page, "search-facets", database_url)
    # The same finder without JavaScript: plain links and a form.
    assert "organization=smith-lab" in page.url and "label=alignment" in page.url
    context.close()

    # bob maintains the tool through the organization.
    bob_context, bob = sign_in(browser, live.url, "bob")
    bob.goto(f"/my/tools/{aligner}")
    expect(bob.get_by_role("heading", name="Manage quay.io/smith/aligner")).to_be_visible()
    bob_context.close()
