"""The flow's discovery steps: fetch PRM, legacy or AS metadata (RFC 9728 §3; RFC 8414 §3).

Mixed into :class:`ostiary.client.flow.OAuthFlow`. Each step yields the requests for the
documents to try, in the order :mod:`ostiary.client.discovery` gives, and leaves what it
found on ``_prm`` / ``_metadata``; ``OAuthFlow._discover`` turns that into a
:class:`~ostiary.client.flow_types.ServerContext`. MCP 2025-03-26 servers without PRM are handled
by :meth:`DiscoverySteps._discover_legacy`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from ostiary.client._http import HttpRequest
from ostiary.client.discovery import (
    AuthorizationServerMetadata,
    ProtectedResourceMetadata,
    ResourceMismatchError,
    as_metadata_urls,
    canonical_resource,
    parse_as_metadata,
    parse_prm,
    prm_urls,
    require_secure_urls,
)
from ostiary.errors import DiscoveryError

if TYPE_CHECKING:
    from ostiary.client.challenges import BearerChallenge
    from ostiary.client.flow_types import Step
    from ostiary.client.registration import ClientConfig

__all__ = ["DiscoverySteps"]


class DiscoverySteps:
    """Discovery steps of :class:`~ostiary.client.flow.OAuthFlow`; state set by its ``__init__``."""

    client: ClientConfig
    _prm: ProtectedResourceMetadata | None
    _metadata: AuthorizationServerMetadata | None

    async def _discover_prm(self, server_url: str, challenge: BearerChallenge | None) -> Step:
        problems: list[str] = []
        hint = challenge.resource_metadata if challenge else None
        if not self.client.allow_insecure_http:
            require_secure_urls([server_url, hint], "protected resource metadata")
        for url in prm_urls(server_url, hint):
            response = yield HttpRequest.get_json(url)
            if response.status_code != 200:
                problems.append(f"{url}: HTTP {response.status_code}")
                continue
            body = response.json()
            if body is None:
                problems.append(f"{url}: not JSON")
                continue
            try:
                self._prm = parse_prm(body, url, server_url)
            except ResourceMismatchError:
                raise  # fatal: never authorize for a resource the metadata is not about
            except DiscoveryError as exc:
                problems.append(str(exc))
                continue
            return
        not_found = all(p.endswith("HTTP 404") for p in problems)
        if not_found and self.client.legacy_discovery:
            self._prm = None  # a 2025-03-26 server: no PRM at all (see _discover_legacy)
            return
        raise DiscoveryError(
            f"no protected resource metadata found for {server_url} ({'; '.join(problems)})"
        )

    async def _discover_legacy(self, server_url: str) -> Step:
        """MCP 2025-03-26 back-compat: the MCP server's origin is the authorization server.

        Its RFC 8414 metadata is read from the origin root; when there is none, the
        2025-03-26 default endpoints ``/authorize``, ``/token`` and ``/register`` are used.
        """
        parts = urlsplit(server_url)
        origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        self._prm = ProtectedResourceMetadata(
            resource=canonical_resource(server_url), authorization_servers=[origin]
        )
        response = yield HttpRequest.get_json(f"{origin}/.well-known/oauth-authorization-server")
        body = response.json() if response.status_code == 200 else None
        if body is not None:
            self._metadata = parse_as_metadata(body, origin, origin)
            return
        if response.status_code != 404:
            raise DiscoveryError(
                f"authorization server metadata at {origin} answered HTTP {response.status_code}"
            )
        self._metadata = AuthorizationServerMetadata(
            issuer=origin,
            authorization_endpoint=f"{origin}/authorize",
            token_endpoint=f"{origin}/token",
            registration_endpoint=f"{origin}/register",
            # 2025-03-26 made PKCE mandatory for every client, so S256 is assumed.
            code_challenge_methods_supported=["S256"],
        )

    async def _discover_as(self, issuer: str) -> Step:
        problems: list[str] = []
        for url in as_metadata_urls(issuer):
            response = yield HttpRequest.get_json(url)
            if response.status_code != 200:
                problems.append(f"{url}: HTTP {response.status_code}")
                continue
            body = response.json()
            if body is None:
                problems.append(f"{url}: not JSON")
                continue
            try:
                self._metadata = parse_as_metadata(body, url, issuer)
            except DiscoveryError as exc:
                problems.append(str(exc))
                continue
            return
        raise DiscoveryError(
            f"no usable authorization server metadata for {issuer} ({'; '.join(problems)})"
        )
