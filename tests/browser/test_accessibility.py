"""Every page passes axe-core with no serious or critical violation; screenshots for review.

axe-core (npm, ``.tools``) is injected into each page, which needs script execution: this walk
alone runs in a context with ``bypass_csp=True``. Screenshots land in
``artifacts/screenshots/`` (gitignored), at desktop and phone widths.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

from tests.browser.conftest import SCREENSHOTS, World, axe_path, pkce_pair
from tests.browser.test_pages import sign_in_with_keyboard

VIEWPORTS: dict[str, ViewportSize] = {
    "desktop": {"width": 1100, "height": 900},
    "phone": {"width": 390, "height": 844},
}


@pytest.fixture
def axe_context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(bypass_csp=True, viewport=VIEWPORTS["desktop"])
    try:
        yield ctx
    finally:
        ctx.close()


def serious_violations(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(axe_path()))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]],
        }
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def check(page: Page, name: str) -> None:
    """axe on the page as it is, then a screenshot at each width."""
    assert serious_violations(page) == [], name
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in VIEWPORTS.items():
        page.set_viewport_size(size)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(VIEWPORTS["desktop"])


def test_every_page_is_accessible(world: World, axe_context: BrowserContext) -> None:
    page = axe_context.new_page()
    _verifier, challenge = pkce_pair()

    page.goto(world.authorize_url(challenge))
    check(page, "login")

    sign_in_with_keyboard(page, password="wrong password!")
    page.get_by_role("alert").wait_for()
    check(page, "login-error")

    sign_in_with_keyboard(page)
    page.get_by_role("button", name="Approve").wait_for()
    check(page, "consent")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(f"{world.app.callback}?*")

    page.goto(
        world.authorize_url(
            challenge,
            client_id=world.remote_client_id,
            redirect_uri="https://helper.example.net/oauth/callback",
        )
    )
    page.get_by_role("button", name="Approve").wait_for()
    check(page, "consent-warning")

    page.goto(f"{world.issuer}/account")
    page.locator("li.app").first.wait_for()
    check(page, "account")

    page.get_by_role("button", name="Disconnect Research Notebook").click()
    page.get_by_role("status").wait_for()
    check(page, "account-disconnected")

    page.goto(f"{world.issuer}/logout")
    check(page, "logout")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_selector("text=Signed out")
    check(page, "signed-out")

    page.goto(f"{world.issuer}/account")
    page.locator("#username").wait_for()
    check(page, "account-sign-in")

    page.goto(f"{world.issuer}/authorize?client_id=unknown-client&response_type=code")
    check(page, "error")
