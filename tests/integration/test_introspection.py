"""Introspection (RFC 7662 §2) and revocation (RFC 7009 §2) against hostile callers and tokens.

Introspection answers only authenticated confidential clients, and says ``active: false`` for
anything it cannot vouch for: unknown, garbage, expired, revoked, rotated. Revocation answers
200 for tokens it does not know or that belong to someone else, and leaves those untouched.
Every request runs under :func:`guard`: a 5xx fails the test.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.integration.conftest import AS, ISSUER, RESOURCE
from tests.integration.test_hostile_helpers import (
    assert_oauth_error,
    guard,
    snapshot,
    tokens_for,
)

BASIC = 'Basic realm="ostiary"'
INACTIVE = {"active": False}


@pytest.fixture
def server(auth_server: AS) -> AS:
    return guard(auth_server)


async def _confidential(server: AS) -> tuple[str, str]:
    client = await server.register(token_endpoint_auth_method="client_secret_basic")
    return client["client_id"], client["client_secret"]


async def _introspect(server: AS, caller: tuple[str, str], token: str) -> dict[str, Any]:
    response = await server.http.post("/introspect", data={"token": token}, auth=caller)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    data: dict[str, Any] = response.json()
    return data


def _b64(data: object) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --- who may introspect -----------------------------------------------------------------------


async def test_public_client_is_refused(server: AS) -> None:
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    response = await server.http.post(
        "/introspect", data={"token": tokens["access_token"], "client_id": client["client_id"]}
    )
    assert_oauth_error(
        response, 401, "invalid_client", "introspection requires a confidential client"
    )


async def test_anonymous_caller_is_refused(server: AS) -> None:
    response = await server.http.post("/introspect", data={"token": "x"})
    assert_oauth_error(response, 400, "invalid_request", "client_id is required")


async def test_wrong_secret_is_refused_with_a_challenge(server: AS) -> None:
    caller_id, _secret = await _confidential(server)
    response = await server.http.post("/introspect", data={"token": "x"}, auth=(caller_id, "no"))
    assert_oauth_error(
        response, 401, "invalid_client", "client authentication failed", www_authenticate=BASIC
    )


@pytest.mark.parametrize(
    ("body", "content_type", "description"),
    [
        (b"", "application/x-www-form-urlencoded", "token is required"),
        (b"token=a&token=b", "application/x-www-form-urlencoded", "parameter token is repeated"),
        (
            b'{"token": "a"}',
            "application/json",
            "content type must be application/x-www-form-urlencoded",
        ),
    ],
)
async def test_malformed_introspection_request(
    server: AS, body: bytes, content_type: str, description: str
) -> None:
    caller = await _confidential(server)
    response = await server.http.post(
        "/introspect", content=body, headers={"content-type": content_type}, auth=caller
    )
    assert_oauth_error(response, 400, "invalid_request", description)


# --- what introspection says -----------------------------------------------------------------


async def test_live_access_token_is_active(server: AS) -> None:
    caller = await _confidential(server)
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    body = await _introspect(server, caller, tokens["access_token"])
    assert body["active"] is True
    assert body["token_type"] == "Bearer"
    assert body["client_id"] == client["client_id"]
    assert body["aud"] == RESOURCE
    assert body["iss"] == ISSUER
    assert body["scope"] == "mcp:read"
    assert body["exp"] == server.clock.now + server.settings.tokens.access_token_ttl
    user = await server.ctx.storage.get_user_by_username(server.settings.storage.tenant, "alice")
    assert user is not None
    assert body["sub"] == user.user_id


async def test_live_refresh_token_is_active(server: AS) -> None:
    caller = await _confidential(server)
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    body = await _introspect(server, caller, tokens["refresh_token"])
    assert body["active"] is True
    assert body["token_type"] == "refresh_token"
    assert body["client_id"] == client["client_id"]
    assert body["aud"] == RESOURCE


async def test_expired_access_token_is_inactive(server: AS) -> None:
    caller = await _confidential(server)
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    server.clock.now += server.settings.tokens.access_token_ttl
    assert await _introspect(server, caller, tokens["access_token"]) == INACTIVE


async def test_rotated_refresh_token_is_inactive(server: AS) -> None:
    caller = await _confidential(server)
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    rotated = await server.http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client["client_id"],
        },
    )
    assert rotated.status_code == 200
    assert await _introspect(server, caller, tokens["refresh_token"]) == INACTIVE
    assert (await _introspect(server, caller, rotated.json()["refresh_token"]))["active"] is True


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        "...",
        f"{_b64([])}.{_b64({})}.sig",
        f"{_b64('x')}.{_b64([])}.sig",
        f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{_b64({'iss': ISSUER})}.",
        f"{_b64({'alg': 'ES256', 'typ': 'at+jwt', 'kid': []})}.{_b64({})}.sig",
        f"{_b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': 'k'})}.{_b64({})}.c2ln",
        "é.é.é",
        "x" * 8000,
    ],
)
async def test_unknown_and_garbage_tokens_are_inactive(server: AS, token: str) -> None:
    caller = await _confidential(server)
    assert await _introspect(server, caller, token) == INACTIVE


async def test_token_signed_with_a_foreign_key_is_inactive(server: AS) -> None:
    from joserfc import jwt
    from joserfc.jwk import ECKey

    caller = await _confidential(server)
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    real_header = json.loads(base64.urlsafe_b64decode(tokens["access_token"].split(".")[0] + "=="))
    claims = json.loads(base64.urlsafe_b64decode(tokens["access_token"].split(".")[1] + "=="))
    forged = jwt.encode(real_header, claims, ECKey.generate_key("P-256"))
    assert await _introspect(server, caller, forged) == INACTIVE


# --- revocation (RFC 7009) --------------------------------------------------------------------


async def _revoke(server: AS, client_id: str, token: str, **extra: str) -> None:
    response = await server.http.post(
        "/revoke", data={"token": token, "client_id": client_id, **extra}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {}


async def test_unknown_token_revocation_is_200(server: AS) -> None:
    client = await server.register()
    before = await snapshot(server)
    await _revoke(server, client["client_id"], "no-such-token")
    await _revoke(server, client["client_id"], "a.b.c", token_type_hint="access_token")
    await _revoke(server, client["client_id"], "x", token_type_hint="made_up")
    assert await snapshot(server) == before


async def test_revocation_needs_a_token(server: AS) -> None:
    client = await server.register()
    response = await server.http.post("/revoke", data={"client_id": client["client_id"]})
    assert_oauth_error(response, 400, "invalid_request", "token is required")


async def test_revocation_needs_client_authentication(server: AS) -> None:
    caller_id, _secret = await _confidential(server)
    response = await server.http.post("/revoke", data={"token": "x"}, auth=(caller_id, "wrong"))
    assert_oauth_error(
        response, 401, "invalid_client", "client authentication failed", www_authenticate=BASIC
    )
    unknown = await server.http.post("/revoke", data={"token": "x", "client_id": "nobody"})
    assert_oauth_error(unknown, 401, "invalid_client", "unknown client")


async def test_other_clients_tokens_are_untouched(server: AS) -> None:
    caller = await _confidential(server)
    victim = await server.register()
    attacker = await server.register()
    tokens = await tokens_for(server, victim["client_id"])
    before = await snapshot(server)
    await _revoke(server, attacker["client_id"], tokens["refresh_token"])
    await _revoke(server, attacker["client_id"], tokens["access_token"])
    await _revoke(
        server, attacker["client_id"], tokens["access_token"], token_type_hint="access_token"
    )
    assert await snapshot(server) == before
    assert (await _introspect(server, caller, tokens["access_token"]))["active"] is True
    assert (await _introspect(server, caller, tokens["refresh_token"]))["active"] is True


async def test_revoking_the_access_token_keeps_the_grant(server: AS) -> None:
    caller = await _confidential(server)
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    await _revoke(server, client["client_id"], tokens["access_token"])
    assert await _introspect(server, caller, tokens["access_token"]) == INACTIVE
    snap = await snapshot(server)
    assert snap.stats.live_access_tokens == 0
    assert snap.stats.live_grants == 1
    assert (await _introspect(server, caller, tokens["refresh_token"]))["active"] is True


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token", "bogus"])
async def test_revoking_the_refresh_token_revokes_the_grant(server: AS, hint: str | None) -> None:
    """RFC 7009 §2.1: a wrong hint only widens the search; the token is still revoked."""
    caller = await _confidential(server)
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    extra = {"token_type_hint": hint} if hint else {}
    await _revoke(server, client["client_id"], tokens["refresh_token"], **extra)
    snap = await snapshot(server)
    assert snap.stats.live_grants == 0
    assert snap.stats.live_refresh_tokens == 0
    assert snap.stats.live_access_tokens == 0
    assert await _introspect(server, caller, tokens["access_token"]) == INACTIVE
    assert await _introspect(server, caller, tokens["refresh_token"]) == INACTIVE


async def test_confidential_client_revokes_its_own_tokens(server: AS) -> None:
    client_id, secret = await _confidential(server)
    tokens = await tokens_for(server, client_id, basic=(client_id, secret))
    response = await server.http.post(
        "/revoke", data={"token": tokens["refresh_token"]}, auth=(client_id, secret)
    )
    assert response.status_code == 200
    assert (await snapshot(server)).stats.live_grants == 0
