"""axe-core (from npm, in tests/support/node) run in Chromium on a page: its serious and
critical violations, each with the elements it found them on."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from tests.support.oidc import NODE_TOOLS

AXE = NODE_TOOLS / "node_modules" / "axe-core" / "axe.min.js"
#: The impacts a page may not have.
BLOCKING = ("serious", "critical")


def serious_violations(page: Page) -> list[str]:
    """What axe-core finds serious or critical on the page as it is now. The page's
    context must bypass the Content-Security-Policy (`bypass_csp=True`): axe is injected."""
    if not AXE.exists():
        pytest.fail("axe-core is missing from tests/support/node: run scripts/install")
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    found = []
    for violation in result["violations"]:
        if violation["impact"] in BLOCKING:
            targets = [" ".join(node["target"]) for node in violation["nodes"][:5]]
            found.append(
                f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}"
            )
    return found
