"""SSRF-guarded fetches (MCP security best practices, SSRF; CIMD draft-00 §6)."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import httpx
import pytest

from ostiary.net.fetch import (
    FetchError,
    FetchPolicy,
    SafeFetcher,
    host_allowed,
    is_public_address,
    parse_max_age,
)

from ._http_server import Route, http_server

LOCAL = FetchPolicy(allow_private=True, timeout_seconds=2.0)
STRICT = FetchPolicy()
DOC = {"client_id": "x", "redirect_uris": ["http://127.0.0.1/cb"]}


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "0.0.0.0",
        "224.0.0.1",
        "233.252.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",
        "2002:a9fe:a9fe::",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::1",
        "2001::1",
        "2001:db8::1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "2002:0808:0808::",
        "64:ff9b::808:808",
    ],
)
def test_public_addresses(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


async def refused(url: str, policy: FetchPolicy = STRICT) -> str:
    with pytest.raises(FetchError) as exc:
        await SafeFetcher(policy).get_json(url)
    return exc.value.reason


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/client.json",
        "https://[::1]/client.json",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1:8443/x",
        "https://[::ffff:7f00:1]/x",
        "https://100.64.0.1/x",
        "https://0.0.0.0/x",
    ],
)
async def test_internal_ip_literals_are_refused_before_connecting(url: str) -> None:
    assert await refused(url) == "the host resolves to a non-public address"


async def test_localhost_name_is_refused_after_resolution() -> None:
    """localhost resolves (via the hosts file, no DNS) to loopback: refused."""
    assert await refused("https://localhost/client.json") == (
        "the host resolves to a non-public address"
    )


async def test_unresolvable_host() -> None:
    assert await refused("https://does-not-exist.invalid/client.json") == (
        "the host name could not be resolved"
    )


@pytest.mark.parametrize(
    "url", ["http://example.com/x", "ftp://example.com/x", "file:///etc/passwd", "example.com/x"]
)
async def test_only_https(url: str) -> None:
    assert await refused(url) == "only https URLs are fetched"


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@example.com/x",
        "https://example.com/x#frag",
        "https:///x",
        "https://example.com:99999/x",
        "https://exa mple.com/x",
        "https://exämple.com/x",
        "https://example.com/\x00",
    ],
)
async def test_invalid_urls(url: str) -> None:
    assert await refused(url) == "the URL is not valid"


async def test_allow_list_is_checked_before_resolution() -> None:
    policy = FetchPolicy(allowed_domains=("app.example.com",))
    assert await refused("https://evil.example.com/x", policy) == (
        "the host is not on the allow-list"
    )


@pytest.mark.parametrize(
    ("host", "allowed", "expected"),
    [
        ("app.example.com", (), True),
        ("app.example.com", ("app.example.com",), True),
        ("APP.example.com.", ("app.example.com",), True),
        ("evil.app.example.com", ("app.example.com",), False),
        ("a.example.com", ("*.example.com",), True),
        ("a.b.example.com", ("*.example.com",), True),
        ("example.com", ("*.example.com",), False),
        ("badexample.com", ("*.example.com",), False),
        ("example.com.evil.net", ("example.com",), False),
    ],
)
def test_host_allow_list(host: str, allowed: tuple[str, ...], expected: bool) -> None:
    assert host_allowed(host, allowed) is expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Cache-Control": "max-age=300"}, 300),
        ({"Cache-Control": "public, MAX-AGE=60, must-revalidate"}, 60),
        ({"Cache-Control": 'max-age="120"'}, 120),
        ({"Cache-Control": "max-age=abc"}, 0),
        ({"Cache-Control": "max-age=-5"}, 0),
        ({"Cache-Control": "no-store, max-age=300"}, 0),
        ({"Cache-Control": "no-cache"}, 0),
        (
            {"Expires": "Wed, 21 Oct 2026 07:28:00 GMT", "Date": "Wed, 21 Oct 2026 07:18:00 GMT"},
            600,
        ),
        ({"Expires": "0"}, 0),
        ({"Expires": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0),
        ({"Cache-Control": "max-age=10", "Expires": "Wed, 21 Oct 2099 07:28:00 GMT"}, 10),
    ],
)
def test_cache_lifetime(headers: dict[str, str], expected: int | None) -> None:
    """RFC 9111 §5.2.2 and §5.3: max-age wins over Expires; no-store means do not reuse."""
    assert parse_max_age(httpx.Headers(headers)) == expected


def test_expires_relative_to_local_clock() -> None:
    headers = httpx.Headers({"Expires": "Thu, 01 Jan 1970 00:10:00 GMT"})
    assert parse_max_age(headers, now=0) == 600


async def test_fetches_json_from_a_real_server_pinned_to_the_vetted_ip() -> None:
    body = json.dumps(DOC).encode()
    routes = {
        "/client.json?v=1": Route(
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Cache-Control": "max-age=90",
            },
            body=body,
        )
    }
    async with http_server(routes) as server:
        fetched = await SafeFetcher(LOCAL).get_json(server.url("/client.json?v=1", "localhost"))
    assert fetched.data == DOC
    assert fetched.max_age == 90
    (request,) = server.requests
    assert request["method"] == "GET"
    assert request["target"] == "/client.json?v=1"
    # The connection went to the resolved IP, but the Host header names the original host.
    assert request["host"] == f"localhost:{server.port}"
    assert request["accept"] == "application/json"
    assert request["accept-encoding"] == "identity"


async def test_json_suffix_media_type_is_accepted() -> None:
    routes = {
        "/j": Route(headers={"Content-Type": "application/jwk-set+json"}, body=b'{"keys":[]}')
    }
    async with http_server(routes) as server:
        fetched = await SafeFetcher(LOCAL).get_json(server.url("/j"))
    assert fetched == type(fetched)(data={"keys": []}, max_age=None)


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (
            Route(status=302, headers={"Location": "http://127.0.0.1/other"}),
            "redirects are not followed",
        ),
        (Route(status=301, headers={"Location": "/x"}), "redirects are not followed"),
        (Route(status=404), "the server answered HTTP 404"),
        (Route(status=500), "the server answered HTTP 500"),
        (Route(headers={"Content-Type": "text/html"}, body=b"<html>"), "the response is not JSON"),
        (Route(headers={}, body=b"{}"), "the response is not JSON"),
        (Route(body=b"{not json"), "the response is not valid JSON"),
        (
            Route(headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}),
            "compressed responses are not accepted",
        ),
        (Route(body=b"\xff\xfe"), "the response is not valid JSON"),
        # Issue 10 §3: the one bounded reader (ostiary.jsonbody) parses documents too.
        (Route(body=b"[" * 1000 + b"]" * 1000), "the response is not valid JSON"),
        (Route(body=b'{"client_name": "\\ud800"}'), "the response is not valid JSON"),
        (Route(body=b'{"client_id": "a", "client_id": "b"}'), "the response is not valid JSON"),
        (Route(body=b'{"client_name": "a\\u0000"}'), "the response is not valid JSON"),
        (Route(body=b"{" + b" " * 6000 + b"}"), "the response is too large"),
        (
            Route(body=b"[" + b"1," * 4000 + b"1]", chunks=50, content_length=False),
            "the response is too large",
        ),
    ],
)
async def test_bad_responses(route: Route, reason: str) -> None:
    async with http_server({"/doc": route}) as server:
        with pytest.raises(FetchError) as exc:
            await SafeFetcher(LOCAL).get_json(server.url("/doc"))
    assert exc.value.reason == reason
    assert len(server.requests) == 1  # never follows a redirect


async def test_slow_server_times_out() -> None:
    policy = FetchPolicy(allow_private=True, timeout_seconds=0.2)
    async with http_server({"/slow": Route(delay=1.0)}) as server:
        with pytest.raises(FetchError) as exc:
            await SafeFetcher(policy).get_json(server.url("/slow"))
    assert exc.value.reason == "the request timed out"


async def test_connection_refused_is_a_fetch_error() -> None:
    async with http_server({}) as server:
        port = server.port
    with pytest.raises(FetchError) as exc:
        await SafeFetcher(LOCAL).get_json(f"http://127.0.0.1:{port}/gone")
    assert exc.value.reason == "the request failed"


async def test_private_addresses_refused_without_allow_private_even_over_http_policy() -> None:
    async with http_server({"/doc": Route()}) as server:
        with pytest.raises(FetchError) as exc:
            await SafeFetcher(FetchPolicy()).get_json(server.url("/doc"))
    assert exc.value.reason == "only https URLs are fetched"
    assert server.requests == []


async def test_custom_transport_is_used() -> None:
    """The transport hook (for embedding) still sees the pinned IP URL and Host header."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True}, headers={"Cache-Control": "no-store"})

    fetcher = SafeFetcher(LOCAL, transport=httpx.MockTransport(handler))
    fetched = await fetcher.get_json("http://localhost:8080/doc")
    assert fetched.data == {"ok": True}
    assert fetched.max_age == 0
    assert seen[0].url.host in ("127.0.0.1", "::1")
    assert seen[0].headers["host"] == "localhost:8080"


def static_hosts(table: dict[str, list[str]]) -> Any:
    """A fixed hosts table standing in for DNS (no network, no mock objects)."""

    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]

    return resolve


@pytest.mark.parametrize(
    "answers",
    [
        ["93.184.216.34", "127.0.0.1"],
        ["127.0.0.1", "93.184.216.34"],
        ["2606:4700:4700::1111", "fe80::1%eth0"],
        ["93.184.216.34", "::ffff:10.0.0.1"],
    ],
)
async def test_any_internal_answer_refuses_the_host(answers: list[str]) -> None:
    """A name with one public and one internal address is refused (DNS rebinding setup)."""
    fetcher = SafeFetcher(STRICT, resolve_host=static_hosts({"mixed.example": answers}))
    with pytest.raises(FetchError) as exc:
        await fetcher.get_json("https://mixed.example/client.json")
    assert exc.value.reason == "the host resolves to a non-public address"


async def test_empty_or_failed_resolution() -> None:
    fetcher = SafeFetcher(STRICT, resolve_host=static_hosts({"empty.example": []}))
    for url in ("https://empty.example/x", "https://unknown.example/x"):
        with pytest.raises(FetchError) as exc:
            await fetcher.get_json(url)
        assert exc.value.reason == "the host name could not be resolved"


async def test_unreachable_address_falls_through_to_the_next_vetted_one() -> None:
    """127.0.0.2 refuses the connection (nothing listens there); 127.0.0.1 answers."""
    table = {"app.test": ["127.0.0.2", "127.0.0.2", "127.0.0.1"]}
    async with http_server({"/doc": Route(body=b'{"a": 1}')}) as server:
        fetcher = SafeFetcher(LOCAL, resolve_host=static_hosts(table))
        fetched = await fetcher.get_json(server.url("/doc", "app.test"))
    assert fetched.data == {"a": 1}
    assert server.requests[0]["host"] == f"app.test:{server.port}"


async def test_public_host_is_pinned_to_its_vetted_address_with_sni() -> None:
    """The request goes to the vetted IP; Host and TLS SNI carry the name (no rebinding)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    fetcher = SafeFetcher(
        STRICT,
        transport=httpx.MockTransport(handler),
        resolve_host=static_hosts({"app.example.com": ["93.184.216.34"]}),
    )
    fetched = await fetcher.get_json("https://app.example.com/client.json?x=1")
    assert fetched.data == {"ok": True}
    (request,) = seen
    assert str(request.url) == "https://93.184.216.34/client.json?x=1"
    assert request.headers["host"] == "app.example.com"
    assert request.extensions["sni_hostname"] == "app.example.com"
