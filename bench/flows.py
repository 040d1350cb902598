"""One OAuth client's view of each server, in httpx: register, authorize, token, refresh.

Used to prepare what ``wrk`` replays (a client, a PKCE pair, a logged-in ostiary session with
remembered consent, refresh tokens, an access token) and to issue tokens for the memory
figure. Nothing here is timed.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

REDIRECT_URI = "http://127.0.0.1:9/callback"
SCOPE = "mcp:read"
_FORM = re.compile(r'<form method="post" action="([^"]+)"')
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


@dataclass
class OAuthTarget:
    """An authorization server (``base``) and the MCP resource its tokens are for."""

    name: str
    base: str
    resource: str
    cookie: str = ""  # ostiary: the logged-in browser session

    def registration_body(self) -> dict[str, Any]:
        return {
            "client_name": "bench",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
            "scope": "mcp:read mcp:write",
        }

    def authorize_path(self, client_id: str, pkce: Pkce) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": REDIRECT_URI,
                "scope": SCOPE,
                "state": "bench",
                "code_challenge": pkce.challenge,
                "code_challenge_method": "S256",
                "resource": self.resource,
            }
        )
        return f"{urlsplit(self.base).path}/authorize?{query}"

    def code_body(self, client_id: str, pkce: Pkce) -> str:
        """The token request minus ``code`` (wrk appends it)."""
        return urlencode(
            {
                "grant_type": "authorization_code",
                "redirect_uri": REDIRECT_URI,
                "client_id": client_id,
                "code_verifier": pkce.verifier,
                "resource": self.resource,
            }
        )

    def refresh_body(self, client_id: str) -> str:
        """The refresh request minus ``refresh_token`` (wrk appends it)."""
        return urlencode({"grant_type": "refresh_token", "client_id": client_id})

    async def register(self, http: httpx.AsyncClient) -> str:
        response = await http.post(f"{self.base}/register", json=self.registration_body())
        assert response.status_code == 201, f"{self.name} DCR: {response.text}"
        client_id: str = response.json()["client_id"]
        return client_id

    async def login(
        self, http: httpx.AsyncClient, client_id: str, user: str, password: str
    ) -> None:
        """ostiary only: log in and consent once through the real pages; keep the cookie."""
        pkce = Pkce.new()
        response = await http.get(self.origin + self.authorize_path(client_id, pkce))
        while response.status_code in (302, 303):
            location = response.headers["location"]
            if "/interaction/" not in location:
                break
            page = await http.get(
                location if location.startswith("http") else self.origin + location
            )
            body = page.text
            action = html.unescape(_FORM.search(body).group(1))  # type: ignore[union-attr]
            csrf = html.unescape(_CSRF.search(body).group(1))  # type: ignore[union-attr]
            action = action if action.startswith("http") else self.origin + action
            if 'name="password"' in body:
                data = {"csrf_token": csrf, "username": user, "password": password}
            else:
                data = {"csrf_token": csrf, "decision": "approve"}
            response = await http.post(action, data=data)
        self.cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base)
        return f"{parts.scheme}://{parts.netloc}"

    async def code(self, http: httpx.AsyncClient, client_id: str, pkce: Pkce) -> str:
        headers = {"cookie": self.cookie} if self.cookie else {}
        response = await http.get(
            self.origin + self.authorize_path(client_id, pkce), headers=headers
        )
        location = response.headers.get("location", "")
        while response.status_code in (302, 303) and "/interaction/" in location:
            response = await http.get(location, headers=headers)  # passes without a page
            location = response.headers.get("location", "")
        assert response.status_code in (302, 303), f"{self.name} authorize: {response.text[:300]}"
        query = parse_qs(urlsplit(location).query)
        assert "code" in query, f"{self.name} authorize: {location}"
        code: str = query["code"][0]
        return code

    async def tokens(
        self, http: httpx.AsyncClient, client_id: str, *, dpop: Any = None
    ) -> dict[str, Any]:
        """One full flow (authorize, token); with ``dpop`` (a DPoPSigner) a DPoP-bound one."""
        pkce = Pkce.new()
        code = await self.code(http, client_id, pkce)
        headers = {"content-type": "application/x-www-form-urlencoded"}
        if dpop is not None:
            headers["DPoP"] = dpop.proof("POST", f"{self.base}/token")
        response = await http.post(
            f"{self.base}/token",
            content=self.code_body(client_id, pkce) + "&code=" + code,
            headers=headers,
        )
        assert response.status_code == 200, f"{self.name} token: {response.text}"
        body: dict[str, Any] = response.json()
        return body
