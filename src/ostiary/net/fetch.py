"""SSRF-guarded outbound JSON fetches (MCP security best practices, SSRF; CIMD draft-00 §6).

Every URL the authorization server fetches on a client's say-so (a Client ID Metadata
Document, a ``jwks_uri``) can point anywhere, including at the server's own network. The
:class:`SafeFetcher` therefore:

* accepts only ``https`` (plain ``http`` only when private addresses are allowed, for tests);
* optionally restricts hosts to an allow-list;
* resolves the host itself and refuses when *any* address is loopback, private, link-local,
  multicast, reserved, unspecified, shared (CGNAT ``100.64.0.0/10``) or an IPv6 form
  embedding one of those (IPv4-mapped, 6to4, NAT64, Teredo);
* connects to the vetted address (the IP is put in the URL, the name goes in ``Host`` and
  TLS SNI, and certificates are still verified against the name), so a DNS answer that
  changes between check and connect (rebinding) cannot redirect the request;
* never follows redirects, caps the body size while streaming, and bounds the total time;
* requires a JSON content type and valid JSON.

Failures raise :class:`FetchError` whose message is short and safe to show to a client.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

from ostiary import jsonbody
from ostiary.core.urls import split_url
from ostiary.errors import InvalidRequestError, ToolkitError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED_ADDRESS_SPACE: Final = ipaddress.ip_network("100.64.0.0/10")
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL: Final = ipaddress.ip_network("64:ff9b:1::/48")
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
_JSON_TYPES: Final = frozenset({"application/json"})
USER_AGENT: Final = "ostiary (+https://github.com/ostiary/ostiary)"


class FetchError(ToolkitError):
    """An outbound fetch was refused or failed.

    Args:
        reason: A short sentence safe to show to the client (no addresses, no internals).
        detail: Private context for logs.
    """

    def __init__(self, reason: str, *, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for outbound fetches.

    Attributes:
        allow_private: Allow loopback and private addresses and plain http (tests, dev).
        timeout_seconds: Bound on the whole fetch: resolution, connection, headers and body.
        max_bytes: Largest accepted (decoded) body.
        allowed_domains: When not empty, the only hosts that may be fetched. An entry
            ``*.example.com`` allows every subdomain of ``example.com`` (not the apex).
    """

    allow_private: bool = False
    timeout_seconds: float = 5.0
    max_bytes: int = 5120
    allowed_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class FetchedJson:
    """A parsed JSON body and how long it may be cached (None when the server did not say)."""

    data: object
    max_age: int | None


def is_public_address(ip: IPAddress) -> bool:
    """True when ``ip`` is a globally routable unicast address.

    IPv6 forms that embed an IPv4 address (IPv4-mapped, 6to4, NAT64) are judged by the
    embedded address; Teredo is always refused.

    Example:
        >>> is_public_address(ipaddress.ip_address("93.184.216.34"))
        True
        >>> is_public_address(ipaddress.ip_address("::ffff:127.0.0.1"))
        False
    """
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_public_address(embedded)
        if ip.teredo is not None or ip in _NAT64_LOCAL or ip.is_site_local:
            return False
    if (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip in _SHARED_ADDRESS_SPACE
    ):
        return False
    return ip.is_global


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def host_allowed(host: str, allowed_domains: tuple[str, ...]) -> bool:
    """Whether ``host`` passes the allow-list (empty list: every host)."""
    if not allowed_domains:
        return True
    host = host.lower().rstrip(".")
    for entry in allowed_domains:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and host != entry[2:]:
                return True
        elif host == entry:
            return True
    return False


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def parse_max_age(headers: httpx.Headers, *, now: float | None = None) -> int | None:
    """Seconds a response may be cached (RFC 9111 §5.2.2.1, §5.3), or None when unstated.

    ``no-store`` and ``no-cache`` give 0; otherwise ``max-age``; otherwise ``Expires``
    relative to ``Date`` (or the local clock).
    """
    directives = [d.strip().lower() for d in headers.get("cache-control", "").split(",")]
    if "no-store" in directives or "no-cache" in directives:
        return 0
    for directive in directives:
        name, _, value = directive.partition("=")
        if name.strip() == "max-age":
            try:
                return max(0, int(value.strip().strip('"')))
            except ValueError:
                return 0  # RFC 9111 §4.2.1: an invalid max-age means "stale".
    expires = headers.get("expires")
    if expires is None:
        return None
    try:
        expires_at = parsedate_to_datetime(expires).timestamp()
        date = headers.get("date")
        base = parsedate_to_datetime(date).timestamp() if date else _now(now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0  # RFC 9111 §5.3: an invalid Expires means "already expired".
    return max(0, int(expires_at - base))


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path_and_query: str

    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == _DEFAULT_PORTS[self.scheme] else f"{name}:{self.port}"

    def url_for(self, ip: IPAddress) -> str:
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"{self.scheme}://{literal}:{self.port}{self.path_and_query}"


class SafeFetcher:
    """Fetches small JSON documents from untrusted URLs without exposing the internal network.

    Args:
        policy: Size, time and address limits.
        transport: Optional httpx transport (tests); the default verifies TLS.
        ssl_context: TLS settings for the default transport, e.g. a private CA in tests;
            defaults to the system trust store.
        resolve_host: Name resolution ``(host, port) -> addresses``; defaults to the
            system resolver (``getaddrinfo``). Every answer is vetted before use.

    Example:
        >>> import asyncio, httpx
        >>> async def public_dns(host: str, port: int) -> list[str]:
        ...     return ["93.184.216.34"]  # vetted like any answer: a private one is refused
        >>> document = httpx.MockTransport(
        ...     lambda request: httpx.Response(200, json={"client_name": "App"})
        ... )
        >>> fetcher = SafeFetcher(FetchPolicy(), transport=document, resolve_host=public_dns)
        >>> asyncio.run(fetcher.get_json("https://app.example.com/client.json")).data
        {'client_name': 'App'}
    """

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        ssl_context: ssl.SSLContext | None = None,
        resolve_host: Callable[[str, int], Awaitable[Sequence[str]]] | None = None,
    ) -> None:
        self.policy = policy
        self._transport = transport
        self._ssl = ssl_context
        self._resolve_host = resolve_host

    async def get_json(self, url: str) -> FetchedJson:
        """GET ``url`` under the policy and parse its JSON body.

        Args:
            url: An absolute https URL.

        Returns:
            The parsed body and its cache lifetime.

        Raises:
            FetchError: The URL is refused, or the fetch failed, timed out, was redirected,
                was too large, or did not return JSON.
        """
        target = self._check_url(url)
        try:
            async with asyncio.timeout(self.policy.timeout_seconds):
                addresses = await self._vetted_addresses(target)
                return await self._first_reachable(target, addresses)
        except TimeoutError:
            raise FetchError("the request timed out") from None
        except httpx.HTTPError as exc:
            raise FetchError("the request failed", detail=repr(exc)) from None

    def _check_url(self, url: str) -> _Target:
        if not url.isascii() or any(ch.isspace() or ord(ch) < 0x20 for ch in url):
            raise FetchError("the URL is not valid")
        parts = split_url(url)
        if parts is None:
            raise FetchError("the URL is not valid")
        allowed_schemes = ("https", "http") if self.policy.allow_private else ("https",)
        if parts.scheme not in allowed_schemes:
            raise FetchError("only https URLs are fetched")
        if "@" in parts.netloc or "#" in url or not parts.hostname:
            raise FetchError("the URL is not valid")
        port = parts.port if parts.port is not None else _DEFAULT_PORTS[parts.scheme]
        if not host_allowed(parts.hostname, self.policy.allowed_domains):
            raise FetchError("the host is not on the allow-list")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return _Target(parts.scheme, parts.hostname, port, path)

    async def _first_reachable(self, target: _Target, addresses: list[IPAddress]) -> FetchedJson:
        """Try each vetted address in resolver order until one accepts the connection."""
        for address in addresses[:-1]:
            try:
                return await self._request(target, address)
            except httpx.ConnectError:
                continue
        return await self._request(target, addresses[-1])

    async def _vetted_addresses(self, target: _Target) -> list[IPAddress]:
        try:
            addresses = [ipaddress.ip_address(target.host)]
        except ValueError:
            addresses = await self._resolve(target.host, target.port)
        if not self.policy.allow_private:
            for ip in addresses:
                if not is_public_address(ip):
                    # Refuse if ANY answer is internal: the connection could use either.
                    raise FetchError("the host resolves to a non-public address")
        return addresses

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            if self._resolve_host is not None:
                answers = list(await self._resolve_host(host, port))
            else:
                answers = await _getaddrinfo(host, port)
        except (OSError, UnicodeError):
            raise FetchError("the host name could not be resolved") from None
        addresses: list[IPAddress] = []
        for answer in answers:
            ip = ipaddress.ip_address(answer.split("%")[0])  # drop an IPv6 zone id
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise FetchError("the host name could not be resolved")
        return addresses

    def _client(self) -> httpx.AsyncClient:
        if self._transport is not None:
            return httpx.AsyncClient(
                transport=self._transport, follow_redirects=False, timeout=self._timeout()
            )
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return httpx.AsyncClient(
            verify=self._ssl, follow_redirects=False, trust_env=False, timeout=self._timeout()
        )

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.policy.timeout_seconds)

    async def _request(self, target: _Target, address: IPAddress) -> FetchedJson:
        headers = {
            "Host": target.host_header(),
            "Accept": "application/json",
            # No compression: the size cap then bounds memory too (no decompression bombs).
            "Accept-Encoding": "identity",
            "User-Agent": USER_AGENT,
        }
        # Pin the vetted address; SNI and certificate checks still use the host name.
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        async with (
            self._client() as client,
            client.stream(
                "GET", target.url_for(address), headers=headers, extensions=extensions
            ) as response,
        ):
            _check_response(response, self.policy.max_bytes)
            body = await _read_limited(response, self.policy.max_bytes)
            max_age = parse_max_age(response.headers)
        try:
            # The one bounded reader: a client's metadata document is as hostile as a body.
            data = jsonbody.loads(body, allow_nul=False)
        except InvalidRequestError:
            # Too deep, an unpaired surrogate, a repeated name or NUL: not JSON we will use.
            raise FetchError("the response is not valid JSON") from None
        return FetchedJson(data=data, max_age=max_age)


async def _getaddrinfo(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _check_response(response: httpx.Response, max_bytes: int) -> None:
    if 300 <= response.status_code < 400:
        raise FetchError("redirects are not followed")
    if response.status_code != 200:
        raise FetchError(f"the server answered HTTP {response.status_code}")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise FetchError("compressed responses are not accepted")
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in _JSON_TYPES and not media_type.endswith("+json"):
        raise FetchError("the response is not JSON")
    length = response.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise FetchError("the response is too large")


async def _read_limited(response: httpx.Response, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError("the response is too large")
        chunks.append(chunk)
    return b"".join(chunks)
