"""DPoP at the authorization server, through the real endpoints (RFC 9449 §5, §6.2, §8, §10)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey

from ostiary.core.dpop import DPOP_ALGORITHMS
from tests.helpers.browserless import authorize
from tests.integration.conftest import AS, ISSUER, PASSWORD, REDIRECT, RESOURCE, USERNAME, pkce_pair
from tests.integration.dpop_support import b64, jwt_claims, proof, thumbprint, unsigned

TOKEN_URL = f"{ISSUER}/token"


def assert_error(response: httpx.Response, status: int, error: str, description: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": error, "error_description": description}
    assert response.headers["cache-control"] == "no-store"


async def _code(server: AS, client_id: str, **extra: str) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    url = server.authorize_url(client_id, challenge, scope="mcp:read", **extra)
    location = await authorize(server.http, url, username=USERNAME, password=PASSWORD)
    return parse_qs(urlsplit(location).query)["code"][0], verifier


async def _exchange(
    server: AS, client_id: str, code: str, verifier: str, dpop: str | list[str] | None
) -> httpx.Response:
    headers: list[tuple[str, str]] = []
    for value in [dpop] if isinstance(dpop, str) else dpop or []:
        headers.append(("DPoP", value))
    return await server.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": client_id,
            "resource": RESOURCE,
        },
        headers=headers,
    )


async def _refresh(
    server: AS, client_id: str, refresh_token: str, dpop: str | None
) -> httpx.Response:
    return await server.http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
        },
        headers={"DPoP": dpop} if dpop else {},
    )


def _proof(server: AS, key: Any, **kwargs: Any) -> str:
    return proof(key, "POST", TOKEN_URL, now=server.clock.now, **kwargs)


async def test_metadata_advertises_the_proof_algorithms(auth_server: AS) -> None:
    response = await auth_server.http.get("/.well-known/oauth-authorization-server")
    assert response.json()["dpop_signing_alg_values_supported"] == [
        "ES256",
        "EdDSA",
        "RS256",
        "PS256",
    ]


async def test_bound_code_token_and_refresh_with_the_same_key(auth_server: AS) -> None:
    """RFC 9449 §10 dpop_jkt → §5 DPoP token (cnf.jkt) → §5.0 refresh bound to the key."""
    client = (await auth_server.register())["client_id"]
    key = ECKey.generate_key("P-256")
    code, verifier = await _code(auth_server, client, dpop_jkt=thumbprint(key))

    response = await _exchange(auth_server, client, code, verifier, _proof(auth_server, key))
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "DPoP"
    assert jwt_claims(tokens["access_token"])["cnf"] == {"jkt": thumbprint(key)}

    thief = ECKey.generate_key("P-256")
    assert_error(
        await _refresh(auth_server, client, tokens["refresh_token"], None),
        400,
        "invalid_dpop_proof",
        "This refresh token is bound to a DPoP key: send a DPoP proof.",
    )
    assert_error(
        await _refresh(auth_server, client, tokens["refresh_token"], _proof(auth_server, thief)),
        400,
        "invalid_dpop_proof",
        "The DPoP proof key is not the key this refresh token is bound to.",
    )
    # The refused attempts rotated nothing: the owner of the key still refreshes.
    refreshed = await _refresh(
        auth_server, client, tokens["refresh_token"], _proof(auth_server, key)
    )
    assert refreshed.status_code == 200, refreshed.text
    again = refreshed.json()
    assert again["token_type"] == "DPoP"
    assert jwt_claims(again["access_token"])["cnf"] == {"jkt": thumbprint(key)}
    # The successor is bound too: a stolen refresh token is useless without the key.
    assert_error(
        await _refresh(auth_server, client, again["refresh_token"], _proof(auth_server, thief)),
        400,
        "invalid_dpop_proof",
        "The DPoP proof key is not the key this refresh token is bound to.",
    )


@pytest.mark.parametrize("with_proof", [False, True])
async def test_a_code_bound_by_dpop_jkt_needs_that_key(auth_server: AS, with_proof: bool) -> None:
    client = (await auth_server.register())["client_id"]
    key = ECKey.generate_key("P-256")
    code, verifier = await _code(auth_server, client, dpop_jkt=thumbprint(key))
    other = _proof(auth_server, ECKey.generate_key("P-256")) if with_proof else None
    response = await _exchange(auth_server, client, code, verifier, other)
    description = (
        "The DPoP proof key is not the key this authorization code is bound to."
        if with_proof
        else "This authorization code is bound to a DPoP key: send a DPoP proof."
    )
    assert_error(response, 400, "invalid_dpop_proof", description)


async def test_a_malformed_dpop_jkt_is_refused_at_the_authorization_endpoint(
    auth_server: AS,
) -> None:
    client = (await auth_server.register())["client_id"]
    _verifier, challenge = pkce_pair()
    url = auth_server.authorize_url(client, challenge, dpop_jkt="not a thumbprint")
    response = await auth_server.http.get(url)
    assert response.status_code == 303
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"]
    assert query["error_description"] == ["dpop_jkt must be a base64url SHA-256 JWK thumbprint"]


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        (ECKey.generate_key("P-256"), "ES256"),
        (OKPKey.generate_key("Ed25519"), "EdDSA"),
        (RSAKey.generate_key(2048), "RS256"),
        (RSAKey.generate_key(2048), "PS256"),
    ],
)
async def test_every_advertised_algorithm_binds_a_token(
    auth_server: AS, key: Any, alg: str
) -> None:
    assert alg in DPOP_ALGORITHMS
    client = (await auth_server.register())["client_id"]
    code, verifier = await _code(auth_server, client)
    response = await _exchange(
        auth_server, client, code, verifier, _proof(auth_server, key, alg=alg)
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    assert jwt_claims(response.json()["access_token"])["cnf"] == {"jkt": thumbprint(key)}


async def test_a_replayed_proof_is_refused(auth_server: AS) -> None:
    client = (await auth_server.register())["client_id"]
    key = ECKey.generate_key("P-256")
    spent = _proof(auth_server, key)
    code, verifier = await _code(auth_server, client)
    assert (await _exchange(auth_server, client, code, verifier, spent)).status_code == 200
    code, verifier = await _code(auth_server, client)
    response = await _exchange(auth_server, client, code, verifier, spent)
    assert_error(response, 400, "invalid_dpop_proof", "The DPoP proof was already used.")


KEY = ECKey.generate_key("P-256")
NOW = 1_900_000_000
BAD_PROOFS: list[tuple[str, Any, str]] = [
    (
        "wrong htm",
        lambda: proof(KEY, "GET", TOKEN_URL, now=NOW),
        "The DPoP proof htm does not match the request method.",
    ),
    (
        "wrong htu",
        lambda: proof(KEY, "POST", f"{ISSUER}/authorize", now=NOW),
        "The DPoP proof htu does not match the request URL.",
    ),
    (
        "htu of another host",
        lambda: proof(KEY, "POST", "http://evil.example/token", now=NOW),
        "The DPoP proof htu does not match the request URL.",
    ),
    (
        "stale iat",
        lambda: proof(KEY, "POST", TOKEN_URL, now=NOW - 61),
        "The DPoP proof is too old.",
    ),
    (
        "future iat",
        lambda: proof(KEY, "POST", TOKEN_URL, now=NOW + 6),
        "The DPoP proof iat is in the future.",
    ),
    (
        "no jti",
        lambda: proof(KEY, "POST", TOKEN_URL, now=NOW, claims={"jti": None}),
        "The DPoP proof jti is missing or too long.",
    ),
    (
        "typ JWT",
        lambda: proof(KEY, "POST", TOKEN_URL, now=NOW, header={"typ": "JWT"}),
        "The DPoP proof typ must be dpop+jwt.",
    ),
    (
        "no jwk",
        lambda: proof(KEY, "POST", TOKEN_URL, now=NOW, header={"jwk": None}),
        "The DPoP proof header must carry the public key as jwk.",
    ),
    (
        "private jwk",
        lambda: proof(KEY, "POST", TOKEN_URL, now=NOW, header={"jwk": KEY.as_dict(private=True)}),
        "The DPoP proof jwk must not contain a private key.",
    ),
    (
        "jwk of another key",
        lambda: proof(
            KEY,
            "POST",
            TOKEN_URL,
            now=NOW,
            header={"jwk": ECKey.generate_key("P-256").as_dict(private=False)},
        ),
        "The DPoP proof signature does not verify.",
    ),
    (
        "alg none",
        lambda: unsigned(
            {"typ": "dpop+jwt", "alg": "none", "jwk": KEY.as_dict(private=False)},
            {"jti": "x", "htm": "POST", "htu": TOKEN_URL, "iat": NOW},
        ),
        "The DPoP proof alg is not supported.",
    ),
    (
        "alg HS256",
        lambda: _hs256_proof(),
        "The DPoP proof alg is not supported.",
    ),
    ("not a JWT", lambda: "garbage", "The DPoP proof is not a signed JWT."),
]


def _hs256_proof() -> str:
    header = b64(b'{"typ":"dpop+jwt","alg":"HS256","jwk":{"kty":"oct","k":"c2VjcmV0"}}')
    claims = b64(f'{{"jti":"x","htm":"POST","htu":"{TOKEN_URL}","iat":{NOW}}}'.encode())
    signature = hmac.new(b"secret", f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64(signature)}"


@pytest.mark.parametrize(
    ("case", "make", "description"), BAD_PROOFS, ids=[c[0] for c in BAD_PROOFS]
)
async def test_a_bad_proof_is_refused_and_spends_nothing(
    auth_server: AS, case: str, make: Any, description: str
) -> None:
    assert auth_server.clock.now == NOW
    client = (await auth_server.register())["client_id"]
    code, verifier = await _code(auth_server, client)
    response = await _exchange(auth_server, client, code, verifier, make())
    assert_error(response, 400, "invalid_dpop_proof", description)
    # The proof was checked before the grant: the code is still good.
    ok = await _exchange(auth_server, client, code, verifier, None)
    assert ok.status_code == 200, f"{case}: {ok.text}"
    assert ok.json()["token_type"] == "Bearer"


async def test_two_dpop_headers_are_refused(auth_server: AS) -> None:
    client = (await auth_server.register())["client_id"]
    code, verifier = await _code(auth_server, client)
    key = ECKey.generate_key("P-256")
    response = await _exchange(
        auth_server, client, code, verifier, [_proof(auth_server, key), _proof(auth_server, key)]
    )
    assert_error(response, 400, "invalid_dpop_proof", "Send exactly one DPoP header.")


@pytest.mark.as_settings(tokens={"dpop_required": True})
async def test_dpop_required_refuses_a_request_without_proof(auth_server: AS) -> None:
    client = (await auth_server.register())["client_id"]
    code, verifier = await _code(auth_server, client)
    response = await _exchange(auth_server, client, code, verifier, None)
    assert_error(response, 400, "invalid_dpop_proof", "A DPoP proof is required for this client.")
    key = ECKey.generate_key("P-256")
    ok = await _exchange(auth_server, client, code, verifier, _proof(auth_server, key))
    assert ok.status_code == 200, ok.text


async def test_dpop_bound_access_tokens_metadata_requires_a_proof(auth_server: AS) -> None:
    """RFC 9449 §5.2: the client's registration metadata asks for DPoP on every request."""
    registered = await auth_server.register(dpop_bound_access_tokens=True)
    assert registered["dpop_bound_access_tokens"] is True
    client = registered["client_id"]
    code, verifier = await _code(auth_server, client)
    response = await _exchange(auth_server, client, code, verifier, None)
    assert_error(response, 400, "invalid_dpop_proof", "A DPoP proof is required for this client.")
    response = await auth_server.http.post(
        f"{ISSUER}/register",
        json={"redirect_uris": [REDIRECT], "dpop_bound_access_tokens": "yes"},
    )
    assert_error(
        response, 400, "invalid_client_metadata", "dpop_bound_access_tokens must be a boolean"
    )


@pytest.mark.as_settings(tokens={"dpop_nonce": True, "dpop_nonce_lifetime": 300})
async def test_server_nonce_is_demanded_then_accepted(auth_server: AS) -> None:
    """RFC 9449 §8: 400 use_dpop_nonce with DPoP-Nonce; the previous nonce stays valid."""
    client = (await auth_server.register())["client_id"]
    key = ECKey.generate_key("P-256")
    code, verifier = await _code(auth_server, client)
    response = await _exchange(auth_server, client, code, verifier, _proof(auth_server, key))
    assert_error(
        response,
        400,
        "use_dpop_nonce",
        "Resend the request with a DPoP proof carrying the server nonce.",
    )
    nonce = response.headers["dpop-nonce"]
    stale = _proof(auth_server, key, nonce="made-up")
    response = await _exchange(auth_server, client, code, verifier, stale)
    assert response.json()["error"] == "use_dpop_nonce"
    assert response.headers["dpop-nonce"] == nonce

    ok = await _exchange(auth_server, client, code, verifier, _proof(auth_server, key, nonce=nonce))
    assert ok.status_code == 200, ok.text
    assert ok.headers["dpop-nonce"] == nonce

    # One window later the nonce is the previous one: still accepted, a new one is handed out.
    auth_server.clock.now += 300
    refreshed = await _refresh(
        auth_server, client, ok.json()["refresh_token"], _proof(auth_server, key, nonce=nonce)
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.headers["dpop-nonce"] != nonce
    # Two windows later it is refused.
    auth_server.clock.now += 300
    response = await _refresh(
        auth_server,
        client,
        refreshed.json()["refresh_token"],
        _proof(auth_server, key, nonce=nonce),
    )
    assert response.json()["error"] == "use_dpop_nonce"


async def test_client_credentials_token_is_bound_and_introspection_reports_cnf(
    auth_server: AS,
) -> None:
    """RFC 9449 §6.2: introspection says token_type DPoP and carries cnf.jkt."""
    registered = await auth_server.register(
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["client_credentials"],
        redirect_uris=[],
    )
    auth = (registered["client_id"], registered["client_secret"])
    key = ECKey.generate_key("P-256")
    response = await auth_server.http.post(
        "/token",
        data={"grant_type": "client_credentials", "resource": RESOURCE},
        auth=auth,
        headers={"DPoP": _proof(auth_server, key)},
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    introspected = await auth_server.http.post(
        "/introspect", data={"token": response.json()["access_token"]}, auth=auth
    )
    body = introspected.json()
    assert (body["active"], body["token_type"]) == (True, "DPoP")
    assert body["cnf"] == {"jkt": thumbprint(key)}


async def test_a_confidential_client_refresh_token_is_not_key_bound(auth_server: AS) -> None:
    """RFC 9449 §5.0: only public clients' refresh tokens are bound to the DPoP key."""
    registered = await auth_server.register(token_endpoint_auth_method="client_secret_basic")
    auth = (registered["client_id"], registered["client_secret"])
    verifier, challenge = pkce_pair()
    url = auth_server.authorize_url(registered["client_id"], challenge, scope="mcp:read")
    location = await authorize(auth_server.http, url, username=USERNAME, password=PASSWORD)
    code = parse_qs(urlsplit(location).query)["code"][0]
    first = ECKey.generate_key("P-256")
    response = await auth_server.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "resource": RESOURCE,
        },
        auth=auth,
        headers={"DPoP": _proof(auth_server, first)},
    )
    assert response.json()["token_type"] == "DPoP"
    second = ECKey.generate_key("P-256")
    refreshed = await auth_server.http.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": response.json()["refresh_token"]},
        auth=auth,
        headers={"DPoP": _proof(auth_server, second)},
    )
    assert refreshed.status_code == 200, refreshed.text
    assert jwt_claims(refreshed.json()["access_token"])["cnf"] == {"jkt": thumbprint(second)}
