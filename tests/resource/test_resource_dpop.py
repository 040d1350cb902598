"""DPoP at the resource server, end to end in-process (RFC 9449 §7, §9; RFC 9728 §2).

ostiary serve (the combined app: AS + demo MCP server) through httpx ASGITransport: real
registration, real pages, real tokens, real proofs. No mocks.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc.jwk import ECKey
from mcp.server.mcpserver import MCPServer

from ostiary.assembly.demo import create_combined_app
from ostiary.assembly.in_process import CombinedApp, local_jwt_verifier
from ostiary.client.auth import OAuthClientAuth
from ostiary.client.authorization import CallbackResult, callback_result_from_url
from ostiary.client.registration import ClientConfig
from ostiary.core.dpop_nonce import NonceSource
from ostiary.resource.dpop import DPoPOptions
from ostiary.resource.mcp_sdk import protect_mcp_app
from ostiary.resource.policy import ProtectionPolicy
from ostiary.settings import Settings
from tests.demo._support import PASSWORD, USERNAME, mcp_headers, rpc
from tests.demo.test_combined_app import start
from tests.helpers.browserless import authorize
from tests.integration.dpop_support import jwt_claims, proof, thumbprint

ISSUER = "http://127.0.0.1:8000"
MCP = f"{ISSUER}/mcp"
PRM = f"{ISSUER}/.well-known/oauth-protected-resource/mcp"
REDIRECT = "http://127.0.0.1:9/callback"
BARE_BEARER = f'Bearer scope="mcp:read", resource_metadata="{PRM}"'


@pytest.fixture
async def app(settings_factory: Callable[..., Settings]) -> CombinedApp:
    return create_combined_app(settings_factory(issuer=ISSUER))


@pytest.fixture
async def http(app: CombinedApp) -> AsyncIterator[httpx.AsyncClient]:
    async for client in start(app):
        yield client


def now() -> int:
    return int(time.time())


async def dpop_token(http: httpx.AsyncClient, key: ECKey) -> dict[str, Any]:
    """DCR, a code bound by dpop_jkt, and a DPoP token for the demo, by hand."""
    registered = await http.post(
        "/register",
        json={"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"},
    )
    client_id = registered.json()["client_id"]
    verifier = "v" * 64
    import base64
    import hashlib

    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "mcp:read mcp:write",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        "resource": MCP,
        "dpop_jkt": thumbprint(key),
    }
    location = await authorize(
        http, f"{ISSUER}/authorize?{urlencode(query)}", username=USERNAME, password=PASSWORD
    )
    code = parse_qs(urlsplit(location).query)["code"][0]
    response = await http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": MCP,
        },
        headers={"DPoP": proof(key, "POST", f"{ISSUER}/token", now=now())},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["token_type"] == "DPoP"
    return body


def dpop_headers(token: str, dpop: str | None) -> dict[str, str]:
    headers = mcp_headers(None)
    headers["authorization"] = f"DPoP {token}"
    if dpop is not None:
        headers["dpop"] = dpop
    return headers


def challenges(response: httpx.Response) -> list[str]:
    return response.headers.get_list("www-authenticate")


async def test_ostiary_client_discovery_bound_code_dpop_call_and_refresh(
    app: CombinedApp, http: httpx.AsyncClient
) -> None:
    """The must-show path: discovery → code bound by dpop_jkt → DPoP token (cnf.jkt) →
    tools/call with ``Authorization: DPoP`` → refresh with the same key."""
    seen: list[httpx.Request] = []
    logins: list[str] = []

    async def login(url: str) -> CallbackResult:
        logins.append(url)
        return callback_result_from_url(
            await authorize(http, url, username=USERNAME, password=PASSWORD)
        )

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    auth = OAuthClientAuth(
        ClientConfig(client_name="dpop e2e", redirect_uris=(REDIRECT,)), callback=login
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url=ISSUER, auth=auth, event_hooks={"request": [record]}
    ) as client:
        called = await client.post(
            "/mcp",
            json=rpc("tools/call", {"name": "echo", "arguments": {"text": "hi"}}),
            headers=mcp_headers(None),
        )
        assert called.status_code == 200, called.text
        assert called.json()["result"]["structuredContent"] == {"result": "hi"}
        signer = auth.flow.dpop
        jkt = signer.thumbprint()
        assert parse_qs(urlsplit(logins[0]).query)["dpop_jkt"] == [jkt]
        tokens = auth.flow.tokens
        assert tokens is not None
        assert tokens.token_type == "DPoP"
        assert jwt_claims(tokens.access_token)["cnf"] == {"jkt": jkt}
        last = seen[-1]
        assert last.headers["authorization"] == f"DPoP {tokens.access_token}"
        assert "dpop" in last.headers

        # Expire the access token: the next call refreshes with a proof of the same key.
        auth.flow.tokens = tokens.model_copy(update={"expires_at": time.time() - 1})
        again = await client.post(
            "/mcp",
            json=rpc("tools/call", {"name": "echo", "arguments": {"text": "again"}}),
            headers=mcp_headers(None),
        )
        assert again.status_code == 200, again.text
        refreshed = auth.flow.tokens
        assert refreshed is not None
        assert refreshed.access_token != tokens.access_token
        assert refreshed.refresh_token != tokens.refresh_token
        assert jwt_claims(refreshed.access_token)["cnf"] == {"jkt": jkt}
        refresh_requests = [
            r for r in seen if r.url.path == "/token" and b"refresh_token" in r.content
        ]
        assert len(refresh_requests) == 1
        assert "dpop" in refresh_requests[0].headers
    assert len(logins) == 1


async def test_a_dpop_token_and_its_proof_call_a_tool(http: httpx.AsyncClient) -> None:
    key = ECKey.generate_key("P-256")
    token = (await dpop_token(http, key))["access_token"]
    good = proof(key, "POST", MCP, now=now(), access_token=token)
    response = await http.post("/mcp", json=rpc("tools/list"), headers=dpop_headers(token, good))
    assert response.status_code == 200, response.text


async def _refused(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[int, dict[str, Any], list[str]]:
    response = await http.post("/mcp", json=rpc("tools/list"), headers=headers)
    return response.status_code, response.json(), challenges(response)


def _dpop_challenge(error: str, description: str) -> str:
    return (
        f'DPoP error="{error}", error_description="{description}", scope="mcp:read", '
        f'resource_metadata="{PRM}", algs="ES256 EdDSA RS256 PS256"'
    )


async def test_a_dpop_bound_token_presented_as_bearer_is_refused(http: httpx.AsyncClient) -> None:
    """RFC 9449 §7.2: without the key's proof a DPoP-bound token is worth nothing."""
    key = ECKey.generate_key("P-256")
    token = (await dpop_token(http, key))["access_token"]
    description = "The access token is DPoP-bound: send it with the DPoP scheme and a proof."
    assert await _refused(http, mcp_headers(token)) == (
        401,
        {"error": "invalid_token", "error_description": description},
        [
            f'Bearer error="invalid_token", error_description="{description}", '
            f'scope="mcp:read", resource_metadata="{PRM}"'
        ],
    )


async def test_a_plain_bearer_token_presented_with_the_dpop_scheme_is_refused(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        "/register", json={"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}
    )
    assert response.status_code == 201
    from tests.demo._support import obtain_token

    token = (await obtain_token(ISSUER, MCP, http=http)).access_token
    key = ECKey.generate_key("P-256")
    description = "The access token is not DPoP-bound: send it with the Bearer scheme."
    status, body, sent = await _refused(
        http, dpop_headers(token, proof(key, "POST", MCP, now=now(), access_token=token))
    )
    assert (status, body) == (401, {"error": "invalid_token", "error_description": description})
    assert sent == [BARE_BEARER, _dpop_challenge("invalid_token", description)]


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "another key",
        {"other_key": True},
        "invalid_token",
        "The DPoP proof key is not the key the access token is bound to.",
    ),
    (
        "wrong htm",
        {"method": "GET"},
        "invalid_dpop_proof",
        "The DPoP proof htm does not match the request method.",
    ),
    (
        "wrong htu",
        {"url": "http://evil.example/mcp"},
        "invalid_dpop_proof",
        "The DPoP proof htu does not match the request URL.",
    ),
    (
        "wrong path",
        {"url": f"{ISSUER}/other"},
        "invalid_dpop_proof",
        "The DPoP proof htu does not match the request URL.",
    ),
    (
        "wrong ath",
        {"ath_of": "another token"},
        "invalid_dpop_proof",
        "The DPoP proof ath does not match the access token.",
    ),
    ("stale iat", {"age": 61}, "invalid_dpop_proof", "The DPoP proof is too old."),
    ("no proof", {"none": True}, "invalid_dpop_proof", "Send exactly one DPoP header."),
]


@pytest.mark.parametrize(("case", "change", "error", "description"), BAD, ids=[b[0] for b in BAD])
async def test_a_bad_proof_is_refused_with_a_dpop_challenge(
    http: httpx.AsyncClient, case: str, change: dict[str, Any], error: str, description: str
) -> None:
    key = ECKey.generate_key("P-256")
    token = (await dpop_token(http, key))["access_token"]
    signer = ECKey.generate_key("P-256") if change.get("other_key") else key
    dpop = None
    if not change.get("none"):
        dpop = proof(
            signer,
            change.get("method", "POST"),
            change.get("url", MCP),
            now=now() - change.get("age", 0),
            access_token=change.get("ath_of", token),
        )
    status, body, sent = await _refused(http, dpop_headers(token, dpop))
    assert (status, body) == (401, {"error": error, "error_description": description}), case
    # The error goes in the DPoP challenge; the Bearer one stays bare (RFC 9449 §7.1).
    assert sent == [BARE_BEARER, _dpop_challenge(error, description)]


async def test_a_replayed_proof_is_refused(http: httpx.AsyncClient) -> None:
    key = ECKey.generate_key("P-256")
    token = (await dpop_token(http, key))["access_token"]
    once = proof(key, "POST", MCP, now=now(), access_token=token)
    first = await http.post("/mcp", json=rpc("tools/list"), headers=dpop_headers(token, once))
    assert first.status_code == 200, first.text
    status, body, _ = await _refused(http, dpop_headers(token, once))
    assert (status, body) == (
        401,
        {"error": "invalid_dpop_proof", "error_description": "The DPoP proof was already used."},
    )


async def test_an_advertising_rs_with_nonces(app: CombinedApp, http: httpx.AsyncClient) -> None:
    """RFC 9449 §7.1 challenges next to Bearer on every 401; §9 resource server nonces."""
    ctx = app.state.ctx
    nonces = NonceSource(b"n" * 32, lifetime=300)
    mcp = MCPServer("dpop")

    @mcp.tool()
    def echo(text: str) -> str:
        """Echo."""
        return text

    rs = protect_mcp_app(
        mcp,
        resource=MCP,
        issuer=ISSUER,
        verifier=local_jwt_verifier(ctx, MCP),
        policy=ProtectionPolicy(
            required_scopes=["mcp:read"],
            dpop=DPoPOptions(MCP, nonces=nonces),
        ),
        streamable_http_options={"stateless_http": True, "json_response": True},
    )
    key = ECKey.generate_key("P-256")
    token = (await dpop_token(http, key))["access_token"]
    async with (
        rs.router.lifespan_context(rs),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=rs), base_url=ISSUER) as client,
    ):
        metadata = (await client.get("/.well-known/oauth-protected-resource/mcp")).json()
        assert metadata["dpop_signing_alg_values_supported"] == ["ES256", "EdDSA", "RS256", "PS256"]
        bare = await client.post("/mcp", json=rpc("tools/list"), headers=mcp_headers(None))
        assert bare.status_code == 401
        assert challenges(bare) == [
            BARE_BEARER,
            f'DPoP scope="mcp:read", resource_metadata="{PRM}", algs="ES256 EdDSA RS256 PS256"',
        ]
        first = proof(key, "POST", MCP, now=now(), access_token=token)
        demanded = await client.post(
            "/mcp", json=rpc("tools/list"), headers=dpop_headers(token, first)
        )
        description = "Resend the request with a DPoP proof carrying the server nonce."
        assert demanded.status_code == 401
        assert demanded.json() == {"error": "use_dpop_nonce", "error_description": description}
        assert demanded.headers["dpop-nonce"] == nonces.current(now())
        assert challenges(demanded) == [BARE_BEARER, _dpop_challenge("use_dpop_nonce", description)]
        with_nonce = proof(
            key, "POST", MCP, now=now(), access_token=token, nonce=demanded.headers["dpop-nonce"]
        )
        ok = await client.post(
            "/mcp", json=rpc("tools/list"), headers=dpop_headers(token, with_nonce)
        )
        assert ok.status_code == 200, ok.text
