"""Fixtures: the real upstream IdP, an in-process ostiary with it configured, and a "browser".

The browser is two cookie jars, one per site, like a real browser's: requests to ostiary go
in-process (httpx.ASGITransport), requests to the IdP over real loopback HTTP, and redirects
are followed across both until a page is shown or the browser is sent to the MCP client's
redirect URI. Nothing is mocked: ostiary fetches the IdP's discovery document and JWKS and
redeems codes at its token endpoint over the network.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from ostiary.core.context import ServerContext
from ostiary.server.app import create_authorization_server, startup
from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests.federation._idp import (
    CLIENT_ID,
    CLIENT_SECRET,
    ISSUER,
    RunningIdp,
    start_idp,
)
from tests.helpers.context import build_context

RESOURCE = f"{ISSUER}/mcp"
REDIRECT = "http://127.0.0.1:9999/callback"
TOKEN_KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(scope="session")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIdp]:
    with start_idp(tmp_path_factory.mktemp("idp") / "idp.log") as running:
        yield running


@dataclass
class Clock:
    """Frozen at the real time the test started (ID tokens carry real times), plus an offset
    the tests advance."""

    start: int = field(default_factory=lambda: int(time.time()))
    offset: int = 0

    def __call__(self) -> int:
        return self.start + self.offset


def provider_config(idp: RunningIdp, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "idp",
        "kind": "oidc",
        "label": "Test IdP",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "discovery_url": idp.discovery_url,
        "keep_tokens": True,
        **overrides,
    }


def federation_settings(idp: RunningIdp, **provider: Any) -> dict[str, Any]:
    return {
        "providers": [provider_config(idp, **provider)],
        "token_key": TOKEN_KEY,
        "allow_private_network": True,
    }


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_PROMPT = re.compile(r'name="prompt" value="([^"]+)"')


def form_action(body: str) -> str:
    found = _FORM_ACTION.search(body)
    assert found is not None, body[:500]
    return html.unescape(found.group(1))


def csrf(body: str) -> str:
    found = _CSRF.search(body)
    assert found is not None, body[:500]
    return html.unescape(found.group(1))


@dataclass
class Browser:
    """One user agent: a cookie jar for ostiary (in-process) and one for the IdP."""

    ostiary: httpx.AsyncClient
    idp: httpx.AsyncClient
    idp_issuer: str
    ostiary_issuer: str = ISSUER
    #: Every URL requested, in order (to show what happened before what).
    visited: list[str] = field(default_factory=list)

    def _client(self, url: str) -> httpx.AsyncClient:
        if url.startswith(self.ostiary_issuer):
            return self.ostiary
        assert url.startswith(self.idp_issuer), f"browser sent to an unexpected site: {url}"
        return self.idp

    async def get(self, url: str) -> httpx.Response:
        self.visited.append(url)
        return await self._client(url).get(url)

    async def post(self, url: str, data: dict[str, str]) -> httpx.Response:
        self.visited.append(url)
        return await self._client(url).post(url, data=data)

    async def follow(self, response: httpx.Response, *, stop_at: str = REDIRECT) -> httpx.Response:
        """Follow redirects within ostiary and the IdP; stop at a page or at ``stop_at``
        (by default the MCP client's redirect URI)."""
        while response.status_code in (302, 303):
            location = str(response.url.join(response.headers["location"]))
            if location.startswith((stop_at, REDIRECT)):
                return response
            response = await self.get(location)
        return response

    async def idp_login(
        self, response: httpx.Response, account: str, *, stop_at: str = REDIRECT
    ) -> httpx.Response:
        """Sign in at the IdP's devInteractions pages (login, then its own consent)."""
        while response.status_code == 200 and str(response.url).startswith(self.idp_issuer):
            prompt = _PROMPT.search(response.text)
            assert prompt is not None, response.text[:500]
            action = str(response.url.join(form_action(response.text)))
            data = {"prompt": prompt.group(1)}
            if prompt.group(1) == "login":
                data |= {"login": account, "password": "any"}
            response = await self.follow(await self.post(action, data), stop_at=stop_at)
        return response


@dataclass
class Fed:
    """ostiary with the IdP configured, its context and clock, and a registered MCP client."""

    http: httpx.AsyncClient
    app: Starlette
    ctx: ServerContext
    clock: Clock
    settings: Settings
    idp: RunningIdp
    client_id: str = ""
    #: Every HTTP client the test opened, closed at teardown.
    opened: list[httpx.AsyncClient] = field(default_factory=list)

    def browser(self, *, idp_jar: Browser | None = None) -> Browser:
        """A new browser; ``idp_jar`` shares another browser's IdP cookies (its session)."""
        ostiary = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=ISSUER)
        self.opened.append(ostiary)
        if idp_jar is not None:
            return Browser(ostiary, idp_jar.idp, self.idp.issuer)
        idp = httpx.AsyncClient(timeout=10)
        self.opened.append(idp)
        return Browser(ostiary, idp, self.idp.issuer)

    def authorize_url(self, challenge: str, **extra: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "client-state",
            "resource": RESOURCE,
            "scope": "mcp:read",
            **extra,
        }
        return f"{ISSUER}/authorize?{urlencode(params)}"

    async def login_page(self, browser: Browser, challenge: str, **extra: str) -> httpx.Response:
        return await browser.follow(await browser.get(self.authorize_url(challenge, **extra)))

    async def redeem(
        self, location: str, verifier: str, resource: str = RESOURCE
    ) -> dict[str, Any]:
        query = parse_qs(urlsplit(location).query)
        assert set(query) == {"code", "state", "iss"}, location
        response = await self.http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
                "client_id": self.client_id,
                "resource": resource,
            },
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens


_ERROR = re.compile(r'<p class="alert alert-error" role="alert"><code>([^<]+)</code>: ([^<]*)</p>')


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    """(status, error code, description) of ostiary's error page."""
    found = _ERROR.search(response.text)
    assert found is not None, response.text[:800]
    return response.status_code, found.group(1), html.unescape(found.group(2))


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


@pytest.fixture(params=["memory", "sqlite"])
async def fed_any_storage(
    request: pytest.FixtureRequest,
    idp: RunningIdp,
    settings_factory: Callable[..., Settings],
    tmp_path: Path,
) -> AsyncIterator[Fed]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/ostiary.db"
    async for fed in _fed(idp, settings_factory, url):
        yield fed


@pytest.fixture
async def fed(
    request: pytest.FixtureRequest, idp: RunningIdp, settings_factory: Callable[..., Settings]
) -> AsyncIterator[Fed]:
    marker = request.node.get_closest_marker("as_settings")
    overrides = marker.kwargs if marker else {}
    async for built in _fed(idp, settings_factory, "memory://", **overrides):
        yield built


async def _fed(
    idp: RunningIdp,
    settings_factory: Callable[..., Settings],
    storage_url: str,
    **overrides: Any,
) -> AsyncIterator[Fed]:
    settings = settings_factory(
        issuer=ISSUER,
        storage={"url": storage_url},
        federation=federation_settings(idp),
        resources={"allow_any": True},
        **overrides,
    )
    clock = Clock()
    ctx = build_context(settings, open_storage(settings), clock=clock)
    app = create_authorization_server(settings, context=ctx)
    await startup(ctx)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        registered = await http.post(
            "/register",
            json={
                "client_name": "Federated MCP Client",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            },
        )
        assert registered.status_code == 201, registered.text
        fed = Fed(http, app, ctx, clock, settings, idp, registered.json()["client_id"])
        try:
            yield fed
        finally:
            for client in fed.opened:
                await client.aclose()
    await ctx.storage.close()
