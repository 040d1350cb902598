"""Token verifiers against real signed JWTs, a real JWKS and a real RFC 7662 endpoint."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest
from joserfc.errors import SecurityWarning

from ostiary.client import discovery as client_discovery
from ostiary.core import resource as core_resource
from ostiary.core import resource_uri as shared
from ostiary.errors import (
    DiscoveryError,
    InvalidTargetError,
    InvalidTokenError,
    TemporarilyUnavailableError,
)
from ostiary.resource.verifiers import (
    IntrospectionVerifier,
    JWTVerifier,
    Principal,
    TokenVerifier,
    canonical_resource,
)
from tests.resource._rs_support import (
    INTROSPECT_URI,
    ISSUER,
    JWKS_URI,
    RESOURCE,
    RS_CLIENT_ID,
    RS_CLIENT_SECRET,
    AuthorizationServerDouble,
    SigningKey,
    claims,
    mint,
    unsigned,
)


@pytest.fixture(scope="module")
def es256() -> SigningKey:
    return SigningKey.generate("ES256", kid="es-1")


@pytest.fixture
def auth_server(es256: SigningKey) -> AuthorizationServerDouble:
    return AuthorizationServerDouble(keys=[es256])


@pytest.fixture
async def verifier(auth_server: AuthorizationServerDouble) -> AsyncIterator[JWTVerifier]:
    async with auth_server.client() as http:
        yield JWTVerifier(ISSUER, RESOURCE, JWKS_URI, http_client=http)


async def test_valid_token_gives_principal(verifier: JWTVerifier, es256: SigningKey) -> None:
    principal = await verifier.verify(mint(es256))
    assert principal.subject == "user-123"
    assert principal.client_id == "client-abc"
    assert principal.scopes == ("mcp:read", "mcp:write")
    assert principal.audience == (RESOURCE,)
    assert principal.issuer == ISSUER
    assert principal.token_id == "jti-1"
    assert principal.claims["sub"] == "user-123"
    assert principal.is_authenticated
    assert principal.display_name == "user-123"
    assert isinstance(verifier, TokenVerifier)


async def test_token_for_another_resource_is_refused(
    verifier: JWTVerifier, es256: SigningKey
) -> None:
    """RFC 8707 §2 / MCP: audience binding is mandatory."""
    with pytest.raises(InvalidTokenError) as info:
        await verifier.verify(mint(es256, aud="https://other.example.com/mcp"))
    assert info.value.description == "The access token was issued for another resource."


async def test_token_without_audience_is_refused(verifier: JWTVerifier, es256: SigningKey) -> None:
    with pytest.raises(InvalidTokenError):
        await verifier.verify(mint(es256, aud=None))


async def test_audience_may_be_a_list(verifier: JWTVerifier, es256: SigningKey) -> None:
    aud = [RESOURCE, "https://other.example.com"]
    assert (await verifier.verify(mint(es256, aud=aud))).subject == "user-123"


@pytest.mark.parametrize(
    "aud",
    [
        "https://mcp.example.com/mcp/",
        [f"{RESOURCE}/"],
        "HTTPS://MCP.EXAMPLE.COM/mcp",
        "https://mcp.example.com:443/mcp",
        "https://mcp.example.com:443/mcp/",
    ],
)
async def test_audience_is_compared_exactly(
    verifier: JWTVerifier, es256: SigningKey, aud: object
) -> None:
    """RFC 9068 §4: ``aud`` must name this resource; it is not normalised (a trailing slash,
    another case or an explicit default port is another spelling, so another audience)."""
    with pytest.raises(InvalidTokenError) as info:
        await verifier.verify(mint(es256, aud=aud))
    assert info.value.status_code == 401
    assert info.value.error == "invalid_token"
    assert info.value.description == "The access token was issued for another resource."


@pytest.mark.parametrize(
    "configured",
    [RESOURCE, "HTTPS://MCP.Example.COM/mcp", "https://mcp.example.com:443/mcp"],
)
async def test_configured_audience_is_canonicalised(
    auth_server: AuthorizationServerDouble, es256: SigningKey, configured: str
) -> None:
    """The canonical form applies to the configuration: any spelling of the same URI there
    accepts the token whose ``aud`` is the canonical one."""
    async with auth_server.client() as http:
        verifier = JWTVerifier(ISSUER, configured, JWKS_URI, http_client=http)
        assert (await verifier.verify(mint(es256, aud=RESOURCE))).subject == "user-123"
        with pytest.raises(InvalidTokenError):
            await verifier.verify(mint(es256, aud=f"{RESOURCE}/"))


async def test_non_uri_audience_is_compared_as_configured(
    auth_server: AuthorizationServerDouble, es256: SigningKey
) -> None:
    async with auth_server.client() as http:
        verifier = JWTVerifier(ISSUER, "api-identifier", JWKS_URI, http_client=http)
        assert (await verifier.verify(mint(es256, aud="api-identifier"))).subject == "user-123"
        with pytest.raises(InvalidTokenError):
            await verifier.verify(mint(es256, aud="API-identifier"))


async def test_audience_path_must_match(verifier: JWTVerifier, es256: SigningKey) -> None:
    with pytest.raises(InvalidTokenError):
        await verifier.verify(mint(es256, aud="https://mcp.example.com/MCP"))


async def test_expired_token_is_refused(verifier: JWTVerifier, es256: SigningKey) -> None:
    now = int(time.time())
    with pytest.raises(InvalidTokenError) as info:
        await verifier.verify(mint(es256, iat=now - 600, exp=now - 31))
    assert info.value.description == "The access token expired."


async def test_expiry_within_leeway_is_accepted(verifier: JWTVerifier, es256: SigningKey) -> None:
    now = int(time.time())
    assert await verifier.verify(mint(es256, iat=now - 600, exp=now - 10))


async def test_not_yet_valid_token_is_refused(verifier: JWTVerifier, es256: SigningKey) -> None:
    with pytest.raises(InvalidTokenError) as info:
        await verifier.verify(mint(es256, nbf=int(time.time()) + 120))
    assert info.value.description == "The access token is not valid yet."


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "https://auth.example.com/"},
        {"iss": "https://evil.example.com"},
        {"sub": None},
        {"client_id": None},
        {"exp": None},
        {"exp": "tomorrow"},
        {"iat": True},
    ],
)
async def test_claim_violations_are_refused(
    verifier: JWTVerifier, es256: SigningKey, overrides: dict[str, Any]
) -> None:
    with pytest.raises(InvalidTokenError):
        await verifier.verify(mint(es256, **overrides))


@pytest.mark.parametrize("typ", [None, "JWT", "dpop+jwt"])
async def test_typ_must_be_at_jwt(
    verifier: JWTVerifier, es256: SigningKey, typ: str | None
) -> None:
    """RFC 9068 §4: an ID token or other JWT must not pass as an access token."""
    with pytest.raises(InvalidTokenError):
        await verifier.verify(mint(es256, header={"typ": typ}))


async def test_typ_media_type_form_is_accepted(verifier: JWTVerifier, es256: SigningKey) -> None:
    assert await verifier.verify(mint(es256, header={"typ": "application/at+JWT"}))


async def test_alg_none_is_refused(verifier: JWTVerifier) -> None:
    token = unsigned({"alg": "none", "typ": "at+jwt", "kid": "es-1"}, claims())
    with pytest.raises(InvalidTokenError):
        await verifier.verify(token)


async def test_hs256_key_confusion_is_refused(verifier: JWTVerifier, es256: SigningKey) -> None:
    """RFC 8725 §2.1: an HMAC over the public key must not verify."""
    import hashlib
    import hmac

    secret = es256.key.as_pem(private=False)
    header_body = unsigned({"alg": "HS256", "typ": "at+jwt", "kid": "es-1"}, claims())
    signing_input = header_body.rsplit(".", 1)[0]
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    token = unsigned({"alg": "HS256", "typ": "at+jwt", "kid": "es-1"}, claims(), mac)
    with pytest.raises(InvalidTokenError):
        await verifier.verify(token)


@pytest.mark.parametrize("algorithms", [("HS256",), ("ES256", "none"), (), ("XX1",)])
def test_symmetric_or_unknown_algorithms_cannot_be_configured(algorithms: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        JWTVerifier(ISSUER, RESOURCE, JWKS_URI, algorithms=algorithms)


async def test_algorithm_outside_allow_list_is_refused(
    auth_server: AuthorizationServerDouble,
) -> None:
    rsa = SigningKey.generate("RS256", kid="rsa-1")
    auth_server.keys.append(rsa)
    async with auth_server.client() as http:
        verifier = JWTVerifier(ISSUER, RESOURCE, JWKS_URI, http_client=http, algorithms=["ES256"])
        with pytest.raises(InvalidTokenError):
            await verifier.verify(mint(rsa))


async def test_tampered_payload_is_refused(verifier: JWTVerifier, es256: SigningKey) -> None:
    header, _, signature = mint(es256).split(".")
    forged_body = unsigned({}, claims(sub="admin")).split(".")[1]
    with pytest.raises(InvalidTokenError):
        await verifier.verify(f"{header}.{forged_body}.{signature}")


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d.e", "!!.!!.!!", "e30.e30.e30"])
async def test_garbage_is_invalid_token(verifier: JWTVerifier, token: str) -> None:
    with pytest.raises(InvalidTokenError):
        await verifier.verify(token)


async def test_crit_header_is_refused(verifier: JWTVerifier, es256: SigningKey) -> None:
    with pytest.raises(InvalidTokenError):
        await verifier.verify(unsigned({"alg": "ES256", "typ": "at+jwt", "crit": ["x"]}, claims()))


@pytest.mark.parametrize("alg", ["EdDSA", "Ed25519", "RS256"])
async def test_other_asymmetric_algorithms(
    auth_server: AuthorizationServerDouble, alg: str
) -> None:
    key = SigningKey.generate(alg)
    auth_server.keys.append(key)
    with warnings.catch_warnings():  # joserfc flags the JOSE "EdDSA" name (RFC 9864)
        warnings.simplefilter("ignore", SecurityWarning)
        token = mint(key)
    async with auth_server.client() as http:
        verifier = JWTVerifier(ISSUER, RESOURCE, JWKS_URI, http_client=http)
        assert (await verifier.verify(token)).subject == "user-123"


async def test_token_without_kid_tries_every_key(verifier: JWTVerifier, es256: SigningKey) -> None:
    assert await verifier.verify(mint(es256, header={"kid": None}))


async def test_jwks_is_fetched_once_and_cached(
    verifier: JWTVerifier, es256: SigningKey, auth_server: AuthorizationServerDouble
) -> None:
    for n in range(5):
        await verifier.verify(mint(es256, jti=f"j{n}"))
    assert auth_server.jwks_hits == 1


async def test_unknown_kid_refetches_for_key_rollover(
    auth_server: AuthorizationServerDouble, es256: SigningKey
) -> None:
    async with auth_server.client() as http:
        verifier = JWTVerifier(ISSUER, RESOURCE, JWKS_URI, http_client=http, min_refetch_interval=0)
        await verifier.verify(mint(es256))
        rolled = SigningKey.generate("ES256", kid="es-2")
        auth_server.keys.append(rolled)
        assert (await verifier.verify(mint(rolled))).subject == "user-123"
    assert auth_server.jwks_hits == 2


async def test_unknown_kid_refetch_is_rate_limited(
    verifier: JWTVerifier, es256: SigningKey, auth_server: AuthorizationServerDouble
) -> None:
    await verifier.verify(mint(es256))
    stranger = SigningKey.generate("ES256", kid="unknown")
    for _ in range(3):
        with pytest.raises(InvalidTokenError):
            await verifier.verify(mint(stranger))
    assert auth_server.jwks_hits == 1


async def test_unreachable_jwks_is_temporarily_unavailable(
    auth_server: AuthorizationServerDouble, es256: SigningKey
) -> None:
    auth_server.jwks_status = 500
    async with auth_server.client() as http:
        verifier = JWTVerifier(ISSUER, RESOURCE, JWKS_URI, http_client=http)
        for _ in range(2):
            with pytest.raises(TemporarilyUnavailableError):
                await verifier.verify(mint(es256))
    assert auth_server.jwks_hits == 1  # the failure is rate limited too


async def test_refresh_reports_success(verifier: JWTVerifier) -> None:
    assert await verifier.refresh() is True


async def test_verified_token_is_cached_until_expiry(
    auth_server: AuthorizationServerDouble, es256: SigningKey
) -> None:
    now = [time.time()]
    async with auth_server.client() as http:
        verifier = JWTVerifier(ISSUER, RESOURCE, JWKS_URI, http_client=http, clock=lambda: now[0])
        token = mint(es256, exp=int(now[0]) + 60)
        first = await verifier.verify(token)
        assert await verifier.verify(token) is first
        now[0] += 95
        with pytest.raises(InvalidTokenError):
            await verifier.verify(token)


def test_canonical_resource_is_the_one_every_layer_uses() -> None:
    """One rule (core/resource_uri.py) for the AS, the resource server and the client."""
    assert canonical_resource is core_resource.canonical_resource
    assert canonical_resource is shared.canonical_resource
    assert canonical_resource("HTTPS://A.example:443/mcp/") == "https://a.example/mcp/"
    assert canonical_resource("http://[::1]:8000/mcp") == "http://[::1]:8000/mcp"
    assert canonical_resource("https://a.example/mcp?x=1") == "https://a.example/mcp?x=1"
    for url in ("HTTPS://A.example:443/mcp/", "https://A.example/MCP?q=1", "http://[::1]:80/"):
        assert client_discovery.canonical_resource(url) == canonical_resource(url)
    with pytest.raises(InvalidTargetError):
        canonical_resource("http://x:99999/")
    with pytest.raises(DiscoveryError, match="resource must not contain a fragment"):
        client_discovery.canonical_resource("https://a.example/mcp#f")


# --- RFC 7662 introspection -------------------------------------------------------------


def active(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {"active": True, **claims()}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
async def introspector(
    auth_server: AuthorizationServerDouble,
) -> AsyncIterator[IntrospectionVerifier]:
    async with auth_server.client() as http:
        yield IntrospectionVerifier(
            INTROSPECT_URI,
            RS_CLIENT_ID,
            RS_CLIENT_SECRET,
            RESOURCE,
            issuer=ISSUER,
            http_client=http,
        )


async def test_active_token_gives_principal(
    introspector: IntrospectionVerifier, auth_server: AuthorizationServerDouble
) -> None:
    auth_server.introspection["opaque-1"] = active()
    principal = await introspector.verify("opaque-1")
    assert (principal.subject, principal.client_id, principal.scopes) == (
        "user-123",
        "client-abc",
        ("mcp:read", "mcp:write"),
    )


@pytest.mark.parametrize(
    "body",
    [
        {"active": False},
        {"active": "true", "aud": RESOURCE, "client_id": "c"},
        active(aud="https://other.example.com/mcp"),
        active(aud=f"{RESOURCE}/"),
        active(aud="HTTPS://MCP.EXAMPLE.COM/mcp"),
        active(aud=None),
        active(iss="https://evil.example.com"),
        active(client_id=None),
        active(exp=int(time.time()) - 120),
    ],
)
async def test_introspection_refusals(
    introspector: IntrospectionVerifier,
    auth_server: AuthorizationServerDouble,
    body: dict[str, object],
) -> None:
    auth_server.introspection["t"] = body
    with pytest.raises(InvalidTokenError):
        await introspector.verify("t")


async def test_introspection_answers_are_cached(
    introspector: IntrospectionVerifier, auth_server: AuthorizationServerDouble
) -> None:
    auth_server.introspection["t"] = active()
    for _ in range(3):
        await introspector.verify("t")
    with pytest.raises(InvalidTokenError):
        await introspector.verify("unknown")
    with pytest.raises(InvalidTokenError):
        await introspector.verify("unknown")
    assert auth_server.introspection_hits == 2


async def test_cache_never_outlives_token_expiry(auth_server: AuthorizationServerDouble) -> None:
    now = [time.time()]
    auth_server.introspection["t"] = active(exp=int(now[0]) + 5)
    async with auth_server.client() as http:
        verifier = IntrospectionVerifier(
            INTROSPECT_URI,
            RS_CLIENT_ID,
            RS_CLIENT_SECRET,
            RESOURCE,
            http_client=http,
            leeway=0,
            clock=lambda: now[0],
        )
        await verifier.verify("t")
        now[0] += 6
        with pytest.raises(InvalidTokenError):
            await verifier.verify("t")
    assert auth_server.introspection_hits == 2


async def test_revocation_is_immediate_without_cache(
    auth_server: AuthorizationServerDouble,
) -> None:
    auth_server.introspection["t"] = active()
    async with auth_server.client() as http:
        verifier = IntrospectionVerifier(
            INTROSPECT_URI, RS_CLIENT_ID, RS_CLIENT_SECRET, RESOURCE, http_client=http, cache_ttl=0
        )
        await verifier.verify("t")
        auth_server.introspection["t"] = {"active": False}
        with pytest.raises(InvalidTokenError):
            await verifier.verify("t")


async def test_cache_is_bounded(auth_server: AuthorizationServerDouble) -> None:
    async with auth_server.client() as http:
        verifier = IntrospectionVerifier(
            INTROSPECT_URI,
            RS_CLIENT_ID,
            RS_CLIENT_SECRET,
            RESOURCE,
            http_client=http,
            max_entries=2,
        )
        for n in range(3):
            auth_server.introspection[f"t{n}"] = active()
            await verifier.verify(f"t{n}")
        await verifier.verify("t0")  # evicted, asked again
    assert auth_server.introspection_hits == 4


async def test_cache_keys_are_hashes_not_tokens(
    introspector: IntrospectionVerifier, auth_server: AuthorizationServerDouble
) -> None:
    auth_server.introspection["secret-token"] = active()
    await introspector.verify("secret-token")
    assert all(
        isinstance(k, bytes) and b"secret-token" not in k for k in introspector._cache._items
    )


async def test_wrong_rs_credentials_are_temporarily_unavailable(
    auth_server: AuthorizationServerDouble,
) -> None:
    async with auth_server.client() as http:
        verifier = IntrospectionVerifier(
            INTROSPECT_URI, RS_CLIENT_ID, "wrong", RESOURCE, http_client=http
        )
        with pytest.raises(TemporarilyUnavailableError):
            await verifier.verify("t")


async def test_unreachable_introspection_endpoint() -> None:
    verifier = IntrospectionVerifier("http://127.0.0.1:9/introspect", "a", "b", RESOURCE)
    with pytest.raises(TemporarilyUnavailableError):
        await verifier.verify("t")


def test_principal_scope_helpers() -> None:
    principal = Principal("s", "c", ("a", "b"), (RESOURCE,))
    assert principal.has_scopes(["a"])
    assert not principal.has_scopes(["a", "z"])
    assert principal.identity == "s"


async def test_concurrent_verifications_share_one_introspection(
    introspector: IntrospectionVerifier, auth_server: AuthorizationServerDouble
) -> None:
    auth_server.introspection["t"] = active()
    results = await asyncio.gather(*(introspector.verify("t") for _ in range(20)))
    assert {p.subject for p in results} == {"user-123"}
    assert auth_server.introspection_hits == 1


async def test_concurrent_refusals_share_one_introspection(
    introspector: IntrospectionVerifier, auth_server: AuthorizationServerDouble
) -> None:
    results = await asyncio.gather(
        *(introspector.verify("nope") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, InvalidTokenError) for r in results)
    assert auth_server.introspection_hits == 1


# --- JWKS edge cases ------------------------------------------------------------------------


async def test_odd_jwks_entries_are_skipped_and_kidless_keys_still_verify(
    auth_server: AuthorizationServerDouble, es256: SigningKey
) -> None:
    kidless = {k: v for k, v in es256.public_jwk().items() if k != "kid"}
    auth_server.jwks_override = {
        "keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {**es256.public_jwk(), "use": "enc", "kid": "enc"},
            {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "kid": "broken"},
            "not a key",
            kidless,
        ]
    }
    async with auth_server.client() as http:
        verifier = JWTVerifier(ISSUER, RESOURCE, JWKS_URI, http_client=http)
        assert (await verifier.verify(mint(es256, header={"kid": "not-published"}))).subject
        stranger = SigningKey.generate("ES256", kid="hmac")
        with pytest.raises(InvalidTokenError):
            await verifier.verify(mint(stranger))


@pytest.mark.parametrize("document", [[], {"keys": "nope"}, "text"])
async def test_malformed_jwks_is_temporarily_unavailable(
    auth_server: AuthorizationServerDouble, es256: SigningKey, document: object
) -> None:
    auth_server.jwks_override = document
    async with auth_server.client() as http:
        verifier = JWTVerifier(ISSUER, RESOURCE, JWKS_URI, http_client=http)
        with pytest.raises(TemporarilyUnavailableError):
            await verifier.verify(mint(es256))


async def test_withdrawn_key_stops_verifying_after_jwks_max_age(
    auth_server: AuthorizationServerDouble, es256: SigningKey
) -> None:
    async with auth_server.client() as http:
        verifier = JWTVerifier(
            ISSUER,
            RESOURCE,
            JWKS_URI,
            http_client=http,
            jwks_max_age=0,
            min_refetch_interval=0,
            cache_size=0,
        )
        await verifier.verify(mint(es256))
        auth_server.keys.clear()
        with pytest.raises(InvalidTokenError):
            await verifier.verify(mint(es256, jti="again"))


async def test_stale_jwks_is_kept_when_the_refresh_fails(
    auth_server: AuthorizationServerDouble, es256: SigningKey
) -> None:
    async with auth_server.client() as http:
        verifier = JWTVerifier(
            ISSUER, RESOURCE, JWKS_URI, http_client=http, jwks_max_age=0, min_refetch_interval=0
        )
        await verifier.verify(mint(es256))
        auth_server.jwks_status = 503
        assert (await verifier.verify(mint(es256, jti="later"))).subject == "user-123"


async def test_scp_list_claim_is_read_as_scopes(verifier: JWTVerifier, es256: SigningKey) -> None:
    principal = await verifier.verify(mint(es256, scope=None, scp=["a", "b", 3, "a"]))
    assert principal.scopes == ("a", "b")


async def test_no_scope_claim_means_no_scopes(verifier: JWTVerifier, es256: SigningKey) -> None:
    assert (await verifier.verify(mint(es256, scope=None))).scopes == ()


async def test_default_http_client_is_used_when_none_given(es256: SigningKey) -> None:
    verifier = JWTVerifier(ISSUER, RESOURCE, "http://127.0.0.1:9/jwks.json")
    with pytest.raises(TemporarilyUnavailableError):
        await verifier.verify(mint(es256))


@pytest.mark.parametrize("raw", [b"[1, 2]", b"not json"])
async def test_unusable_introspection_answer_is_temporarily_unavailable(
    introspector: IntrospectionVerifier, auth_server: AuthorizationServerDouble, raw: bytes
) -> None:
    auth_server.introspection_raw = raw
    with pytest.raises(TemporarilyUnavailableError):
        await introspector.verify("t")
