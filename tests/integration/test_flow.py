"""The whole authorization-code flow through the real endpoints and forms, in-process."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ostiary.core.secrets import hash_secret
from tests.helpers.browserless import authorize
from tests.integration.conftest import (
    AS,
    ISSUER,
    PASSWORD,
    REDIRECT,
    RESOURCE,
    USERNAME,
    WITH_POSTGRES,
    pkce_pair,
)


def _query(location: str) -> dict[str, list[str]]:
    assert location.startswith(REDIRECT), location
    return parse_qs(urlsplit(location).query)


async def _through_pages(server: AS, client_id: str, challenge: str, **extra: str) -> str:
    """Authorize as the test user through the real pages; the final redirect's Location."""
    url = server.authorize_url(client_id, challenge, **extra)
    return await authorize(server.http, url, username=USERNAME, password=PASSWORD)


async def _code(server: AS, client_id: str, challenge: str) -> str:
    location = await _through_pages(server, client_id, challenge)
    query = _query(location)
    assert query["state"] == ["st4te"]
    assert query["iss"] == [ISSUER]
    assert set(query) == {"code", "state", "iss"}
    return query["code"][0]


async def test_register_authorize_token_refresh_revoke(auth_server: AS) -> None:
    client = await auth_server.register()
    verifier, challenge = pkce_pair()
    code = await _code(auth_server, client["client_id"], challenge)

    response = await auth_server.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": client["client_id"],
            "resource": RESOURCE,
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["scope"] == "mcp:read"
    assert tokens["expires_in"] == auth_server.settings.tokens.access_token_ttl

    refreshed = await auth_server.http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client["client_id"],
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert new["refresh_token"] != tokens["refresh_token"]

    revoked = await auth_server.http.post(
        "/revoke", data={"token": new["refresh_token"], "client_id": client["client_id"]}
    )
    assert revoked.status_code == 200
    stored = await auth_server.ctx.storage.get_refresh_token(
        auth_server.settings.storage.tenant, hash_secret(new["refresh_token"])
    )
    assert stored is not None
    assert stored.revoked_at is not None


async def test_replayed_code_revokes_the_grant(auth_server: AS) -> None:
    client = await auth_server.register()
    verifier, challenge = pkce_pair()
    code = await _code(auth_server, client["client_id"], challenge)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": client["client_id"],
    }
    first = await auth_server.http.post("/token", data=form)
    assert first.status_code == 200
    second = await auth_server.http.post("/token", data=form)
    assert second.status_code == 400
    assert second.json() == {
        "error": "invalid_grant",
        "error_description": (
            "authorization code was already used; tokens issued from it are revoked"
        ),
    }
    refresh = await auth_server.http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first.json()["refresh_token"],
            "client_id": client["client_id"],
        },
    )
    assert refresh.status_code == 400
    assert refresh.json()["error"] == "invalid_grant"


async def test_wrong_pkce_verifier_is_invalid_grant(auth_server: AS) -> None:
    client = await auth_server.register()
    _verifier, challenge = pkce_pair()
    other, _ = pkce_pair()
    code = await _code(auth_server, client["client_id"], challenge)
    response = await auth_server.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": other,
            "client_id": client["client_id"],
        },
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "code_verifier does not match the code_challenge",
    }


@WITH_POSTGRES
async def test_remembered_consent_redirects_at_once(auth_server: AS) -> None:
    """A confidential client: only it can redeem the code, so its consent is remembered."""
    client = await auth_server.register(token_endpoint_auth_method="client_secret_basic")
    _verifier, challenge = pkce_pair()
    await _code(auth_server, client["client_id"], challenge)
    response = await auth_server.http.get(auth_server.authorize_url(client["client_id"], challenge))
    # Signed in with a remembered consent: /authorize answers with the code itself.
    assert response.status_code == 303
    assert set(_query(response.headers["location"])) == {"code", "state", "iss"}
    # The helper follows the same path without a page in between.
    location = await authorize(
        auth_server.http,
        auth_server.authorize_url(client["client_id"], challenge),
        username=USERNAME,
        password="not used: the session and the consent are remembered",
    )
    assert set(_query(location)) == {"code", "state", "iss"}


async def _consent_again(server: AS, client: dict[str, Any], **extra: str) -> str:
    """Sign in and consent once, then authorize again; where the second request lands."""
    _verifier, challenge = pkce_pair()
    await _through_pages(server, client["client_id"], challenge, **extra)
    response = await server.http.get(server.authorize_url(client["client_id"], challenge, **extra))
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


async def _lands_without_page(server: AS, client_id: str, scope: str) -> bool:
    """Whether a signed-in user's authorization for ``scope`` returns a code at once."""
    _verifier, challenge = pkce_pair()
    response = await server.http.get(server.authorize_url(client_id, challenge, scope=scope))
    assert response.status_code == 303, response.text
    return bool(response.headers["location"].startswith(REDIRECT))


async def test_asking_for_fewer_scopes_keeps_the_remembered_consent(auth_server: AS) -> None:
    client = await auth_server.register(token_endpoint_auth_method="client_secret_basic")
    _verifier, challenge = pkce_pair()
    both = "mcp:read mcp:write"
    await _through_pages(auth_server, client["client_id"], challenge, scope=both)

    assert await _lands_without_page(auth_server, client["client_id"], "mcp:read")
    assert await _lands_without_page(auth_server, client["client_id"], both)
    tenant = auth_server.settings.storage.tenant
    user = await auth_server.ctx.storage.get_user_by_username(tenant, USERNAME)
    assert user is not None
    consent = await auth_server.ctx.storage.get_consent(
        tenant, user.user_id, client["client_id"], RESOURCE
    )
    assert consent is not None
    assert consent.scopes == ("mcp:read", "mcp:write")


async def test_approving_more_scopes_adds_to_the_remembered_consent(auth_server: AS) -> None:
    client = await auth_server.register(token_endpoint_auth_method="client_secret_basic")
    for scope in ("mcp:read", "mcp:write"):  # two decisions, each on the consent page
        _verifier, challenge = pkce_pair()
        location = await _through_pages(auth_server, client["client_id"], challenge, scope=scope)
        assert set(_query(location)) == {"code", "state", "iss"}

    assert await _lands_without_page(auth_server, client["client_id"], "mcp:read")
    assert await _lands_without_page(auth_server, client["client_id"], "mcp:read mcp:write")
    assert not await _lands_without_page(auth_server, client["client_id"], "offline_access")


@WITH_POSTGRES
async def test_unverified_public_client_is_asked_again_rfc8252_8_6(auth_server: AS) -> None:
    """By default a public client with a loopback redirect proves nothing: any local process
    knowing its client_id could collect codes, so the consent page is shown every time."""
    assert auth_server.settings.security.remember_consent_for_unverified_clients is False
    client = await auth_server.register()

    location = await _consent_again(auth_server, client)

    assert location.startswith(f"{ISSUER}/interaction/"), location
    page = await auth_server.http.get(location)
    assert page.status_code == 200
    assert 'name="decision"' in page.text
    assert await _lands_without_page(auth_server, client["client_id"], "mcp:read") is False
    # The approval is stored; the policy, not a missing record, brings the page back.
    tenant = auth_server.settings.storage.tenant
    user = await auth_server.ctx.storage.get_user_by_username(tenant, USERNAME)
    assert user is not None
    consent = await auth_server.ctx.storage.get_consent(
        tenant, user.user_id, client["client_id"], RESOURCE
    )
    assert consent is not None
    assert consent.scopes == ("mcp:read",)


@WITH_POSTGRES
@pytest.mark.as_settings(security={"remember_consent_for_unverified_clients": True})
async def test_unverified_public_client_keeps_consent_when_opted_in(auth_server: AS) -> None:
    """``security.remember_consent_for_unverified_clients=true`` restores the old shortcut."""
    client = await auth_server.register()

    location = await _consent_again(auth_server, client)

    assert set(_query(location)) == {"code", "state", "iss"}


@WITH_POSTGRES
async def test_confidential_client_keeps_remembered_consent_rfc8252_8_6(auth_server: AS) -> None:
    """A client that authenticates at the token endpoint: a copycat could not redeem the code."""
    client = await auth_server.register(token_endpoint_auth_method="client_secret_basic")

    location = await _consent_again(auth_server, client)

    assert set(_query(location)) == {"code", "state", "iss"}


@WITH_POSTGRES
async def test_public_client_with_https_redirect_keeps_remembered_consent(auth_server: AS) -> None:
    """Only the owner of an https redirect URI receives the code."""
    https = "https://app.example/callback"
    client = await auth_server.register(redirect_uris=[https], application_type="web")

    location = await _consent_again(auth_server, client, redirect_uri=https)

    assert location.startswith(f"{https}?"), location
    assert set(parse_qs(urlsplit(location).query)) == {"code", "state", "iss"}


async def test_metadata_document(auth_server: AS) -> None:
    response = await auth_server.http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == ISSUER
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["client_id_metadata_document_supported"] is True
    assert doc["token_endpoint_auth_methods_supported"] == [
        "none",
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]
    oidc = await auth_server.http.get("/.well-known/openid-configuration")
    assert oidc.json() == doc


async def test_self_registered_scope_does_not_cap_step_up(auth_server: AS) -> None:
    """MCP step-up: a DCR client registered with mcp:read may later ask for mcp:write."""
    client = await auth_server.register(scope="mcp:read")
    _verifier, challenge = pkce_pair()
    location = await _through_pages(
        auth_server, client["client_id"], challenge, scope="mcp:read mcp:write"
    )
    assert set(_query(location)) == {"code", "state", "iss"}


async def test_operator_registered_scope_is_a_ceiling(auth_server: AS) -> None:
    """A pre-registered client's scope is the operator's limit: more is invalid_scope."""
    client = await auth_server.register(scope="mcp:read")
    stored = await auth_server.ctx.storage.get_client(
        auth_server.settings.storage.tenant, client["client_id"]
    )
    assert stored is not None
    await auth_server.ctx.storage.save_client(replace(stored, source="static"))
    _verifier, challenge = pkce_pair()
    response = await auth_server.http.get(
        auth_server.authorize_url(client["client_id"], challenge, scope="mcp:read mcp:write")
    )
    assert response.status_code == 303
    assert _query(response.headers["location"]) == {
        "error": ["invalid_scope"],
        "error_description": ["scope not registered for this client: mcp:write"],
        "state": ["st4te"],
        "iss": [ISSUER],
    }
