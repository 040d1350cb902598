"""The operator console in Chromium: charts drawn under the real CSP, axe-core, screenshots.

An in-process server (uvicorn thread, memory storage) with an administrator enrolled for
TOTP, a regular user, registered / pre-registered / blocked clients and some traffic (tokens
issued and refreshed, failed logins, a reused refresh token, error answers), so every chart
has lines. The pages keep their CSP: axe-core is evaluated through the DevTools protocol,
which CSP does not govern, instead of a script tag. Screenshots of the dashboard, users,
clients and grants pages (and the refusal) go to ``$OSTIARY_TEST_ARTIFACTS`` (default: the
system temp directory's ``ostiary-artifacts``), under ``admin/``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page

from ostiary.core import totp
from ostiary.core.models import Client
from ostiary.core.passwords import INSECURE_TEST
from ostiary.core.users import new_user, with_totp_secret
from ostiary.server.app import create_authorization_server
from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests.browser.conftest import PASSWORD, USERNAME, ClientApp, axe_path, pkce_pair
from tests.browser.test_accessibility import VIEWPORTS
from tests.browser.test_pages import sign_in_with_keyboard
from tests.e2e.server import free_port
from tests.helpers.browserless import authorize
from tests.helpers.context import build_context

ADMIN = "rosa"
ADMIN_PASSWORD = "operator password 1"


def artifacts() -> Path:
    """Where CI keeps the screenshots: ``$OSTIARY_TEST_ARTIFACTS/admin``."""
    base = os.environ.get("OSTIARY_TEST_ARTIFACTS") or str(
        Path(tempfile.gettempdir()) / "ostiary-artifacts"
    )
    directory = Path(base) / "admin"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class Console:
    issuer: str
    secret: str
    client_id: str


def _traffic(issuer: str, callback: str) -> str:
    """Register a client and make the counters move; returns the client id."""
    with httpx.Client(base_url=issuer) as http:
        registered = http.post(
            "/register",
            json={
                "client_name": "Research Notebook",
                "redirect_uris": [callback],
                "token_endpoint_auth_method": "none",
            },
        )
        assert registered.status_code == 201, registered.text
        client_id = str(registered.json()["client_id"])

    async def flow() -> None:
        async with httpx.AsyncClient(base_url=issuer) as http:
            verifier, challenge = pkce_pair()
            query = httpx.QueryParams(
                {
                    "response_type": "code",
                    "client_id": client_id,
                    "redirect_uri": callback,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                    "state": "s",
                    "scope": "mcp:read",
                    "resource": f"{issuer}/mcp",
                }
            )
            location = await authorize(
                http, f"{issuer}/authorize?{query}", username=USERNAME, password=PASSWORD
            )
            code = parse_qs(urlsplit(location).query)["code"][0]
            tokens = await http.post(
                "/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": callback,
                    "code_verifier": verifier,
                    "client_id": client_id,
                    "resource": f"{issuer}/mcp",
                },
            )
            first = tokens.json()["refresh_token"]
            refresh = {"grant_type": "refresh_token", "client_id": client_id}
            second = (await http.post("/token", data={**refresh, "refresh_token": first})).json()
            third = await http.post(
                "/token", data={**refresh, "refresh_token": second["refresh_token"]}
            )
            assert third.status_code == 200
            # The first token again, long after its successor moved on: reuse, grant revoked.
            reused = await http.post("/token", data={**refresh, "refresh_token": first})
            assert reused.status_code == 400
            for _ in range(3):
                await http.post("/token", data={"grant_type": "nonsense"})
            await http.post("/introspect", data={})
        # A second grant that stays live, for the grants page.
        async with httpx.AsyncClient(base_url=issuer) as http:
            await authorize(
                http,
                f"{issuer}/authorize?{query}",
                username=USERNAME,
                password=PASSWORD,
            )

    asyncio.run(flow())
    return client_id


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, client_app: ClientApp) -> Iterator[Console]:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    data_dir = tmp_path_factory.mktemp("admin-console")
    settings = Settings(
        _env_file=None,
        issuer=issuer,
        dev={"enabled": True},
        storage={"url": "memory://"},
        data_dir=data_dir,
        ui={"product_name": "Acme Cloud", "accent_color": "#0f766e"},
        tokens={"refresh_grace_seconds": 0},
    )
    secret = totp.new_secret()
    ctx = build_context(settings, open_storage(settings))
    tenant = settings.storage.tenant

    async def seed() -> None:
        now = int(time.time())
        admin = await new_user(
            tenant, ADMIN, ADMIN_PASSWORD, now, "Rosa Root", hashing=INSECURE_TEST
        )
        await ctx.storage.save_user(
            with_totp_secret(replace(admin, admin=True), secret, ctx.cipher)
        )
        await ctx.storage.save_user(
            await new_user(tenant, USERNAME, PASSWORD, now, "Ada Lovelace", hashing=INSECURE_TEST)
        )
        await ctx.storage.save_user(
            replace(
                await new_user(tenant, "mallory", "not allowed in 1", now, hashing=INSECURE_TEST),
                disabled=True,
            )
        )
        await ctx.storage.save_client(
            Client(tenant, "build-bot", ("https://ci.example.com/cb",), source="static",
                   client_name="Build Bot", token_endpoint_auth_method="client_secret_basic",
                   application_type="web", client_id_issued_at=now)
        )  # fmt: skip
        await ctx.storage.save_client(
            Client(tenant, "https://tools.example.net/oauth/client.json", (), source="cimd",
                   disabled=True)
        )  # fmt: skip

    # Playwright's sync API keeps an event loop on this thread: seed from another one.
    seeding = threading.Thread(target=lambda: asyncio.run(seed()))
    seeding.start()
    seeding.join(30)
    app = create_authorization_server(settings, context=ctx)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "in-process server did not start"
    try:
        result: list[str] = []
        worker = threading.Thread(
            target=lambda: result.append(_traffic(issuer, client_app.callback))
        )
        worker.start()
        worker.join(60)
        assert result, "traffic did not finish"
        yield Console(issuer, secret, result[0])
    finally:
        server.should_exit = True
        thread.join(10)


def violations(page: Page) -> list[dict[str, Any]]:
    """Every axe-core violation, whatever its impact (run through DevTools: CSP stays on)."""
    page.evaluate(axe_path().read_text())
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "targets": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
    ]


def check(page: Page, name: str) -> None:
    assert violations(page) == [], name
    for label, size in VIEWPORTS.items():
        page.set_viewport_size(size)
        page.screenshot(path=str(artifacts() / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(VIEWPORTS["desktop"])


@pytest.fixture
def enforced(browser: Browser) -> Iterator[BrowserContext]:
    """A profile with the pages' CSP enforced (no bypass) and CSP reports collected."""
    ctx = browser.new_context(viewport=VIEWPORTS["desktop"])
    try:
        yield ctx
    finally:
        ctx.close()


def test_dashboard_charts_and_pages(enforced: BrowserContext, console: Console) -> None:
    page = enforced.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.text} {m.location.get('url')}")
            if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(f"{console.issuer}/admin")
    assert page.locator(".lead").inner_text() == "to open the operator console"
    sign_in_with_keyboard(page, ADMIN, ADMIN_PASSWORD)
    page.locator("#code").wait_for()
    page.locator("#code").fill(totp.totp(console.secret, int(time.time())))
    page.keyboard.press("Enter")
    page.wait_for_url(f"{console.issuer}/admin")
    assert page.locator("h1").inner_text() == "Dashboard"

    page.locator('#charts[data-loaded="hour"]').wait_for()
    charts = page.locator("figure.chart")
    assert charts.count() == 4
    assert page.locator("figure.chart svg[role=img]").count() == 4
    legends = page.locator("figure.chart .legend").all_inner_texts()
    assert legends[0].split("\n") == ["Issued: 1", "Refreshed: 2"]
    assert legends[1].split("\n")[0] == "Succeeded: 3"  # ada twice, rosa once
    assert legends[2] == "Reuse detections: 1"
    assert "/token: 4" in legends[3]
    assert page.locator("figure.chart path.line").count() >= 6
    label = page.locator("figure.chart svg").first.get_attribute("aria-label")
    assert label == "Tokens issued and refreshed in the last hour: Issued 1, Refreshed 2."
    page.get_by_role("button", name="Last day").click()
    page.locator('#charts[data-loaded="day"]').wait_for()
    assert page.get_by_role("button", name="Last day").get_attribute("aria-pressed") == "true"
    page.get_by_role("button", name="Last hour").click()
    page.locator('#charts[data-loaded="hour"]').wait_for()
    check(page, "dashboard")

    page.get_by_role("link", name="Users").click()
    page.wait_for_url(f"{console.issuer}/admin/users")
    assert page.locator("tbody th").all_inner_texts() == ["ada", "mallory", "rosa"]
    check(page, "users")

    page.get_by_role("link", name="Clients").click()
    assert page.locator("h1").inner_text() == "Clients"
    assert page.get_by_text("Metadata document (block entry)").count() == 1
    check(page, "clients")

    page.get_by_role("link", name="Grants").click()
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_role("button", name="Show grants").click()
    page.wait_for_url("**/admin/grants?user=ada&client=")
    revoke = page.get_by_role("button", name=f"Revoke the grant of ada to {console.client_id}")
    assert revoke.count() == 1
    check(page, "grants")
    revoke.click()
    page.get_by_role("status").filter(has_text="Grant revoked with its tokens.").wait_for()
    assert page.get_by_text("No live grants.").count() == 1

    assert problems == []


def test_a_signed_in_user_who_is_not_an_administrator_is_refused(
    enforced: BrowserContext, console: Console
) -> None:
    page = enforced.new_page()
    page.goto(f"{console.issuer}/admin")
    sign_in_with_keyboard(page)
    page.wait_for_url(f"{console.issuer}/admin")
    assert page.locator("h1").inner_text() == "Administrators only"
    response = page.request.get(f"{console.issuer}/admin/users")
    assert response.status == 403
    check(page, "refused")
