"""Shared pieces of the demo, gateway and e2e MCP tests: real clients, real tokens, no mocks.

* :class:`FormLogin` plugs the real login and consent pages (driven over HTTP by
  ``tests.helpers.browserless``) into the official SDK's ``OAuthClientProvider`` as its
  redirect and callback handlers.
* :func:`obtain_token` runs DCR + PKCE + the pages + the token endpoint with plain httpx, for
  tests that need a token for a chosen resource.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from tests.helpers.browserless import authorize

USERNAME = "alice"
PASSWORD = "correct horse battery staple"
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never contacted: the pages' redirect is read


class MemoryTokenStorage:
    """The SDK's ``TokenStorage``, remembering every scope it was handed."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None
        self.scopes_seen: list[str | None] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.scopes_seen.append(tokens.scope)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


@dataclass
class FormLogin:
    """Redirect + callback handlers that submit the real login/consent forms over HTTP."""

    username: str = USERNAME
    password: str = PASSWORD
    cookies: httpx.Cookies = field(default_factory=httpx.Cookies)  # the browser's session
    authorize_urls: list[str] = field(default_factory=list)
    _result: AuthorizationCodeResult | None = None

    async def redirect_handler(self, url: str) -> None:
        self.authorize_urls.append(url)
        async with httpx.AsyncClient(timeout=30, cookies=self.cookies) as http:
            location = await authorize(http, url, username=self.username, password=self.password)
            self.cookies.update(http.cookies)
        query = parse_qs(urlsplit(location).query)
        assert "code" in query, f"authorization failed: {location}"
        self._result = AuthorizationCodeResult(
            code=query["code"][0],
            state=query.get("state", [None])[0],
            iss=query.get("iss", [None])[0],
        )

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self._result is not None, "callback before redirect"
        result, self._result = self._result, None
        return result

    def requested_scopes(self) -> list[str]:
        return [parse_qs(urlsplit(u).query).get("scope", [""])[0] for u in self.authorize_urls]


def sdk_provider(
    resource: str, storage: MemoryTokenStorage, login: FormLogin
) -> OAuthClientProvider:
    """The official SDK's OAuth client, registering by DCR with a loopback redirect URI."""
    metadata = OAuthClientMetadata(
        client_name="mcp-sdk-e2e",
        redirect_uris=[REDIRECT_URI],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    return OAuthClientProvider(
        server_url=resource,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=login.redirect_handler,
        callback_handler=login.callback_handler,
    )


@asynccontextmanager
async def sdk_session(
    resource: str, auth: httpx2.Auth | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[ClientSession]:
    """An initialised official-SDK client session over streamable HTTP."""
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30, headers=headers) as http,
        streamable_http_client(resource, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@dataclass
class IssuedToken:
    client_id: str
    access_token: str
    refresh_token: str | None
    scope: str
    raw: dict[str, Any]


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def obtain_token(
    issuer: str,
    resource: str,
    *,
    scope: str = "mcp:read",
    username: str = USERNAME,
    password: str = PASSWORD,
    http: httpx.AsyncClient | None = None,
) -> IssuedToken:
    """DCR, then authorization code + PKCE through the real pages, then the token endpoint.

    ``http``: a client to use (an in-process ASGI one); a fresh network client otherwise.
    """
    async with contextlib.AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        registered = await http.post(
            f"{issuer}/register",
            json={
                "client_name": "e2e-token",
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "application_type": "native",
            },
        )
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        verifier, challenge = _pkce()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": REDIRECT_URI,
                "scope": scope,
                "state": "s1",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "resource": resource,
            }
        )
        location = await authorize(
            http, f"{issuer}/authorize?{query}", username=username, password=password
        )
        code = parse_qs(urlsplit(location).query)["code"][0]
        token = await http.post(
            f"{issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "client_id": client_id,
                "code_verifier": verifier,
                "resource": resource,
            },
        )
        assert token.status_code == 200, token.text
        body = token.json()
    return IssuedToken(
        client_id, body["access_token"], body.get("refresh_token"), body["scope"], body
    )


def rpc(method: str, params: dict[str, Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    """A JSON-RPC request body."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return body


MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def mcp_headers(token: str | None = None, **extra: str) -> dict[str, str]:
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    headers.update(extra)
    return headers


def storage_settings(issuer: str, storage_url: str) -> Any:
    """Settings naming a running server's storage, for reading it from the test."""
    from ostiary.settings import Settings

    # The servers these tests start keep their SQLite file and storage.key in one data_dir.
    data_dir = Path(storage_url.removeprefix("sqlite:///")).parent
    return Settings(
        _env_file=None,
        issuer=issuer,
        dev={"enabled": True},
        storage={"url": storage_url},
        data_dir=data_dir,
    )


async def resign(token: str, issuer: str, storage_url: str, **claims: Any) -> str:
    """``token`` with some claims changed, signed again with the server's own active key."""
    import json

    from joserfc import jwt

    from ostiary.core.keys import import_private_key
    from ostiary.storage import open_storage
    from ostiary.storage_key import storage_cipher

    settings = storage_settings(issuer, storage_url)
    storage = open_storage(settings)
    await storage.initialize()
    try:
        keys = await storage.list_signing_keys(settings.storage.tenant)
    finally:
        await storage.close()
    active = next(k for k in keys if k.retired_at is None)
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    payload.update(claims)
    header = {"alg": active.alg, "typ": "at+jwt", "kid": active.kid}
    return jwt.encode(header, payload, import_private_key(active, storage_cipher(settings)))
