"""Starring in the browser: the tool page's button and count, the Starred list on My tools,
and the search sorted by stars."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, expect

from tests.support.app import MakeUser, bearer
from tests.support.browser import PASSWORD, shoot, sign_in


def test_a_signed_in_person_stars_a_tool_finds_it_again_and_takes_the_star_off(
    browser: Browser, server: str, make_user: MakeUser, database_url: str
) -> None:
    _, maria = make_user("maria", password=PASSWORD)
    make_user("bob", password=PASSWORD)
    with httpx.Client(base_url=server, headers=bearer(maria)) as api:
        for name in ("aligner", "caller"):
            tool = api.post("/api/tools", json={"image": f"quay.io/lab/{name}"}).json()["id"]
            api.post(f"/api/tools/{tool}/versions", json={"name": "1.0", "images": []})
            assert api.post(f"/api/tools/{tool}/publish").status_code == 200

    anonymous = browser.new_page(base_url=server)
    anonymous.goto("/tools/quay.io/lab/caller")
    expect(anonymous.get_by_role("link", name="Sign in to star it")).to_be_visible()
    anonymous.close()

    context, bob = sign_in(browser, server, "bob")
    bob.goto("/tools/quay.io/lab/caller")
    expect(bob.get_by_label("0 stars")).to_be_visible()
    bob.get_by_role("button", name="Star", exact=True).click()
    expect(bob.get_by_role("status")).to_contain_text("Starred quay.io/lab/caller")
    expect(bob.get_by_label("1 star", exact=True)).to_be_visible()
    unstar = bob.get_by_role("button", name="Unstar")
    expect(unstar).to_have_attribute("aria-pressed", "true")
    shoot(bob, "stars", database_url)

    bob.goto("/my/tools")
    starred = bob.get_by_role("region", name="Starred")
    expect(starred.get_by_role("link", name="quay.io/lab/caller")).to_be_visible()

    bob.goto("/search?sort=-stars")
    results = bob.locator("ul.tools > li")
    expect(results.first).to_contain_text("quay.io/lab/caller")
    expect(results.first).to_contain_text("★ 1")

    bob.goto("/tools/quay.io/lab/caller")
    bob.get_by_role("button", name="Unstar").click()
    expect(bob.get_by_role("status")).to_contain_text("Took the star off")
    expect(bob.get_by_label("0 stars")).to_be_visible()
    bob.goto("/my/tools")
    expect(bob.get_by_role("region", name="Starred")).to_contain_text("No stars yet")
    context.close()
