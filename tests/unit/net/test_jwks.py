"""Client key sets from jwks_uri for private_key_jwt (RFC 7591 §2; RFC 7523 §3)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from ostiary.core.client_auth import (
    JWT_BEARER_ASSERTION_TYPE,
    authenticate_client,
    parse_client_credentials,
)
from ostiary.core.models import Client
from ostiary.errors import InvalidClientError
from ostiary.net.fetch import FetchError, FetchPolicy, SafeFetcher
from ostiary.net.jwks import JwksLoader

from ._http_server import Route, Server, http_server
from ._tls import Tls, make_tls

KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
JWKS = {"keys": [KEY.as_dict(private=False)]}


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return make_tls(tmp_path)


@pytest.fixture
async def server(tls: Tls) -> AsyncIterator[Server]:
    routes = {
        "/jwks.json": Route(
            headers={"Content-Type": "application/json", "Cache-Control": "max-age=120"},
            body=json.dumps(JWKS).encode(),
        ),
        "/not-a-set.json": Route(body=b'{"keys": "x"}'),
    }
    async with http_server(routes, tls=tls.server) as srv:
        yield srv


def loader_for(tls: Tls, **kw: Any) -> JwksLoader:
    fetcher = SafeFetcher(FetchPolicy(allow_private=True), ssl_context=tls.client)
    return JwksLoader(fetcher, **kw)


def client(**kw: Any) -> Client:
    return Client(
        tenant_id="t",
        client_id="c1",
        redirect_uris=(),
        token_endpoint_auth_method="private_key_jwt",
        grant_types=("client_credentials",),
        **kw,
    )


async def test_inline_jwks_needs_no_fetch(tls: Tls) -> None:
    assert await loader_for(tls).load(client(jwks=JWKS), now=0) == JWKS


async def test_jwks_uri_is_fetched_and_cached(tls: Tls, server: Server) -> None:
    loader = loader_for(tls)
    c = client(jwks_uri=server.url("/jwks.json", "localhost"))
    assert await loader.load(c, now=0) == JWKS
    assert await loader.load(c, now=119) == JWKS
    assert len(server.requests) == 1
    await loader.load(c, now=120)
    assert len(server.requests) == 2
    loader.forget(c.jwks_uri or "")
    await loader.load(c, now=121)
    assert len(server.requests) == 3


async def test_lru_bound(tls: Tls, server: Server) -> None:
    server.routes["/other.json"] = server.routes["/jwks.json"]
    loader = loader_for(tls, max_entries=1)
    a = client(jwks_uri=server.url("/jwks.json", "localhost"))
    b = client(jwks_uri=server.url("/other.json", "localhost"))
    for c in (a, b, a):
        await loader.load(c, now=0)
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/not-a-set.json", "the jwks_uri document is not a JWK set"),
        ("/missing", "the server answered HTTP 404"),
    ],
)
async def test_bad_jwks_uri(tls: Tls, server: Server, path: str, reason: str) -> None:
    with pytest.raises(FetchError) as exc:
        await loader_for(tls).load(client(jwks_uri=server.url(path, "localhost")), now=0)
    assert exc.value.reason == reason


async def test_client_without_keys(tls: Tls) -> None:
    with pytest.raises(FetchError) as exc:
        await loader_for(tls).load(client(), now=0)
    assert exc.value.reason == "the client has no registered keys"


def test_inconsistent_limits() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        JwksLoader(SafeFetcher(FetchPolicy()), max_entries=0)


async def test_private_key_jwt_end_to_end_with_jwks_uri(tls: Tls, server: Server) -> None:
    """RFC 7523 §2.2 client authentication with keys fetched over the SSRF-guarded fetcher."""
    now = 1_700_000_000
    registered = client(jwks_uri=server.url("/jwks.json", "localhost"))
    assertion = jwt.encode(
        {"alg": "ES256", "kid": "k1"},
        {"iss": "c1", "sub": "c1", "aud": "https://as.example.com/", "exp": now + 60, "jti": "j1"},
        KEY,
    )
    form = {"client_assertion_type": JWT_BEARER_ASSERTION_TYPE, "client_assertion": assertion}
    presented = parse_client_credentials(None, form)
    loader = loader_for(tls)
    seen: set[str] = set()

    async def remember(jti: str, exp: int) -> bool:
        if jti in seen:
            return False
        seen.add(jti)
        return True

    async def load(c: Client) -> Mapping[str, Any]:
        return await loader.load(c, now=now)

    kwargs: dict[str, Any] = {
        "audiences": ("https://as.example.com", "https://as.example.com/token"),
        "now": now,
        "remember_jti": remember,
        "load_jwks": load,
    }
    assert await authenticate_client(presented, registered, **kwargs) is registered
    with pytest.raises(InvalidClientError) as exc:
        await authenticate_client(presented, registered, **kwargs)
    assert exc.value.description == "client assertion replayed"
