"""An in-process authorization server with a user, driven through httpx.ASGITransport."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from ostiary.core.context import ServerContext
from ostiary.core.passwords import INSECURE_TEST
from ostiary.core.users import new_user
from ostiary.server.app import create_authorization_server, startup
from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests._services import postgres_url
from tests.helpers.browserless import authorize
from tests.helpers.context import build_context

ISSUER = "http://127.0.0.1:8000"
RESOURCE = f"{ISSUER}/mcp"
REDIRECT = "http://127.0.0.1:9999/callback"
USERNAME = "alice"
PASSWORD = "correct horse battery"


@dataclass
class Clock:
    now: int = 1_900_000_000

    def __call__(self) -> int:
        return self.now


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class AS:
    http: httpx.AsyncClient
    ctx: ServerContext
    clock: Clock
    settings: Settings

    def authorize_url(self, client_id: str, challenge: str, **extra: str) -> str:
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "st4te",
            "resource": RESOURCE,
            **extra,
        }
        return f"{ISSUER}/authorize?{urlencode(params)}"

    async def tokens(
        self, client_id: str, *, scope: str = "mcp:read", auth: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        """Sign in and approve through the pages, then exchange the code (PKCE S256)."""
        verifier, challenge = pkce_pair()
        url = self.authorize_url(client_id, challenge, scope=scope)
        location = await authorize(self.http, url, username=USERNAME, password=PASSWORD)
        code = parse_qs(urlsplit(location).query)["code"][0]
        response = await self.http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
                "client_id": client_id,
                "resource": RESOURCE,
            },
            auth=httpx.USE_CLIENT_DEFAULT if auth is None else auth,
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def register(self, **metadata: Any) -> dict[str, Any]:
        body = {
            "client_name": "Test Client",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
            **metadata,
        }
        response = await self.http.post(f"{ISSUER}/register", json=body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data


#: ``@WITH_POSTGRES`` runs a test on PostgreSQL too (each run in its own tenant of the shared
#: database), besides the fixture's default memory and SQLite.
WITH_POSTGRES = pytest.mark.parametrize(
    "auth_server",
    ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)


def _storage_for(backend: str, tmp_path: Any) -> dict[str, str]:
    if backend == "memory":
        return {"url": "memory://"}
    if backend == "sqlite":
        return {"url": f"sqlite:///{tmp_path}/as.db"}
    return {"url": postgres_url(), "tenant": f"t-{uuid.uuid4().hex}"}


@pytest.fixture(params=["memory", "sqlite"])
async def auth_server(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings], tmp_path: Any
) -> AsyncIterator[AS]:
    marker = request.node.get_closest_marker("as_settings")
    overrides = marker.kwargs if marker else {}
    storage = _storage_for(request.param, tmp_path)
    settings = settings_factory(issuer=ISSUER, storage=storage, **overrides)
    clock = Clock()
    ctx = build_context(settings, open_storage(settings), clock=clock)
    app = create_authorization_server(settings, context=ctx)
    await startup(ctx)
    user = await new_user(
        settings.storage.tenant, USERNAME, PASSWORD, clock(), hashing=INSECURE_TEST
    )
    await ctx.storage.save_user(user)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield AS(http, ctx, clock, settings)
    await ctx.storage.close()
