"""CIMD resolution over real HTTPS with caching (CIMD draft-00 §4, §6; MCP client registration)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ostiary.core.models import Client
from ostiary.errors import InvalidClientMetadataError
from ostiary.net.cimd import ClientMetadataResolver
from ostiary.net.fetch import FetchError, FetchPolicy, SafeFetcher

from ._http_server import Route, Server, http_server
from ._tls import Tls, make_tls

SCOPES = ("mcp:read",)


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return make_tls(tmp_path)


def document(url: str, **extra: Any) -> bytes:
    body = {
        "client_id": url,
        "client_name": "Example",
        "redirect_uris": ["http://127.0.0.1:3000/callback"],
        **extra,
    }
    return json.dumps(body).encode()


@pytest.fixture
async def server(tls: Tls) -> AsyncIterator[Server]:
    routes: dict[str, Route] = {}
    async with http_server(routes, tls=tls.server) as srv:
        yield srv


def resolver_for(tls: Tls, **kw: Any) -> ClientMetadataResolver:
    policy = FetchPolicy(allow_private=True, timeout_seconds=3.0)
    return ClientMetadataResolver(SafeFetcher(policy, ssl_context=tls.client), **kw)


def serve(server: Server, path: str, cache_control: str | None = None, **extra: Any) -> str:
    url = server.url(path, "localhost")
    headers = {"Content-Type": "application/json"}
    if cache_control:
        headers["Cache-Control"] = cache_control
    server.routes[path] = Route(headers=headers, body=document(url, **extra))
    return url


async def resolve(resolver: ClientMetadataResolver, url: str, now: int = 1000) -> Client:
    return await resolver.resolve(url, tenant_id="t", now=now, supported_scopes=SCOPES)


async def test_https_fetch_uses_sni_and_verifies_the_certificate(tls: Tls, server: Server) -> None:
    """The connection is pinned to the vetted IP yet TLS still checks the name (SNI)."""
    url = serve(server, "/client.json")
    fetched = await SafeFetcher(FetchPolicy(allow_private=True), ssl_context=tls.client).get_json(
        url
    )
    assert fetched.data == json.loads(document(url))
    assert server.requests[0]["host"] == f"localhost:{server.port}"


async def test_https_with_untrusted_certificate_fails(server: Server) -> None:
    url = serve(server, "/client.json")
    with pytest.raises(FetchError) as exc:
        await SafeFetcher(FetchPolicy(allow_private=True)).get_json(url)
    assert exc.value.reason == "the request failed"


async def test_resolve_builds_and_caches_the_client(tls: Tls, server: Server) -> None:
    url = serve(server, "/client.json", cache_control="max-age=300")
    resolver = resolver_for(tls)
    client = await resolve(resolver, url)
    assert client.client_id == url
    assert client.source == "cimd"
    assert client.metadata_expires_at == 1300
    assert await resolve(resolver, url, now=1299) is client
    assert len(server.requests) == 1
    refreshed = await resolve(resolver, url, now=1300)
    assert refreshed.metadata_expires_at == 1600
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("cache_control", "ttl"),
    [(None, 60), ("no-store", 60), ("max-age=5", 60), ("max-age=999999", 86400)],
)
async def test_cache_lifetime_is_clamped(
    tls: Tls, server: Server, cache_control: str | None, ttl: int
) -> None:
    url = serve(server, "/client.json", cache_control=cache_control)
    client = await resolve(resolver_for(tls), url)
    assert client.metadata_expires_at == 1000 + ttl


async def test_lru_eviction(tls: Tls, server: Server) -> None:
    urls = [serve(server, f"/c{i}.json", cache_control="max-age=600") for i in range(3)]
    resolver = resolver_for(tls, max_entries=2)
    for url in urls:
        await resolve(resolver, url)
    await resolve(resolver, urls[2])
    await resolve(resolver, urls[1])
    assert len(server.requests) == 3
    await resolve(resolver, urls[0])  # evicted: fetched again
    assert len(server.requests) == 4


async def test_concurrent_resolutions_share_one_fetch(tls: Tls, server: Server) -> None:
    url = serve(server, "/client.json")
    server.routes["/client.json"].delay = 0.2
    resolver = resolver_for(tls)
    first, second = await asyncio.gather(resolve(resolver, url), resolve(resolver, url))
    assert first is second
    assert len(server.requests) == 1


async def test_forget_drops_the_cache(tls: Tls, server: Server) -> None:
    url = serve(server, "/client.json", cache_control="max-age=600")
    resolver = resolver_for(tls)
    await resolve(resolver, url)
    resolver.forget(url)
    await resolve(resolver, url)
    assert len(server.requests) == 2


async def test_fetch_failure_is_invalid_client_metadata(tls: Tls, server: Server) -> None:
    url = server.url("/missing.json", "localhost")
    with pytest.raises(InvalidClientMetadataError) as exc:
        await resolve(resolver_for(tls), url)
    assert exc.value.error == "invalid_client_metadata"
    assert exc.value.description == "the client's metadata document could not be fetched"
    assert exc.value.detail == f"fetching {url!r}: the server answered HTTP 404"


async def test_invalid_document_is_not_cached(tls: Tls, server: Server) -> None:
    url = serve(server, "/client.json", token_endpoint_auth_method="client_secret_post")
    resolver = resolver_for(tls)
    for _ in range(2):
        with pytest.raises(InvalidClientMetadataError) as exc:
            await resolve(resolver, url)
        assert exc.value.description == (
            "the client metadata document is invalid: "
            "unsupported token_endpoint_auth_method: client_secret_post"
        )
    assert len(server.requests) == 2


async def test_document_for_another_url_is_refused(tls: Tls, server: Server) -> None:
    url = server.url("/client.json", "localhost")
    server.routes["/client.json"] = Route(body=document("https://evil.example.com/client.json"))
    with pytest.raises(InvalidClientMetadataError) as exc:
        await resolve(resolver_for(tls), url)
    assert exc.value.description == (
        "the client metadata document client_id does not match its URL"
    )


@pytest.mark.parametrize(
    "client_id", ["http://localhost/client.json", "https://app.example.com/", "client-123"]
)
async def test_non_metadata_urls_are_refused_without_fetching(tls: Tls, client_id: str) -> None:
    with pytest.raises(InvalidClientMetadataError) as exc:
        await resolve(resolver_for(tls), client_id)
    assert exc.value.description == "client_id is not a valid client metadata URL"


async def test_private_targets_refused_by_default_policy() -> None:
    """CIMD draft §6 / SSRF: a metadata URL on an internal address is never fetched."""
    resolver = ClientMetadataResolver(SafeFetcher(FetchPolicy()))
    with pytest.raises(InvalidClientMetadataError) as exc:
        await resolve(resolver, "https://169.254.169.254/latest/meta-data/client")
    # The same words as any other fetch failure: the caller learns nothing about the address.
    assert exc.value.description == "the client's metadata document could not be fetched"
    assert exc.value.detail == (
        "fetching 'https://169.254.169.254/latest/meta-data/client': "
        "the host resolves to a non-public address"
    )


def test_resolver_rejects_inconsistent_limits() -> None:
    with pytest.raises(ValueError, match="min_cache_seconds"):
        ClientMetadataResolver(
            SafeFetcher(FetchPolicy()), min_cache_seconds=10, max_cache_seconds=5
        )


async def test_fetch_budget_refuses_new_urls_for_a_minute() -> None:
    """A flood of new URL client_ids spends the per-minute fetch budget, then is refused."""
    # Refused (unroutable) targets still spend budget: each miss is an outbound attempt.
    resolver = ClientMetadataResolver(SafeFetcher(FetchPolicy()), max_fetches_per_minute=2)
    outcomes = []
    for n in range(3):
        try:
            await resolver.resolve(
                f"https://10.0.0.{n + 1}/client.json", tenant_id="t", now=600, supported_scopes=()
            )
        except InvalidClientMetadataError as exc:
            outcomes.append(exc.description)
    assert outcomes[2] == (
        "too many client metadata documents are being fetched; try again in a minute"
    )
    assert outcomes[:2] == ["the client's metadata document could not be fetched"] * 2
    with pytest.raises(InvalidClientMetadataError) as next_minute:
        await resolver.resolve(
            "https://10.0.0.9/c.json", tenant_id="t", now=660, supported_scopes=()
        )
    assert next_minute.value.description == "the client's metadata document could not be fetched"
