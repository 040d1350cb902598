"""TOTP sign-in and provider buttons in the browser, against an in-process server.

The app runs in a uvicorn thread on SQLite storage, with a user enrolled for TOTP (the
``users.totp_secret`` column) and two provider buttons plugged into the login page's
extension point. axe-core checks both new pages.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser

from ostiary.core import totp
from ostiary.core.passwords import INSECURE_TEST
from ostiary.core.users import new_user
from ostiary.server.app import create_authorization_server
from ostiary.server.pages import LOGIN_PROVIDERS, ProviderButton
from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests.browser.conftest import (
    PASSWORD,
    USERNAME,
    ClientApp,
    pkce_pair,
)
from tests.browser.test_accessibility import VIEWPORTS, check
from tests.browser.test_pages import sign_in_with_keyboard
from tests.e2e.server import free_port
from tests.helpers.context import build_context


@dataclass
class InProcess:
    issuer: str
    client_id: str
    secret: str


@pytest.fixture(scope="module")
def in_process(
    tmp_path_factory: pytest.TempPathFactory, client_app: ClientApp
) -> Iterator[InProcess]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    data_dir = tmp_path_factory.mktemp("in-process")
    settings = Settings(
        _env_file=None,
        issuer=issuer,
        dev={"enabled": True},
        storage={"url": f"sqlite:///{data_dir / 'ostiary.db'}"},
        data_dir=data_dir,
        ui={"product_name": "Acme Cloud", "accent_color": "#0f766e"},
    )
    secret = totp.new_secret()

    async def seed() -> None:
        # A storage of its own: its connections belong to this thread's event loop.
        storage = open_storage(settings)
        try:
            await storage.initialize()
            user = await new_user(
                settings.storage.tenant, USERNAME, PASSWORD, int(time.time()), hashing=INSECURE_TEST
            )
            await storage.save_user(replace(user, totp_secret=secret))
        finally:
            await storage.close()

    # Playwright's sync API keeps an event loop on this thread: seed from another one.
    seeding = threading.Thread(target=lambda: asyncio.run(seed()))
    seeding.start()
    seeding.join(30)
    assert not seeding.is_alive(), "seeding the user did not finish"
    ctx = build_context(settings, open_storage(settings))
    ctx.extra[LOGIN_PROVIDERS] = lambda interaction_id: [
        ProviderButton("github", "GitHub", f"{issuer}/federation/github/{interaction_id}"),
        ProviderButton("google", "Google", f"{issuer}/federation/google/{interaction_id}"),
    ]
    app = create_authorization_server(settings, context=ctx)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "in-process server did not start"
    registered = httpx.post(
        f"{issuer}/register",
        json={
            "client_name": "Claude Desktop",
            "redirect_uris": [client_app.callback],
            "token_endpoint_auth_method": "none",
        },
    )
    assert registered.status_code == 201, registered.text
    try:
        yield InProcess(issuer, registered.json()["client_id"], secret)
    finally:
        server.should_exit = True
        thread.join(10)


def test_totp_sign_in_with_provider_buttons(
    browser: Browser, in_process: InProcess, client_app: ClientApp, tmp_path: Path
) -> None:
    context = browser.new_context(bypass_csp=True, viewport=VIEWPORTS["desktop"])
    page = context.new_page()
    try:
        _verifier, challenge = pkce_pair()
        page.goto(
            f"{in_process.issuer}/authorize?"
            + str(
                httpx.QueryParams(
                    {
                        "response_type": "code",
                        "client_id": in_process.client_id,
                        "redirect_uri": client_app.callback,
                        "code_challenge": challenge,
                        "code_challenge_method": "S256",
                        "state": "s",
                    }
                )
            )
        )
        buttons = page.locator("a.button-provider")
        assert buttons.all_inner_texts() == ["Continue with GitHub", "Continue with Google"]
        check(page, "login-providers")

        sign_in_with_keyboard(page)
        page.locator("#code").wait_for()
        assert page.locator("h1").inner_text() == "Two-step verification"
        check(page, "login-code")

        page.locator("#code").fill("000000")
        page.keyboard.press("Enter")
        page.get_by_role("alert").wait_for()
        assert page.get_by_role("alert").inner_text() == (
            "That code is not valid. Check the time on your device and try again."
        )
        check(page, "login-code-error")

        page.locator("#code").fill(totp.totp(in_process.secret, int(time.time())))
        page.keyboard.press("Enter")
        page.get_by_role("button", name="Approve").wait_for()
        page.get_by_role("button", name="Approve").click()
        page.wait_for_url(f"{client_app.callback}?*")
    finally:
        context.close()
