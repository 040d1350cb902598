"""Token verification by RFC 7662 introspection, with a bounded cache (RFC 7662 §2, §4).

Answers are cached for ``cache_ttl`` seconds but never beyond the token's ``exp``; the cache
is keyed by a hash of the token. Concurrent verifications of one uncached token share one
call to the authorization server.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import httpx

from ostiary.errors import InvalidTokenError, TemporarilyUnavailableError
from ostiary.resource.principal import (
    HTTP_TIMEOUT_SECONDS,
    Principal,
    _AudienceCheck,
    _audiences,
    _check_times,
    _scopes,
    _token_hash,
    fetch_authorization_server_metadata,
)
from ostiary.ttl_cache import TtlCache

__all__ = ["IntrospectionVerifier"]


class IntrospectionVerifier:
    """Verify tokens with the AS's RFC 7662 introspection endpoint, with a bounded cache.

    Args:
        introspection_endpoint: ``{issuer}/introspect``.
        client_id: This resource server's client id at the AS.
        client_secret: Its secret (sent with client_secret_basic, RFC 6749 §2.3.1).
        audience: This resource's canonical URL; the response's ``aud`` must contain it.
        issuer: When given, the response's ``iss`` (if any) must equal it.
        cache_ttl: Seconds an answer is reused; never beyond the token's ``exp``. A revoked
            token can stay accepted this long: use 0 for immediate revocation.
        max_entries: Cache bound (least recently used answers are dropped).
        leeway: Clock skew tolerated on ``exp``/``nbf``/``iat``.
        http_client: Client for the AS; one with a 5 s timeout is made otherwise.
        clock: Seconds since the epoch.

    Example:
        >>> verifier = IntrospectionVerifier(
        ...     "https://auth.example.com/introspect", "mcp-rs", "s3cret",
        ...     "https://mcp.example.com/mcp",
        ... )
    """

    def __init__(
        self,
        introspection_endpoint: str,
        client_id: str,
        client_secret: str,
        audience: str,
        *,
        issuer: str | None = None,
        cache_ttl: float = 60,
        max_entries: int = 10_000,
        leeway: int = 30,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.introspection_endpoint = introspection_endpoint
        self.audience = audience
        self.issuer = issuer
        self.cache_ttl = cache_ttl
        self.leeway = leeway
        self._clock = clock
        self._http = http_client
        self._audience_ok = _AudienceCheck(audience)
        # Verdicts by token hash (never the raw token): a principal, or the error to raise.
        self._cache: TtlCache[bytes, Principal | InvalidTokenError] = TtlCache(max_entries)
        self._inflight: dict[bytes, asyncio.Future[Principal]] = {}
        # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
        pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
        self._authorization = "Basic " + base64.b64encode(pair).decode("ascii")
        self.introspections = 0

    @classmethod
    async def from_issuer(
        cls,
        issuer: str,
        client_id: str,
        client_secret: str,
        audience: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        **options: Any,
    ) -> IntrospectionVerifier:
        """Build a verifier from the issuer's metadata (``introspection_endpoint``)."""
        metadata = await fetch_authorization_server_metadata(issuer, http_client=http_client)
        endpoint = metadata.get("introspection_endpoint")
        if not isinstance(endpoint, str):
            raise ValueError(f"{issuer} publishes no introspection_endpoint")
        options.setdefault("issuer", issuer)
        return cls(endpoint, client_id, client_secret, audience, http_client=http_client, **options)

    async def verify(self, token: str) -> Principal:
        """Verify ``token`` by introspection; see :class:`TokenVerifier`.

        Concurrent verifications of one uncached token share a single introspection call.
        """
        now = self._clock()
        digest = _token_hash(token)
        cached = self._cache.get(digest, now)
        if isinstance(cached, InvalidTokenError):
            raise cached
        if cached is not None:
            return cached
        task = self._inflight.get(digest)
        if task is None:
            task = asyncio.ensure_future(self._verify_uncached(token, digest, now))
            self._inflight[digest] = task
            task.add_done_callback(lambda _: self._inflight.pop(digest, None))
        # shield: one caller going away must not cancel the answer the others wait for.
        return await asyncio.shield(task)

    async def _verify_uncached(self, token: str, digest: bytes, now: float) -> Principal:
        try:
            principal = self._principal(await self._introspect(token), now)
        except InvalidTokenError as exc:
            self._cache.put(digest, exc, now + self.cache_ttl)
            raise
        deadline = now + self.cache_ttl
        if principal.expires_at is not None:
            deadline = min(deadline, principal.expires_at)
        self._cache.put(digest, principal, deadline)
        return principal

    async def _introspect(self, token: str) -> dict[str, Any]:
        self.introspections += 1
        client = self._http or httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS)
        try:
            response = await client.post(
                self.introspection_endpoint,
                data={"token": token, "token_type_hint": "access_token"},
                headers={"Authorization": self._authorization, "Accept": "application/json"},
            )
            body = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            raise TemporarilyUnavailableError(detail=f"introspection failed: {exc!r}") from exc
        finally:
            if self._http is None:
                await client.aclose()
        if not isinstance(body, dict):
            raise TemporarilyUnavailableError(
                detail=f"introspection answered {response.status_code}"
            )
        return body

    def _principal(self, body: dict[str, Any], now: float) -> Principal:
        if body.get("active") is not True:
            raise InvalidTokenError(detail="introspection: active is not true")
        if self.issuer is not None and body.get("iss", self.issuer) != self.issuer:
            raise InvalidTokenError(detail=f"introspection: iss {body.get('iss')!r}")
        audience = _audiences(body.get("aud"))
        if not self._audience_ok(audience):
            raise InvalidTokenError(
                "The access token was issued for another resource.",
                detail=f"introspection: aud {body.get('aud')!r} lacks {self.audience!r}",
            )
        expires_at = _check_times(body, now, self.leeway) if "exp" in body else None
        client_id = body.get("client_id")
        if not isinstance(client_id, str):
            raise InvalidTokenError(detail="introspection: client_id missing")
        subject = body.get("sub")
        jti = body.get("jti")
        iss = body.get("iss")
        return Principal(
            subject=subject if isinstance(subject, str) else client_id,
            client_id=client_id,
            scopes=_scopes(body),
            audience=audience,
            issuer=iss if isinstance(iss, str) else self.issuer,
            expires_at=expires_at,
            token_id=jti if isinstance(jti, str) else None,
            claims=MappingProxyType(body),
        )
