"""ID token validation (OIDC Core §3.1.3.7) on real tokens from the running oidc-provider."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from ostiary.core.secrets import hash_secret
from ostiary.federation.http import UpstreamError, UpstreamHttp
from ostiary.federation.oidc import IdTokenError, OidcMetadata, ProviderKeys, validate_id_token
from tests.federation._idp import (
    CALLBACK,
    CLIENT_ID,
    OTHER_CLIENT_ID,
    OTHER_CLIENT_SECRET,
    RunningIdp,
)
from tests.federation.conftest import Browser, pkce_pair

NONCE = "a-nonce-of-this-login"


@pytest.fixture
async def upstream(idp: RunningIdp) -> tuple[OidcMetadata, ProviderKeys]:
    http = UpstreamHttp(allow_private=True)
    metadata = OidcMetadata.parse(await http.get_document(idp.discovery_url), idp.discovery_url)
    return metadata, ProviderKeys(http, metadata.jwks_uri, lambda: int(time.time()))


async def id_token_for(idp: RunningIdp, client_id: str, secret: str, nonce: str = NONCE) -> str:
    """Run the code flow at the IdP as ``client_id`` and return the ID token it issues."""
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid email",
        "state": "s",
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    async with httpx.AsyncClient(timeout=10) as http:
        browser = Browser(http, http, idp.issuer)
        start = await browser.get(f"{idp.issuer}/auth?{urlencode(query)}")
        done = await browser.idp_login(
            await browser.follow(start, stop_at=CALLBACK), "alice", stop_at=CALLBACK
        )
        code = parse_qs(urlsplit(done.headers["location"]).query)["code"][0]
        token = await http.post(
            f"{idp.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CALLBACK,
                "code_verifier": verifier,
            },
            auth=(client_id, secret),
        )
    assert token.status_code == 200, token.text
    id_token: str = token.json()["id_token"]
    return id_token


async def _validate(
    upstream: tuple[OidcMetadata, ProviderKeys],
    id_token: str,
    *,
    client_id: str = CLIENT_ID,
    nonce: str = NONCE,
    now: int | None = None,
    metadata: OidcMetadata | None = None,
) -> dict[str, object]:
    return await validate_id_token(
        id_token,
        keys=upstream[1],
        metadata=metadata or upstream[0],
        client_id=client_id,
        nonce_hash=hash_secret(nonce),
        now=int(time.time()) if now is None else now,
    )


async def test_a_token_for_its_own_client_validates(
    idp: RunningIdp, upstream: tuple[OidcMetadata, ProviderKeys]
) -> None:
    token = await id_token_for(idp, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET)
    claims = await _validate(upstream, token, client_id=OTHER_CLIENT_ID)
    assert claims["sub"] == "alice"
    assert claims["aud"] == OTHER_CLIENT_ID
    assert claims["iss"] == idp.issuer


async def test_a_token_for_another_audience_is_refused(
    idp: RunningIdp, upstream: tuple[OidcMetadata, ProviderKeys]
) -> None:
    token = await id_token_for(idp, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET)
    with pytest.raises(IdTokenError) as info:
        await _validate(upstream, token, client_id=CLIENT_ID)
    assert info.value.reason == "the ID token is not meant for this server (aud)"


async def test_a_token_with_another_nonce_is_refused(
    idp: RunningIdp, upstream: tuple[OidcMetadata, ProviderKeys]
) -> None:
    token = await id_token_for(idp, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET)
    with pytest.raises(IdTokenError) as info:
        await _validate(upstream, token, client_id=OTHER_CLIENT_ID, nonce="another-nonce")
    assert info.value.reason == "the ID token's nonce does not match this login"


async def test_an_expired_token_is_refused(
    idp: RunningIdp, upstream: tuple[OidcMetadata, ProviderKeys]
) -> None:
    token = await id_token_for(idp, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET)
    later = int(time.time()) + 2 * 3600
    with pytest.raises(IdTokenError) as info:
        await _validate(upstream, token, client_id=OTHER_CLIENT_ID, now=later)
    assert info.value.reason == "the ID token has expired"


async def test_a_token_from_another_issuer_is_refused(
    idp: RunningIdp, upstream: tuple[OidcMetadata, ProviderKeys]
) -> None:
    token = await id_token_for(idp, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET)
    elsewhere = replace(upstream[0], issuer="https://issuer.example")
    with pytest.raises(IdTokenError) as info:
        await _validate(upstream, token, client_id=OTHER_CLIENT_ID, metadata=elsewhere)
    assert info.value.reason == "the ID token was issued by another issuer"


async def test_a_token_signed_with_another_key_is_refused(
    idp: RunningIdp, upstream: tuple[OidcMetadata, ProviderKeys]
) -> None:
    """Same claims and the provider's kid, but our own RSA key: the signature fails."""
    genuine = await id_token_for(idp, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET)
    header_b64, payload_b64, _signature = genuine.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    forged = jwt.encode(header, claims, RSAKey.generate_key(2048))
    with pytest.raises(IdTokenError) as info:
        await _validate(upstream, forged, client_id=OTHER_CLIENT_ID)
    assert info.value.reason == "the ID token's signature is not valid"


async def test_a_token_naming_an_unpublished_key_is_refused(
    idp: RunningIdp, upstream: tuple[OidcMetadata, ProviderKeys]
) -> None:
    genuine = await id_token_for(idp, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET)
    payload_b64 = genuine.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    forged = jwt.encode({"alg": "RS256", "kid": "not-published"}, claims, RSAKey.generate_key(2048))
    with pytest.raises(IdTokenError) as info:
        await _validate(upstream, forged, client_id=OTHER_CLIENT_ID)
    assert info.value.reason == "the ID token is signed with a key the provider does not publish"


async def test_an_unsigned_token_is_refused(
    idp: RunningIdp, upstream: tuple[OidcMetadata, ProviderKeys]
) -> None:
    genuine = await id_token_for(idp, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET)
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    unsigned = f"{header}.{genuine.split('.')[1]}."
    with pytest.raises(IdTokenError) as info:
        await _validate(upstream, unsigned, client_id=OTHER_CLIENT_ID)
    assert info.value.reason == "the ID token's signature is not valid"


def test_discovery_whose_issuer_differs_from_its_url_is_refused(idp: RunningIdp) -> None:
    """OpenID Connect Discovery §4.3."""
    document = httpx.get(idp.discovery_url).json()
    url = "http://127.0.0.1:1/.well-known/openid-configuration"
    with pytest.raises(UpstreamError, match="the discovery document's issuer does not match"):
        OidcMetadata.parse(document, url)
