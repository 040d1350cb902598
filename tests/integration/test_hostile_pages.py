"""The login and consent pages on an https issuer, and malformed form posts to them.

On https the browser-binding and session cookies carry the ``__Host-`` prefix and ``Secure``
(RFC 6265bis §4.1.3.2: no Domain, Path=/), so no sibling host or plain-http page can set or
read them. Form posts that are too large or not urlencoded get an error page, never a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import httpx
import pytest

from ostiary.core.passwords import INSECURE_TEST
from ostiary.core.users import new_user
from ostiary.server.app import create_authorization_server, startup
from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests.helpers.browserless import parse_form
from tests.helpers.context import build_context
from tests.integration.conftest import AS, PASSWORD, REDIRECT, USERNAME, Clock, pkce_pair
from tests.integration.test_hostile_helpers import guard, snapshot

HTTPS_ISSUER = "https://auth.example.test"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
async def server(settings_factory: Callable[..., Settings]) -> AsyncIterator[AS]:
    settings = settings_factory(issuer=HTTPS_ISSUER, resources={"allowed": [f"{HTTPS_ISSUER}/mcp"]})
    clock = Clock()
    ctx = build_context(settings, open_storage(settings), clock=clock)
    app = create_authorization_server(settings, context=ctx)
    await startup(ctx)
    await ctx.storage.save_user(
        await new_user(settings.storage.tenant, USERNAME, PASSWORD, clock(), hashing=INSECURE_TEST)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=HTTPS_ISSUER) as http:
        yield guard(AS(http, ctx, clock, settings))
    await ctx.storage.close()


def _authorize_url(server: AS, client_id: str) -> str:
    _verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st4te",
    }
    return f"{HTTPS_ISSUER}/authorize?{urlencode(params)}"


def _cookie(response: httpx.Response) -> tuple[str, dict[str, str | bool]]:
    header = response.headers["set-cookie"]
    parsed = SimpleCookie()
    parsed.load(header)
    ((name, morsel),) = parsed.items()
    flags = {k: morsel[k] for k in ("path", "domain", "samesite", "secure", "httponly")}
    return name, flags


async def _login_page(server: AS) -> tuple[str, httpx.Response, httpx.Response]:
    client = await server.register()
    start = await server.http.get(_authorize_url(server, client["client_id"]))
    assert start.status_code == 303
    page = await server.http.get(start.headers["location"])
    assert page.status_code == 200
    return start.headers["location"], start, page


async def test_https_cookies_are_host_prefixed_and_secure(server: AS) -> None:
    _interaction, start, page = await _login_page(server)
    name, flags = _cookie(start)
    assert name == "__Host-ostiary_browser"
    assert flags == {
        "path": "/",
        "domain": "",
        "samesite": "lax",
        "secure": True,
        "httponly": True,
    }
    form = parse_form(page.text)
    login = await server.http.post(
        form.action,
        data={"csrf_token": form.csrf_token, "username": USERNAME, "password": PASSWORD},
    )
    assert login.status_code == 303
    name, flags = _cookie(login)
    assert name == "__Host-ostiary_session"
    assert flags["secure"] is True
    assert flags["httponly"] is True
    assert flags["domain"] == ""


async def test_unprefixed_cookie_does_not_bind_on_https(server: AS) -> None:
    """A cookie without the prefix (settable by a sibling host) is not the browser binding."""
    interaction, _start, _page = await _login_page(server)
    value = server.http.cookies.get("__Host-ostiary_browser")
    assert value
    server.http.cookies.clear()
    server.http.cookies.set("ostiary_browser", value)
    response = await server.http.get(interaction)
    assert response.status_code == 400
    assert "This sign-in request was started in another browser." in response.text


async def test_oversized_login_post_is_413(server: AS) -> None:
    _interaction, _start, page = await _login_page(server)
    form = parse_form(page.text)
    before = await snapshot(server)
    body = urlencode({"csrf_token": form.csrf_token, "username": USERNAME, "password": "x"})
    response = await server.http.post(
        form.action, content=body + "&pad=" + "a" * 70_000, headers={"content-type": FORM}
    )
    assert response.status_code == 413
    assert "<code>invalid_request</code>: request body is too large</p>" in response.text
    assert "set-cookie" not in response.headers
    assert await snapshot(server) == before


async def test_oversized_consent_post_is_413(server: AS) -> None:
    interaction, _start, page = await _login_page(server)
    form = parse_form(page.text)
    await server.http.post(
        form.action,
        data={"csrf_token": form.csrf_token, "username": USERNAME, "password": PASSWORD},
    )
    consent = parse_form((await server.http.get(interaction)).text)
    before = await snapshot(server)
    body = urlencode({"csrf_token": consent.csrf_token, "decision": "approve"})
    response = await server.http.post(
        consent.action, content=body + "&pad=" + "a" * 70_000, headers={"content-type": FORM}
    )
    assert response.status_code == 413
    assert "location" not in response.headers
    assert await snapshot(server) == before


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data; boundary=x"])
async def test_login_post_that_is_not_urlencoded(server: AS, content_type: str) -> None:
    _interaction, _start, page = await _login_page(server)
    form = parse_form(page.text)
    response = await server.http.post(
        form.action,
        content=b'{"username": "alice"}',
        headers={"content-type": content_type},
    )
    assert response.status_code == 400
    assert (
        "<code>invalid_request</code>: content type must be "
        "application/x-www-form-urlencoded</p>" in response.text
    )
    assert "set-cookie" not in response.headers


async def test_logout_needs_its_csrf_token(server: AS) -> None:
    """A cross-site POST (no CSRF token) cannot sign the user out; the real form can."""
    interaction, _start, page = await _login_page(server)
    form = parse_form(page.text)
    await server.http.post(
        form.action,
        data={"csrf_token": form.csrf_token, "username": USERNAME, "password": PASSWORD},
    )
    assert 'name="decision"' in (await server.http.get(interaction)).text
    forged = await server.http.post("/logout", data={})
    assert forged.status_code == 400
    assert 'name="decision"' in (await server.http.get(interaction)).text
    logout_page = await server.http.get("/logout")
    assert logout_page.status_code == 200
    logout = parse_form(logout_page.text)
    out = await server.http.post(logout.action, data={"csrf_token": logout.csrf_token})
    assert out.status_code in (200, 303)
    assert 'name="password"' in (await server.http.get(interaction)).text
