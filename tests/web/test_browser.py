"""The web UI in a real browser: Debian's Chromium driven by Playwright against a live server.

The run also takes the screenshots of the main pages in docs/screenshots/ (shown in the
README), so they always show the UI as it is.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from playwright.sync_api import Browser, FilePayload, expect

from tests.support.browser import CHROMIUM_MISSING, shoot, sign_in

CWL = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: [samtools, view]
inputs:
  bam: {type: File, inputBinding: {position: 1}}
outputs: []
"""

pytestmark = CHROMIUM_MISSING


def test_register_publish_find_request_grant_and_pull(
    browser: Browser, server: str, people: None, database_url: str
) -> None:
    maria_context, maria = sign_in(browser, server, "maria")

    # Registration: the form explains a private-only registry before anything is sent.
    maria.goto("/my/tools")
    maria.get_by_label("Registry", exact=True).select_option("ecr")
    expect(maria.get_by_role("note").first).to_contain_text("must be registered as private")
    expect(maria.get_by_label("Registry path")).to_be_visible()
    shoot(maria, "register", database_url)
    maria.get_by_label("Registry", exact=True).select_option("quay")
    expect(maria.get_by_label("Registry path")).to_have_count(0)
    maria.get_by_label("Image", exact=True).fill("quay.io/lab/private-samtools")
    maria.get_by_label("Private image").check()
    maria.get_by_label("Maintainer email").fill("lab@example.org")
    maria.get_by_label("Description").fill("samtools view, packaged by the lab")
    maria.get_by_role("button", name="Register").click()
    expect(maria.get_by_role("status")).to_contain_text("Registered quay.io/lab/private-samtools")

    # A version with a CWL descriptor, then publish.
    maria.get_by_label("New version").fill("1.17")
    maria.get_by_role("button", name="Add version").click()
    expect(maria.get_by_role("status")).to_contain_text("Version 1.17 added")
    maria.get_by_label("File", exact=True).set_input_files(
        files=[FilePayload(name="samtools.cwl", mimeType="text/plain", buffer=CWL.encode())]
    )
    maria.get_by_label("Kind").select_option("PRIMARY_DESCRIPTOR")
    maria.get_by_label("Language").select_option("CWL")
    maria.get_by_role("button", name="Upload").click()
    expect(maria.get_by_role("status")).to_contain_text("samtools.cwl saved in version 1.17")
    maria.get_by_role("button", name="Publish").click()
    expect(maria.get_by_role("status")).to_contain_text("Published")
    shoot(maria, "manage", database_url)

    # A second user finds it by search and asks for access.
    bob_context, bob = sign_in(browser, server, "bob")
    bob.goto("/")
    shoot(bob, "home", database_url)
    bob.get_by_label("Search tools").first.fill("samtools")
    bob.keyboard.press("Enter")
    expect(bob.get_by_role("link", name="quay.io/lab/private-samtools")).to_be_visible()
    shoot(bob, "search", database_url)
    bob.get_by_role("link", name="quay.io/lab/private-samtools").click()
    expect(bob.locator(".highlight")).to_contain_text("baseCommand")
    shoot(bob, "tool", database_url)
    bob.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing wider than it
    assert bob.evaluate("document.scrollingElement.scrollWidth") <= 390
    shoot(bob, "tool-phone", database_url)
    bob.set_viewport_size({"width": 1200, "height": 900})
    bob.get_by_label("Your Quay.io username or robot account").fill("bobby")
    bob.get_by_label("Message to the maintainers").fill("For the variant paper")
    bob.get_by_role("button", name="Request access").click()
    expect(bob.get_by_role("status")).to_contain_text("sent to the maintainers")
    request_url = bob.url.split("?")[0]

    # The maintainer grants it from the inbox.
    maria.goto("/access")
    expect(maria.get_by_role("cell", name="bobby")).to_be_visible()
    shoot(maria, "inbox", database_url)
    maria.get_by_role("link", name=re.compile(r"^#\d+$")).first.click()
    expect(maria.get_by_text("User and Robot Permissions")).to_be_visible()
    maria.get_by_label("I gave the permission myself").check()
    maria.get_by_role("button", name="Grant").click()
    expect(maria.get_by_role("status")).to_contain_text("is granted")

    # The requester sees the pull instructions.
    bob.goto(request_url)
    instructions = bob.locator("#pull-instructions")
    expect(instructions).to_contain_text("docker login --username bobby quay.io")
    expect(instructions).to_contain_text("docker pull quay.io/lab/private-samtools:1.17")
    expect(instructions).to_contain_text(
        "apptainer pull docker://quay.io/lab/private-samtools:1.17"
    )
    shoot(bob, "pull-instructions", database_url)
    maria_context.close()
    bob_context.close()


def test_an_unpublished_tool_is_not_found_for_others_and_forms_need_csrf(
    browser: Browser, server: str, people: None
) -> None:
    maria_context, maria = sign_in(browser, server, "maria")
    maria.goto("/my/tools")
    maria.get_by_label("Image", exact=True).fill("quay.io/lab/draft-tool")
    maria.get_by_role("button", name="Register").click()
    expect(maria.get_by_role("status")).to_contain_text("Registered")
    page = maria.goto("/tools/quay.io/lab/draft-tool")
    assert page is not None and page.status == 200

    bob_context, bob = sign_in(browser, server, "bob")
    answer = bob.goto("/tools/quay.io/lab/draft-tool")
    assert answer is not None and answer.status == 404
    expect(bob.get_by_role("heading", name="Not found")).to_be_visible()
    assert "draft-tool" not in bob.locator("body").inner_text().split("Not found")[0]

    # The same form without its CSRF token, from the signed-in browser: refused.
    forged = bob_context.request.post(
        f"{server}/my/tools", form={"image": "quay.io/lab/forged"}, max_redirects=0
    )
    assert forged.status == 403
    assert "did not come from this site" in forged.text()
    mine = bob_context.request.get(f"{server}/my/tools")
    assert "forged" not in mine.text()
    maria_context.close()
    bob_context.close()


def test_another_site_cannot_frame_dockyards_pages_and_pages_break_no_policy(
    browser: Browser, server: str, people: None
) -> None:
    """A page on another origin frames the sign-in page: Chromium refuses to show it. On
    dockyard's own pages (scripts, htmx) the Content-Security-Policy is never violated."""
    attacker = HTTPServer(("127.0.0.1", 0), _FramingPage)
    attacker.target = f"{server}/signin"  # type: ignore[attr-defined]
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"http://127.0.0.1:{attacker.server_address[1]}/")
        page.wait_for_timeout(500)
        framed = page.frames[1] if len(page.frames) > 1 else None
        shown = framed.evaluate("document.body ? document.body.innerText : ''") if framed else ""
        assert "Password" not in shown, "the sign-in form was shown inside another site"
        own, violations = context.new_page(), []
        own.on(
            "console",
            lambda message: (
                violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        own.goto(f"{server}/signin")
        own.goto(f"{server}/")
        own.goto(f"{server}/search?q=tool")
        assert violations == []
    finally:
        context.close()
        attacker.shutdown()
        attacker.server_close()


class _FramingPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f'<!doctype html><iframe src="{self.server.target}"></iframe>'.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass
