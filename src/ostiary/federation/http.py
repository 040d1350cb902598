"""Outbound calls to upstream identity providers (RFC 6749 §4.1.3, §6; OpenID Connect Core §5.3).

Documents the server merely *reads* (OpenID discovery, JWKS) go through the SSRF-guarded
:class:`~ostiary.net.fetch.SafeFetcher`. Token requests (form POST with client credentials)
and user-info/user-API calls (bearer GET) need a method and headers the fetcher does not
offer; they go to endpoints named by the operator's configuration or the provider's own
discovery document, over https only (plain http only with ``allow_private_network``), with
no redirects, a time bound and a size cap.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

import httpx

from ostiary import jsonbody
from ostiary.errors import InvalidRequestError, ToolkitError
from ostiary.net.fetch import USER_AGENT, FetchError, FetchPolicy, SafeFetcher

MAX_RESPONSE_BYTES = 64 * 1024


class UpstreamError(ToolkitError):
    """An upstream provider refused a request or answered something unusable.

    Args:
        reason: A short sentence safe to show on the error page.
        error: The provider's OAuth ``error`` code, when it sent one.
        detail: Private context for logs.
    """

    def __init__(self, reason: str, *, error: str | None = None, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.detail = detail


class UpstreamHttp:
    """The one outbound channel of the federation package.

    Args:
        allow_private: Accept loopback/private hosts and plain http (tests, local IdPs).
        timeout_seconds: Bound on each request.
        transport: Optional httpx transport (tests).
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        timeout_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.timeout_seconds = timeout_seconds
        self._transport = transport
        self._fetcher = SafeFetcher(
            FetchPolicy(
                allow_private=allow_private,
                timeout_seconds=timeout_seconds,
                max_bytes=MAX_RESPONSE_BYTES,
            ),
            transport=transport,
        )

    async def get_document(self, url: str) -> dict[str, Any]:
        """A JSON object (discovery, JWKS) fetched through the SSRF guard."""
        try:
            fetched = await self._fetcher.get_json(url)
        except FetchError as exc:
            raise UpstreamError(
                f"could not fetch {_host(url)}: {exc.reason}", detail=exc.detail
            ) from None
        if not isinstance(fetched.data, dict):
            raise UpstreamError(f"{_host(url)} did not return a JSON object")
        return fetched.data

    async def post_form(
        self, url: str, form: dict[str, str], *, auth: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        """POST a token request; the JSON answer, or UpstreamError with the OAuth error."""
        self.check_url(url)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if auth is not None:
            pair = f"{auth[0]}:{auth[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        response, content = await self._send(httpx.Request("POST", url, data=form, headers=headers))
        body = _json_object(response, content)
        if response.status_code != 200 or "error" in body:
            error = body.get("error")
            error = error if isinstance(error, str) else None
            raise UpstreamError(
                f"{_host(url)} refused the token request"
                + (f" ({error})" if error else f" (HTTP {response.status_code})"),
                error=error,
                detail=str(body.get("error_description")),
            )
        return body

    async def get_with_token(self, url: str, access_token: str) -> dict[str, Any]:
        """GET a JSON object with a bearer access token (user info, user API)."""
        data = await self.get_any_with_token(url, access_token)
        if not isinstance(data, dict):
            raise UpstreamError("the provider's answer is not a JSON object")
        return data

    async def get_any_with_token(self, url: str, access_token: str) -> object:
        """GET any JSON document with a bearer access token (e.g. a list)."""
        self.check_url(url)
        headers = {
            "Accept": "application/json",
            "Authorization": f"Bearer {access_token}",
            "User-Agent": USER_AGENT,
        }
        response, content = await self._send(httpx.Request("GET", url, headers=headers))
        if response.status_code != 200:
            raise UpstreamError(f"{_host(url)} answered HTTP {response.status_code}")
        try:
            data: object = jsonbody.loads(content)
        except InvalidRequestError:
            raise UpstreamError(f"{_host(url)} did not answer JSON") from None
        return data

    async def _send(self, request: httpx.Request) -> tuple[httpx.Response, bytes]:
        """Send without following redirects; read at most MAX_RESPONSE_BYTES of the body."""
        host = request.url.host or "the provider"
        try:
            async with self._client() as client:
                response = await client.send(request, stream=True)
                try:
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > MAX_RESPONSE_BYTES:
                            raise UpstreamError(f"{host}'s answer is too large")
                        chunks.append(chunk)
                finally:
                    await response.aclose()
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{host} did not answer", detail=repr(exc)) from None
        return response, b"".join(chunks)

    def check_url(self, url: str) -> None:
        parts = urlsplit(url)
        schemes = ("https", "http") if self.allow_private else ("https",)
        if parts.scheme not in schemes or not parts.hostname or "@" in parts.netloc:
            raise UpstreamError("the provider named an endpoint that is not an https URL")

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self._transport,
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(self.timeout_seconds),
        )


def _json_object(response: httpx.Response, content: bytes) -> dict[str, Any]:
    try:
        data = jsonbody.loads(content)
    except InvalidRequestError:
        raise UpstreamError(
            f"the provider answered HTTP {response.status_code} without JSON"
        ) from None
    if not isinstance(data, dict):
        raise UpstreamError("the provider's answer is not a JSON object")
    return data


def _host(url: str) -> str:
    return urlsplit(url).hostname or "the provider"
