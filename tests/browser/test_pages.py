"""The login, consent, error, logout and connected-apps pages in a real browser (Chromium).

What a person does, end to end against ``ostiary serve``: sign in with the keyboard, approve or
deny, land on the client's redirect; wrong password; forged forms; framing; disconnecting an
app from the connected-apps page. The CSP stays enforced in these tests (only the
accessibility walk in ``test_accessibility.py`` bypasses it, to inject axe-core).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.conftest import PASSWORD, USERNAME, World, pkce_pair

FORM_EXPIRED = "invalid_request: The form expired or did not come from this site. Reload it."


def sign_in_with_keyboard(page: Page, username: str = USERNAME, password: str = PASSWORD) -> None:
    """Type into the form and submit with Enter, the way a keyboard user does."""
    page.locator("#username").focus()
    page.keyboard.press("Control+A")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(password)
    page.keyboard.press("Enter")


def open_consent(page: Page, world: World, challenge: str, **extra: str) -> None:
    page.goto(world.authorize_url(challenge, **extra))
    assert page.locator("h1").inner_text() == "Sign in"
    sign_in_with_keyboard(page)
    page.get_by_role("button", name="Approve").wait_for()


def callback_query(page: Page, world: World) -> dict[str, list[str]]:
    page.wait_for_url(f"{world.app.callback}?*")
    assert page.locator("h1").inner_text() == "Back at the app"
    return parse_qs(urlsplit(page.url).query)


def exchange(world: World, code: str, verifier: str) -> dict[str, Any]:
    response = httpx.post(
        f"{world.issuer}/token",
        auth=(world.client_id, world.client_secret),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": world.app.callback,
            "code_verifier": verifier,
            "resource": f"{world.issuer}/mcp",
        },
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def csp_errors(context: BrowserContext) -> list[str]:
    """Console messages about Content-Security-Policy violations, collected from now on."""
    seen: list[str] = []
    context.on(
        "console",
        lambda message: (
            seen.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return seen


def test_sign_in_consent_and_land_on_the_redirect_with_a_code(
    world: World, context: BrowserContext, page: Page
) -> None:
    violations = csp_errors(context)
    verifier, challenge = pkce_pair()
    page.goto(world.authorize_url(challenge))
    assert page.title() == "Sign in · Acme Cloud"
    assert page.locator(".lead").inner_text() == "to continue to Research Notebook"
    with page.expect_response(lambda r: r.url.endswith("/login")) as posted:
        sign_in_with_keyboard(page)
    assert posted.value.status == 303
    page.wait_for_selector("#page-title")
    assert (
        page.locator("#page-title").inner_text() == "Research Notebook wants access to your account"
    )
    assert page.locator(".client-head .muted").inner_text() == "notebook.example.com"
    assert page.locator(".client-logo img").get_attribute("src") == (
        "https://notebook.example.com/logo.png"
    )
    assert page.locator(".account-line strong").inner_text() == "Ada Lovelace"
    assert page.locator(".facts .redirect dd").inner_text() == "127.0.0.1 (this device)"
    assert page.locator(".scopes li").all_inner_texts() == [
        "Read your data through the MCP server's tools and resources.\nmcp:read",
        "Create and change data through the MCP server's tools.\nmcp:write",
    ]
    assert page.locator(".alert-warning").count() == 0
    page.get_by_role("button", name="Approve").click()
    query = callback_query(page, world)
    assert set(query) == {"code", "state", "iss"}
    assert query["state"] == ["xyz-state"]
    assert query["iss"] == [world.issuer]
    tokens = exchange(world, query["code"][0], verifier)
    assert tokens["scope"] == "mcp:read mcp:write"
    assert violations == []


def test_consent_response_headers_forbid_scripts_and_framing(world: World, page: Page) -> None:
    _verifier, challenge = pkce_pair()
    page.goto(world.authorize_url(challenge))
    sign_in_with_keyboard(page)
    page.get_by_role("button", name="Approve").wait_for()
    consent = page.request.get(page.url)
    assert consent.status == 200
    headers = consent.headers
    assert headers["content-security-policy"] == (
        "default-src 'none'; style-src 'self'; img-src 'self' https: data:; "
        f"form-action 'self' {world.app.origin}; frame-ancestors 'none'; base-uri 'none'"
    )
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert "<script" not in consent.text()
    assert " style=" not in consent.text()


def test_deny_returns_access_denied(world: World, page: Page) -> None:
    _verifier, challenge = pkce_pair()
    open_consent(page, world, challenge)
    page.get_by_role("button", name="Deny").click()
    query = callback_query(page, world)
    assert query == {
        "error": ["access_denied"],
        "error_description": ["The user denied the request."],
        "state": ["xyz-state"],
        "iss": [world.issuer],
    }


def test_wrong_password_shows_a_message_and_keeps_the_username(world: World, page: Page) -> None:
    _verifier, challenge = pkce_pair()
    page.goto(world.authorize_url(challenge))
    with page.expect_response(lambda r: r.url.endswith("/login")) as posted:
        sign_in_with_keyboard(page, password="not the password")
    assert posted.value.status == 401
    alert = page.get_by_role("alert")
    assert alert.inner_text() == "Wrong username or password."
    assert page.locator("#username").input_value() == USERNAME
    assert page.locator("#password").input_value() == ""
    assert page.locator("#password").get_attribute("aria-describedby") == "form-error"
    # An unknown user gets the very same message.
    with page.expect_response(lambda r: r.url.endswith("/login")) as unknown:
        sign_in_with_keyboard(page, username="nobody-here", password="not the password")
    assert unknown.value.status == 401
    assert page.get_by_role("alert").inner_text() == "Wrong username or password."


@pytest.mark.parametrize("form", ["login", "consent"])
@pytest.mark.parametrize("tamper", ["missing", "wrong"])
def test_forms_without_the_right_csrf_token_are_refused(
    world: World, page: Page, form: str, tamper: str
) -> None:
    _verifier, challenge = pkce_pair()
    if form == "login":
        page.goto(world.authorize_url(challenge))
    else:
        open_consent(page, world, challenge)
    script = {
        "missing": "document.querySelector('input[name=csrf_token]').remove()",
        "wrong": "document.querySelector('input[name=csrf_token]').value = '0'.repeat(64)",
    }[tamper]
    page.evaluate(script)
    with page.expect_response(lambda r: r.url.endswith(f"/{form}")) as posted:
        if form == "login":
            sign_in_with_keyboard(page)
        else:
            page.get_by_role("button", name="Approve").click()
    assert posted.value.status == 400
    assert page.locator("h1").inner_text() == "This request cannot continue"
    assert page.get_by_role("alert").inner_text() == FORM_EXPIRED
    assert not page.url.startswith(world.app.origin)


def test_consent_page_cannot_be_framed_by_another_origin(world: World, page: Page) -> None:
    _verifier, challenge = pkce_pair()
    open_consent(page, world, challenge)
    consent_url = page.url
    assert page.get_by_role("button", name="Approve").count() == 1
    refused = csp_errors(page.context)
    page.goto(f"{world.app.origin}/frame?src={quote(consent_url, safe='')}")
    page.wait_for_load_state("load")
    frames = [f for f in page.frames if f != page.main_frame]
    assert len(frames) == 1
    assert frames[0].locator("button").count() == 0
    assert refused == [
        f"Framing '{world.issuer}/' violates the following Content Security Policy directive: "
        "\"frame-ancestors 'none'\". The request has been blocked.\n"
    ]


def test_disconnecting_an_app_revokes_its_tokens_at_once(
    world: World, context: BrowserContext, page: Page
) -> None:
    verifier, challenge = pkce_pair()
    open_consent(page, world, challenge)
    page.get_by_role("button", name="Approve").click()
    tokens = exchange(world, callback_query(page, world)["code"][0], verifier)

    page.goto(f"{world.issuer}/account")
    assert page.title() == "Connected apps · Acme Cloud"
    card = page.locator("li.app", has=page.get_by_role("heading", name="Research Notebook"))
    assert card.count() == 1
    assert card.locator(".chips li").all_inner_texts() == ["mcp:read", "mcp:write"]
    assert card.locator("code").all_inner_texts() == [f"{world.issuer}/mcp"]
    card.get_by_role("button", name="Disconnect Research Notebook").click()
    page.wait_for_url(f"{world.issuer}/account?disconnected=*")
    assert page.get_by_role("status").inner_text() == (
        "Research Notebook was disconnected and its tokens were revoked."
    )
    assert page.locator("li.app", has_text="Research Notebook").count() == 0

    refreshed = httpx.post(
        f"{world.issuer}/token",
        auth=(world.client_id, world.client_secret),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    introspected = httpx.post(
        f"{world.issuer}/introspect",
        auth=(world.client_id, world.client_secret),
        data={"token": tokens["access_token"]},
    )
    assert introspected.status_code == 200
    assert introspected.json() == {"active": False}


def test_disconnect_needs_the_csrf_token(world: World, page: Page) -> None:
    verifier, challenge = pkce_pair()
    open_consent(page, world, challenge)
    page.get_by_role("button", name="Approve").click()
    exchange(world, callback_query(page, world)["code"][0], verifier)
    page.goto(f"{world.issuer}/account")
    page.evaluate("document.querySelector('.app input[name=csrf_token]').value = 'forged'")
    with page.expect_response(lambda r: r.url.endswith("/account/revoke")) as posted:
        page.get_by_role("button", name="Disconnect Research Notebook").first.click()
    assert posted.value.status == 400
    assert page.get_by_role("alert").inner_text() == FORM_EXPIRED
    page.goto(f"{world.issuer}/account")
    assert page.locator("li.app", has_text="Research Notebook").count() == 1


def test_native_app_with_a_remote_redirect_shows_a_warning(world: World, page: Page) -> None:
    _verifier, challenge = pkce_pair()
    open_consent(
        page,
        world,
        challenge,
        client_id=world.remote_client_id,
        redirect_uri="https://helper.example.net/oauth/callback",
    )
    assert page.locator(".facts .host").inner_text() == "helper.example.net"
    assert page.get_by_role("alert").inner_text() == (
        "Check the address. This app says it runs on your device, but it will send your "
        "authorization to helper.example.net, a remote server. Approve only if you expected that."
    )


def test_sign_out_asks_first_then_ends_the_session(world: World, page: Page) -> None:
    _verifier, challenge = pkce_pair()
    open_consent(page, world, challenge)
    page.goto(f"{world.issuer}/logout")
    assert page.locator("h1").inner_text() == "Sign out?"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_selector("text=Signed out")
    assert page.locator("h1").inner_text() == "Signed out"
    page.goto(f"{world.issuer}/account")
    assert page.locator("h1").inner_text() == "Sign in"
    assert page.locator(".lead").inner_text() == "to manage the apps connected to your account"


def _mcp_initialize(world: World, access_token: str) -> httpx.Response:
    return httpx.post(
        f"{world.issuer}/mcp",
        headers={
            "Authorization": f"Bearer {access_token}",
            "Accept": "application/json, text/event-stream",
        },
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "browser-test", "version": "1"},
            },
        },
    )


def test_disconnecting_an_app_makes_its_next_mcp_call_fail(world: World, page: Page) -> None:
    verifier, challenge = pkce_pair()
    open_consent(page, world, challenge)
    page.get_by_role("button", name="Approve").click()
    tokens = exchange(world, callback_query(page, world)["code"][0], verifier)
    before = _mcp_initialize(world, tokens["access_token"])
    assert before.status_code == 200, before.text
    page.goto(f"{world.issuer}/account")
    page.get_by_role("button", name="Disconnect Research Notebook").first.click()
    page.get_by_role("status").wait_for()
    after = _mcp_initialize(world, tokens["access_token"])
    assert after.status_code == 401
