"""Shared helpers for the hostile-input tests (this module holds no tests of its own).

* :func:`guard` makes the in-process client fail the test on any 5xx response, so "never a
  500" is checked on every request of every hostile test, not only where it is asserted.
* :func:`assert_oauth_error` checks an RFC 6749 §5.2 JSON error exactly: status, body,
  ``Cache-Control: no-store`` and the presence or absence of a ``WWW-Authenticate`` challenge.
* :func:`assert_error_page` checks an authorization error that must be shown, never redirected.
* :func:`snapshot` captures what a rejected request must not change: the storage counts and
  every client and grant record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from markupsafe import escape

from ostiary.core.models import Client, Grant, Stats
from tests.helpers.browserless import authorize
from tests.integration.conftest import AS, PASSWORD, REDIRECT, USERNAME, pkce_pair


def guard(server: AS) -> AS:
    """Fail the test on any 5xx answer of the in-process server."""

    async def no_server_error(response: httpx.Response) -> None:
        assert response.status_code < 500, (
            f"{response.request.method} {response.request.url}: {response.status_code}"
        )

    server.http.event_hooks["response"].append(no_server_error)
    return server


def assert_oauth_error(
    response: httpx.Response,
    status: int,
    error: str,
    description: str,
    *,
    www_authenticate: str | None = None,
) -> None:
    """An exact RFC 6749 §5.2 error response."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": error, "error_description": description}
    assert response.headers["cache-control"] == "no-store"
    assert response.headers.get("www-authenticate") == www_authenticate


def assert_error_page(response: httpx.Response, error: str, description: str) -> None:
    """An authorization error rendered locally (OAuth 2.1 §4.1.2.1): HTML, never a redirect."""
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    # Escaped as the pages' Jinja2 autoescape does (markupsafe: ' is &#39;, not &#x27;).
    assert f"<code>{error}</code>: {escape(description)}</p>" in response.text


def redirect_query(response: httpx.Response) -> dict[str, str]:
    """The query of a 303 back to the client, one value per parameter."""
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?"), location
    query = parse_qs(urlsplit(location).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in query.values()), query
    return {k: v[0] for k, v in query.items()}


@dataclass(frozen=True)
class Snapshot:
    stats: Stats
    clients: list[Client]
    grants: list[Grant]


async def snapshot(server: AS) -> Snapshot:
    """Everything a rejected request must leave untouched."""
    storage = server.ctx.storage
    tenant = server.settings.storage.tenant
    user = await storage.get_user_by_username(tenant, USERNAME)
    assert user is not None
    clients = sorted(await storage.list_clients(tenant), key=lambda c: c.client_id)
    grants = sorted(await storage.list_grants(tenant, user.user_id), key=lambda g: g.grant_id)
    return Snapshot(await storage.stats(tenant, server.clock()), clients, grants)


async def code_for(server: AS, client_id: str, **extra: str) -> tuple[str, str]:
    """Run the real login and consent pages; returns (code, verifier)."""
    verifier, challenge = pkce_pair()
    location = await authorize(
        server.http,
        server.authorize_url(client_id, challenge, **extra),
        username=USERNAME,
        password=PASSWORD,
    )
    query = parse_qs(urlsplit(location).query)
    assert "code" in query, location
    return query["code"][0], verifier


async def tokens_for(
    server: AS, client_id: str, basic: tuple[str, str] | None = None
) -> dict[str, Any]:
    """A fresh token response for ``client_id``: public, or with Basic ``(id, secret)``."""
    code, verifier = await code_for(server, client_id)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    if basic is None:
        response = await server.http.post("/token", data={**form, "client_id": client_id})
    else:
        response = await server.http.post("/token", data=form, auth=basic)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data
