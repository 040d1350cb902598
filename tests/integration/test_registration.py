"""Dynamic client registration (RFC 7591 §3) and its management protocol (RFC 7592 §2).

Malformed bodies and unacceptable metadata get the RFC 7591 §3.2.2 error with an exact
description and store nothing; management calls need the client's own registration access
token (RFC 7592 §2.1, a bearer token, so a 401 carries ``WWW-Authenticate: Bearer``). Every
request runs under :func:`guard`: a 5xx fails the test.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from ostiary.core.secrets import hash_secret
from tests.integration.conftest import AS, ISSUER, REDIRECT
from tests.integration.test_hostile_helpers import (
    assert_oauth_error,
    guard,
    snapshot,
    tokens_for,
)

BEARER_INVALID = 'Bearer error="invalid_token"'
TOO_DEEP = "request body nests arrays and objects more than 64 levels deep"


@pytest.fixture
def server(auth_server: AS) -> AS:
    return guard(auth_server)


def _metadata(**extra: Any) -> dict[str, Any]:
    return {
        "client_name": "Test Client",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
        **extra,
    }


async def _rejected(server: AS, response: httpx.Response, error: str, description: str) -> None:
    assert_oauth_error(response, 400, error, description)
    assert (await snapshot(server)).stats.clients == 0


# --- RFC 7591 registration --------------------------------------------------------------------


async def test_native_public_client_with_a_loopback_redirect(server: AS) -> None:
    response = await server.http.post("/register", json=_metadata())
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {
        "client_id",
        "client_id_issued_at",
        "client_name",
        "redirect_uris",
        "token_endpoint_auth_method",
        "grant_types",
        "response_types",
        "application_type",
        "registration_access_token",
        "registration_client_uri",
    }
    assert body["client_id_issued_at"] == server.clock.now
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["registration_client_uri"] == f"{ISSUER}/register/{body['client_id']}"
    stored = await server.ctx.storage.get_client(server.settings.storage.tenant, body["client_id"])
    assert stored is not None
    # Only hashes at rest.
    assert stored.registration_access_token_hash == hash_secret(body["registration_access_token"])


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1/cb",
        "http://[::1]:8080/cb",
        "http://localhost:3000/cb",
        "com.example.app:/cb",
    ],
)
async def test_native_redirects_accepted(server: AS, redirect_uri: str) -> None:
    response = await server.http.post("/register", json=_metadata(redirect_uris=[redirect_uri]))
    assert response.status_code == 201, response.text
    assert response.json()["redirect_uris"] == [redirect_uri]


async def test_confidential_web_client_gets_a_secret_once(server: AS) -> None:
    response = await server.http.post(
        "/register",
        json=_metadata(
            application_type="web",
            redirect_uris=["https://app.example/cb"],
            token_endpoint_auth_method="client_secret_basic",
        ),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["client_secret_expires_at"] == 0
    stored = await server.ctx.storage.get_client(server.settings.storage.tenant, body["client_id"])
    assert stored is not None
    assert stored.client_secret_hash == hash_secret(body["client_secret"])
    read = await server.http.get(
        body["registration_client_uri"],
        headers={"authorization": f"Bearer {body['registration_access_token']}"},
    )
    assert read.status_code == 200
    assert "client_secret" not in read.json()
    assert "registration_access_token" not in read.json()


@pytest.mark.parametrize(
    ("metadata", "error", "description"),
    [
        (
            {"application_type": "web", "redirect_uris": ["http://app.example/cb"]},
            "invalid_redirect_uri",
            "web clients must use https redirect URIs",
        ),
        (
            {"application_type": "web", "redirect_uris": ["http://127.0.0.1:9999/cb"]},
            "invalid_redirect_uri",
            "web clients must use https redirect URIs",
        ),
        (
            {"redirect_uris": ["javascript:alert(1)"]},
            "invalid_redirect_uri",
            "redirect_uri scheme javascript is not allowed",
        ),
        (
            {"redirect_uris": ["data:text/html,hi"]},
            "invalid_redirect_uri",
            "redirect_uri scheme data is not allowed",
        ),
        (
            {"redirect_uris": ["http://127.0.0.1/cb#frag"]},
            "invalid_redirect_uri",
            "redirect_uri must not contain a fragment",
        ),
        (
            {"redirect_uris": ["/relative/cb"]},
            "invalid_redirect_uri",
            "redirect_uri must be an absolute URI",
        ),
        (
            {"redirect_uris": ["http://127.0.0.1/c b"]},
            "invalid_redirect_uri",
            "redirect_uri contains spaces, control or non-ASCII characters",
        ),
        (
            {"redirect_uris": []},
            "invalid_redirect_uri",
            "redirect_uris is required for the authorization_code grant",
        ),
        (
            {"redirect_uris": "http://127.0.0.1/cb"},
            "invalid_redirect_uri",
            "redirect_uris must be an array of strings",
        ),
        (
            {"redirect_uris": [1]},
            "invalid_redirect_uri",
            "redirect_uris must be an array of strings",
        ),
        ({"client_name": 5}, "invalid_client_metadata", "client_name must be a string"),
        (
            {"token_endpoint_auth_method": "client_secret_jwt"},
            "invalid_client_metadata",
            "unsupported token_endpoint_auth_method: client_secret_jwt",
        ),
        (
            {"grant_types": ["implicit"]},
            "invalid_client_metadata",
            "unsupported grant_type: implicit",
        ),
        ({"grant_types": []}, "invalid_client_metadata", "grant_types must not be empty"),
        (
            {"response_types": ["token"]},
            "invalid_client_metadata",
            "unsupported response_type: token",
        ),
        (
            {"grant_types": ["client_credentials"]},
            "invalid_client_metadata",
            "the client_credentials grant requires a confidential client",
        ),
        ({"scope": "admin"}, "invalid_client_metadata", "unsupported scope: admin"),
        (
            {"application_type": "desktop"},
            "invalid_client_metadata",
            "application_type must be native or web",
        ),
        (
            {"token_endpoint_auth_method": "private_key_jwt"},
            "invalid_client_metadata",
            "private_key_jwt requires jwks or jwks_uri",
        ),
        (
            {"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
            "invalid_client_metadata",
            "jwks keys must be EC, RSA or OKP public keys",
        ),
        (
            {"logo_uri": "javascript:alert(1)"},
            "invalid_client_metadata",
            "logo_uri must be an https URL",
        ),
        (
            {"contacts": "me@example.com"},
            "invalid_client_metadata",
            "contacts must be an array of strings",
        ),
        ({"client_name": "x" * 3000}, "invalid_client_metadata", "client_name is too long"),
    ],
)
async def test_unacceptable_metadata(
    server: AS, metadata: dict[str, Any], error: str, description: str
) -> None:
    response = await server.http.post("/register", json=_metadata(**metadata))
    await _rejected(server, response, error, description)


async def test_private_use_scheme_needs_a_reverse_domain(server: AS) -> None:
    response = await server.http.post("/register", json=_metadata(redirect_uris=["myapp:/cb"]))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"
    assert (await snapshot(server)).stats.clients == 0


@pytest.mark.parametrize(
    ("body", "description"),
    [
        (b"", "request body is not valid JSON"),
        (b"{", "request body is not valid JSON"),
        (b"{'a': 1}", "request body is not valid JSON"),
        (b"\xff\xfe{}", "request body is not valid JSON"),
        (b"[]", "request body must be a JSON object"),
        (b'[{"redirect_uris": []}]', "request body must be a JSON object"),
        (b'"text"', "request body must be a JSON object"),
        (b"null", "request body must be a JSON object"),
        (b"1" * 5000, "request body is not valid JSON"),
        (b"[" * 30000 + b"]" * 30000, TOO_DEEP),
        (b'{"a":' * 10000 + b"1" + b"}" * 10000, TOO_DEEP),
        (b'{"a":' * 1000 + b"1" + b"}" * 1000, TOO_DEEP),
        (b'{"a":' * 65 + b"1" + b"}" * 65, TOO_DEEP),
        (b"[" * 10000, TOO_DEEP),
        (b"[[]]]]", "request body is not valid JSON"),
        # Issue 10: a lone surrogate escape parsed, then failed to encode for storage (500).
        (b'{"client_name": "\\ud800"}', "request body contains an unpaired UTF-16 surrogate"),
        (b'{"contacts": ["\\udfff x"]}', "request body contains an unpaired UTF-16 surrogate"),
        (b'{"\\ud800": 1}', "request body contains an unpaired UTF-16 surrogate"),
        (
            b'{"client_name": "a", "client_name": "b"}',
            "request body repeats a member name in one object",
        ),
        (
            b'{"jwks": {"keys": [{"kty": "EC", "kty": "RSA"}]}}',
            "request body repeats a member name in one object",
        ),
        (b'{"client_name": NaN}', "request body is not valid JSON"),
        (b'{"a": 1} {"b": 2}', "request body is not valid JSON"),
    ],
)
async def test_bad_json(server: AS, body: bytes, description: str) -> None:
    response = await server.http.post(
        "/register", content=body, headers={"content-type": "application/json"}
    )
    await _rejected(server, response, "invalid_request", description)


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/json", "text/plain", None]
)
async def test_wrong_content_type(server: AS, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await server.http.post(
        "/register", content=json.dumps(_metadata()).encode(), headers=headers
    )
    await _rejected(server, response, "invalid_request", "content type must be application/json")


async def test_json_content_type_with_charset_is_fine(server: AS) -> None:
    response = await server.http.post(
        "/register",
        content=json.dumps(_metadata()).encode(),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201, response.text


async def test_oversized_registration_is_413(server: AS) -> None:
    body = _metadata(client_name="x" * (server.settings.server.max_body_bytes + 1))
    response = await server.http.post("/register", json=body)
    assert_oauth_error(response, 413, "invalid_request", "request body is too large")
    assert (await snapshot(server)).stats.clients == 0


async def test_registration_is_rate_limited(server: AS) -> None:
    limit = server.settings.security.rate_limit_per_minute
    for _ in range(limit):
        assert (await server.http.post("/register", json=_metadata())).status_code == 201
    response = await server.http.post("/register", json=_metadata())
    assert response.status_code == 429
    assert response.headers["retry-after"] == "60"
    assert response.json()["error"] == "slow_down"
    assert (await snapshot(server)).stats.clients == limit


# --- RFC 7592 management ----------------------------------------------------------------------


async def _registered(server: AS, **metadata: Any) -> dict[str, Any]:
    response = await server.http.post("/register", json=_metadata(**metadata))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_read_with_the_registration_access_token(server: AS) -> None:
    client = await _registered(server)
    response = await server.http.get(
        client["registration_client_uri"], headers=_bearer(client["registration_access_token"])
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    expected = {k: v for k, v in client.items() if k != "registration_access_token"}
    assert response.json() == expected


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_management_without_a_token(server: AS, method: str) -> None:
    client = await _registered(server)
    before = await snapshot(server)
    response = await server.http.request(
        method, client["registration_client_uri"], json=_metadata(client_id=client["client_id"])
    )
    assert_oauth_error(
        response,
        401,
        "invalid_token",
        "a registration access token is required",
        www_authenticate="Bearer",
    )
    assert await snapshot(server) == before


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize(
    ("header", "description", "challenge"),
    [
        ("Bearer wrong", "the registration access token is invalid", BEARER_INVALID),
        ("Basic Zm9vOmJhcg==", "a registration access token is required", "Bearer"),
        ("Bearer  ", "a registration access token is required", "Bearer"),
    ],
)
async def test_management_with_a_wrong_token(
    server: AS, method: str, header: str, description: str, challenge: str
) -> None:
    client = await _registered(server)
    before = await snapshot(server)
    response = await server.http.request(
        method,
        client["registration_client_uri"],
        json=_metadata(client_id=client["client_id"]),
        headers={"authorization": header},
    )
    assert_oauth_error(response, 401, "invalid_token", description, www_authenticate=challenge)
    assert await snapshot(server) == before


async def test_another_clients_token_cannot_manage(server: AS) -> None:
    victim = await _registered(server)
    attacker = await _registered(server)
    before = await snapshot(server)
    for method in ("GET", "PUT", "DELETE"):
        response = await server.http.request(
            method,
            victim["registration_client_uri"],
            json=_metadata(client_id=victim["client_id"], client_name="pwned"),
            headers=_bearer(attacker["registration_access_token"]),
        )
        assert_oauth_error(
            response,
            401,
            "invalid_token",
            "the registration access token is invalid",
            www_authenticate=BEARER_INVALID,
        )
    assert await snapshot(server) == before


async def test_unknown_client_looks_like_a_wrong_token(server: AS) -> None:
    """RFC 7592 §2.1: an unknown client and a bad token are indistinguishable."""
    client = await _registered(server)
    response = await server.http.get(
        f"{ISSUER}/register/nope", headers=_bearer(client["registration_access_token"])
    )
    assert_oauth_error(
        response,
        401,
        "invalid_token",
        "the registration access token is invalid",
        www_authenticate=BEARER_INVALID,
    )


async def test_update_replaces_the_metadata(server: AS) -> None:
    client = await _registered(server)
    response = await server.http.put(
        client["registration_client_uri"],
        json=_metadata(
            client_id=client["client_id"],
            client_name="Renamed",
            redirect_uris=["http://127.0.0.1:7777/new"],
        ),
        headers=_bearer(client["registration_access_token"]),
    )
    assert response.status_code == 200, response.text
    assert response.json()["client_name"] == "Renamed"
    assert response.json()["redirect_uris"] == ["http://127.0.0.1:7777/new"]
    stored = await server.ctx.storage.get_client(
        server.settings.storage.tenant, client["client_id"]
    )
    assert stored is not None
    assert stored.client_name == "Renamed"


@pytest.mark.parametrize(
    ("change", "error", "description"),
    [
        (
            {"client_id": None},
            "invalid_client_metadata",
            "client_id is required in an update request",
        ),
        (
            {"client_id": "other"},
            "invalid_client_metadata",
            "client_id does not match the registration",
        ),
        (
            {"redirect_uris": ["javascript:alert(1)"]},
            "invalid_redirect_uri",
            "redirect_uri scheme javascript is not allowed",
        ),
        (
            {"token_endpoint_auth_method": "client_secret_basic"},
            "invalid_client_metadata",
            "token_endpoint_auth_method cannot change to a secret method on update",
        ),
    ],
)
async def test_bad_update_changes_nothing(
    server: AS, change: dict[str, Any], error: str, description: str
) -> None:
    client = await _registered(server)
    before = await snapshot(server)
    body = {k: v for k, v in {**_metadata(client_id=client["client_id"]), **change}.items() if v}
    response = await server.http.put(
        client["registration_client_uri"],
        json=body,
        headers=_bearer(client["registration_access_token"]),
    )
    assert_oauth_error(response, 400, error, description)
    assert await snapshot(server) == before


async def test_update_with_bad_json_changes_nothing(server: AS) -> None:
    client = await _registered(server)
    before = await snapshot(server)
    response = await server.http.put(
        client["registration_client_uri"],
        content=b"[1, 2]",
        headers={
            **_bearer(client["registration_access_token"]),
            "content-type": "application/json",
        },
    )
    assert_oauth_error(response, 400, "invalid_request", "request body must be a JSON object")
    assert await snapshot(server) == before


async def test_delete_removes_the_client_and_its_grants(server: AS) -> None:
    client = await _registered(server)
    tokens = await tokens_for(server, client["client_id"])
    assert (await snapshot(server)).stats.live_grants == 1
    response = await server.http.delete(
        client["registration_client_uri"], headers=_bearer(client["registration_access_token"])
    )
    assert response.status_code == 204
    assert response.headers["cache-control"] == "no-store"
    after = await snapshot(server)
    assert after.stats.clients == 0
    assert after.stats.live_grants == 0
    assert after.stats.live_refresh_tokens == 0
    # The token is dead, the client is gone, and so is the management URL.
    again = await server.http.get(
        client["registration_client_uri"], headers=_bearer(client["registration_access_token"])
    )
    assert_oauth_error(
        again,
        401,
        "invalid_token",
        "the registration access token is invalid",
        www_authenticate=BEARER_INVALID,
    )
    refresh = await server.http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client["client_id"],
        },
    )
    assert_oauth_error(refresh, 401, "invalid_client", "unknown client")


async def test_registration_disabled_has_no_route(settings_factory: Any, tmp_path: Any) -> None:
    from ostiary.server.app import create_authorization_server

    settings = settings_factory(features={"dynamic_registration": False})
    app = create_authorization_server(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        response = await http.post("/register", json=_metadata())
    assert response.status_code == 404


async def test_jwks_with_an_unknown_curve(server: AS) -> None:
    jwks = {"keys": [{"kty": "EC", "crv": "P-999", "x": "AA", "y": "AA"}]}
    response = await server.http.post(
        "/register", json=_metadata(token_endpoint_auth_method="private_key_jwt", jwks=jwks)
    )
    await _rejected(
        server, response, "invalid_client_metadata", "jwks contains a key that cannot be parsed"
    )


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"client_uri": "https://[x"}, "invalid_client_metadata"),
        ({"logo_uri": "http://]"}, "invalid_client_metadata"),
        ({"tos_uri": "https://]x"}, "invalid_client_metadata"),
        ({"policy_uri": "https://[::1"}, "invalid_client_metadata"),
        (
            {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://["},
            "invalid_client_metadata",
        ),
        ({"redirect_uris": ["http://["]}, "invalid_redirect_uri"),
    ],
)
async def test_bracket_mangled_urls_in_metadata(
    server: AS, metadata: dict[str, Any], error: str
) -> None:
    response = await server.http.post("/register", json=_metadata(**metadata))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert (await snapshot(server)).stats.clients == 0
