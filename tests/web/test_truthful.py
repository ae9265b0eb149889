"""Screens that say what happened: a failed refresh is an error, kept on the tool until a
refresh succeeds; after a grant the requester's tool page has the login and pull commands; a
version with descriptors shows how to run it from dockyard's TRS. Each of these tests failed
on the screens as they were before (see the CHANGELOG)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

import httpx
from playwright.sync_api import Browser, expect

from tests.support.app import MakeUser, bearer
from tests.support.browser import CHROMIUM_MISSING, PASSWORD, sign_in
from tests.support.network import free_port
from tests.support.processes import clean_environment, run, serving

pytestmark = CHROMIUM_MISSING

CWL = "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: echo\ninputs: []\noutputs: []\n"
WDL = "version 1.0\ntask hello {\n  command <<< echo hi >>>\n}\n"


def _tool(api: httpx.Client, image: str, **extra: object) -> int:
    made = api.post("/api/tools", json={"image": image, **extra})
    assert made.status_code == 201, made.text
    tool = int(made.json()["id"])
    assert api.post(f"/api/tools/{tool}/versions", json={"name": "1.0"}).status_code == 201
    assert api.post(f"/api/tools/{tool}/publish").status_code == 200
    return tool


def test_a_failed_refresh_is_an_error_and_stays_on_the_tool(
    browser: Browser, server: str, make_user: MakeUser
) -> None:
    _, maria = make_user("maria", password=PASSWORD)
    image = f"127.0.0.1:{free_port()}/lab/unreachable"  # nothing listens there
    with httpx.Client(base_url=server, headers=bearer(maria)) as api:
        tool = _tool(api, image)

    context, page = sign_in(browser, server, "maria")
    page.goto(f"/my/tools/{tool}")
    page.get_by_role("button", name="Refresh now").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Refresh failed")
    expect(page.locator(".notice")).to_have_count(0)  # not the green banner of a success

    page.goto(f"/tools/{image}")
    expect(page.get_by_role("alert")).to_contain_text("The last refresh from")
    expect(page.get_by_role("alert")).to_contain_text("failed")
    page.goto(f"/my/tools/{tool}")  # later, without the redirect's message
    expect(page.get_by_role("alert")).to_contain_text("The last refresh failed")
    context.close()

    anonymous = browser.new_page(base_url=server)
    anonymous.goto(f"/tools/{image}")
    expect(anonymous.get_by_text("the last check failed")).to_be_visible()
    expect(anonymous.get_by_role("alert")).to_have_count(0)  # the reason is the maintainers'
    anonymous.close()


def test_after_a_grant_the_requesters_tool_page_has_the_login_and_pull_commands(
    browser: Browser, server: str, make_user: MakeUser
) -> None:
    _, maria = make_user("maria", password=PASSWORD)
    _, bob = make_user("bob", password=PASSWORD)
    with httpx.Client(base_url=server) as api:
        with httpx.Client(base_url=server, headers=bearer(maria)) as as_maria:
            tool = _tool(
                as_maria,
                "ghcr.io/lab/secret-tool",
                private=True,
                maintainer_email="maria@example.org",
            )
        asked = api.post(
            f"/api/tools/{tool}/access-requests",
            json={"registry_username": "bob-gh", "message": "For the paper."},
            headers=bearer(bob),
        )
        assert asked.status_code == 201, asked.text
        granted = api.post(
            f"/api/access-requests/{asked.json()['id']}/grant",
            json={"apply": False, "reason": "Welcome."},
            headers=bearer(maria),
        )
        assert granted.status_code == 200, granted.text

    context, page = sign_in(browser, server, "bob")
    page.goto("/tools/ghcr.io/lab/secret-tool")
    pull = page.get_by_role("region", name="Pull version 1.0")
    expect(pull).to_contain_text("Your access is granted (as bob-gh)")
    expect(pull.get_by_role("heading", name="Sign in to the registry")).to_be_visible()
    expect(pull.locator("#login-1")).to_have_text("docker login --username bob-gh ghcr.io")
    expect(pull).to_contain_text("pull ghcr.io/lab/secret-tool:1.0")
    expect(page.get_by_text("Works once the maintainers granted you access")).to_have_count(0)
    context.close()


def test_a_version_with_descriptors_shows_how_to_run_it_from_the_trs(
    browser: Browser, server: str, make_user: MakeUser
) -> None:
    _, maria = make_user("maria", password=PASSWORD)
    with httpx.Client(base_url=server, headers=bearer(maria)) as api:
        tool = _tool(api, "quay.io/lab/hello")
        files = [
            {
                "path": "hello.cwl",
                "file_type": "PRIMARY_DESCRIPTOR",
                "descriptor_type": "CWL",
                "content": CWL,
            },
            {
                "path": "hello.wdl",
                "file_type": "PRIMARY_DESCRIPTOR",
                "descriptor_type": "WDL",
                "content": WDL,
            },
        ]
        assert api.put(f"/api/tools/{tool}/versions/1.0/files", json={"files": files}).is_success

    page = browser.new_page(base_url=server)
    page.goto("/tools/quay.io/lab/hello")
    run = page.get_by_role("region", name="Run version 1.0")
    expect(run.locator("#run-cwltool")).to_have_text(
        f"cwltool --add-ga4gh-tool-registry {server} quay.io/lab/hello:1.0 job.yml"
    )
    links = run.get_by_role("link")
    expect(links).to_have_text(["DNAnexus", "CGC (Seven Bridges)"])
    expect(run.get_by_role("link", name="DNAnexus")).to_have_attribute(
        "href",
        "https://platform.dnanexus.com/panx/tools/import-workflow?source="
        + quote(f"{server}/ga4gh/trs/v2/tools/quay.io%2Flab%2Fhello/versions/1.0", safe=""),
    )
    expect(run.locator("#run-miniwdl")).to_have_text(
        f"miniwdl run {server}/ga4gh/trs/v2/tools/quay.io%2Flab%2Fhello/versions/1.0/PLAIN_WDL/descriptor -i inputs.json"
    )
    page.close()


def test_without_smtp_the_console_and_the_access_pages_say_nobody_was_emailed(
    browser: Browser, server: str, make_user: MakeUser, tmp_path: Path
) -> None:
    # The pages (a live server without DOCKYARD_SMTP_URL).
    _, maria = make_user("maria", password=PASSWORD)
    _, bob = make_user("bob", password=PASSWORD)
    with httpx.Client(base_url=server, headers=bearer(maria)) as as_maria:
        tool = _tool(as_maria, "ghcr.io/lab/quiet", private=True, maintainer_email="m@example.org")
    asked = httpx.post(
        f"{server}/api/tools/{tool}/access-requests",
        json={"registry_username": "bob-gh"},
        headers=bearer(bob),
    ).json()
    context, page = sign_in(browser, server, "bob")
    page.goto(f"/access/requests/{asked['id']}")
    expect(page.get_by_text("this dockyard sends no email")).to_be_visible()
    expect(page.get_by_text("you will get an email")).to_have_count(0)
    context.close()
    context, page = sign_in(browser, server, "maria")
    page.goto("/access")
    expect(page.get_by_role("note")).to_contain_text("This dockyard sends no email")
    context.close()

    # The console of `dockyard serve`, as an operator runs it.
    env = clean_environment(DOCKYARD_DATA_DIR=str(tmp_path / "data"))
    run(
        ["users", "create", "maria", "--email", "maria@example.org", "--password-stdin"],
        env,
        stdin=PASSWORD,
    )
    run(
        ["users", "create", "bob", "--email", "bob@example.org", "--password-stdin"],
        env,
        stdin=PASSWORD,
    )
    tokens = {
        name: run(["tokens", "create", name, "--name", "t"], env).strip().splitlines()[-1]
        for name in ("maria", "bob")
    }
    with serving(env, tmp_path / "serve.log") as running:
        assert running.url is not None
        with httpx.Client(base_url=running.url, headers=bearer(tokens["maria"])) as as_maria:
            quiet = _tool(
                as_maria, "ghcr.io/lab/quiet", private=True, maintainer_email="m@example.org"
            )
        sent = httpx.post(
            f"{running.url}/api/tools/{quiet}/access-requests",
            json={"registry_username": "bob-gh"},
            headers=bearer(tokens["bob"]),
        )
        assert sent.status_code == 201
        for _ in range(100):  # the mail loop hands the queued email on within a second or two
            if "not sent" in running.output():
                break
            time.sleep(0.1)
        console = running.output()
    [line] = [line for line in console.splitlines() if "not sent" in line]
    assert " WARNING dockyard.mail" in line
    assert line.endswith(
        "email to m@example.org not sent (DOCKYARD_SMTP_URL is not set): "
        "[dockyard] bob requests access to ghcr.io/lab/quiet"
    )


def test_a_private_only_registry_is_recognised_from_the_image_before_submit(
    browser: Browser, server: str, make_user: MakeUser
) -> None:
    make_user("maria", password=PASSWORD)
    context, page = sign_in(browser, server, "maria")
    page.goto("/my/tools")
    expect(page.get_by_label("Registry")).to_have_value("")  # "Find it from the image"
    private = page.get_by_role("checkbox", name="Private image")
    expect(private).not_to_be_checked()
    page.get_by_label("Image", exact=True).fill(
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/lab/aligner"
    )
    notes = page.locator("#image-notes")
    expect(notes).to_contain_text("Amazon ECR")
    expect(notes).to_contain_text("Private is ticked")
    expect(private).to_be_checked()
    page.get_by_label("Maintainer email").fill("maria@example.org")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(
        page.get_by_role(
            "heading", name="Manage 123456789012.dkr.ecr.eu-west-1.amazonaws.com/lab/aligner"
        )
    ).to_be_visible()

    page.goto("/my/tools")
    page.get_by_label("Image", exact=True).fill("quay.io/lab/public")
    expect(page.locator("#image-notes")).to_contain_text("Quay.io")
    expect(page.get_by_role("checkbox", name="Private image")).not_to_be_checked()
    context.close()


def test_a_grant_says_what_was_done_in_the_registry_and_manual_is_explicit(
    browser: Browser, server: str, make_user: MakeUser
) -> None:
    _, maria = make_user("maria", password=PASSWORD)
    _, bob = make_user("bob", password=PASSWORD)
    ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/lab/secret"
    with httpx.Client(base_url=server, headers=bearer(maria)) as as_maria:
        tool = _tool(as_maria, ecr, private=True, maintainer_email="maria@example.org")
    asked = httpx.post(
        f"{server}/api/tools/{tool}/access-requests",
        json={"registry_username": "210987654321"},
        headers=bearer(bob),
    ).json()

    context, page = sign_in(browser, server, "maria")
    page.goto(f"/access/requests/{asked['id']}")
    note = page.locator("#manual-only")
    expect(note).to_contain_text("dockyard cannot give the permission")
    expect(note).to_contain_text("no AWS credentials are saved on it")
    # Sent without saying the permission was given (the browser would ask first): refused.
    page.locator("#manual").evaluate("box => box.removeAttribute('required')")
    page.get_by_role("button", name="Record the grant").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was recorded")
    expect(page.locator(".status")).to_have_text("pending")

    page.get_by_label("I gave the permission myself").check()
    page.get_by_role("button", name="Record the grant").click()
    status = page.get_by_role("status")
    expect(status).to_contain_text("is granted")
    expect(status).to_contain_text(
        "dockyard did not change 123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    )
    context.close()
