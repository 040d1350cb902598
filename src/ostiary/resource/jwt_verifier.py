"""Local verification of RFC 9068 JWT access tokens against the issuer's JWKS (RFC 9068 §4).

Keys are fetched once, imported once, and refetched on an unknown ``kid`` at most every
``min_refetch_interval`` seconds (key rollover without letting garbage tokens hammer the AS).
Verified tokens are remembered, keyed by a SHA-256 of the token, so a client repeating its
token pays one dictionary lookup instead of one signature check.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import httpx
from joserfc.jwk import JWKRegistry
from joserfc.jws import JWSRegistry

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
    log,
)
from ostiary.ttl_cache import TtlCache

__all__ = ["DEFAULT_ALGORITHMS", "JWTVerifier"]

#: Asymmetric only: ``none`` and the HS* family are never accepted (RFC 9068 §4, RFC 8725 §3.1).
DEFAULT_ALGORITHMS: Final = ("ES256", "EdDSA", "Ed25519", "RS256")
_FORBIDDEN_ALGORITHMS: Final = frozenset({"none", "HS256", "HS384", "HS512"})
_AT_JWT_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
_MAX_JWKS_BYTES: Final = 256 * 1024


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@dataclass(frozen=True, slots=True)
class _CachedKey:
    key: Any  # a joserfc key object, imported once
    kty: str
    alg: str | None


class JWTVerifier:
    """Verify RFC 9068 JWT access tokens locally with the issuer's JWKS.

    Args:
        issuer: Expected ``iss``, compared exactly (RFC 9068 §4 step 3).
        audience: This resource's canonical URL; ``aud`` must contain it (RFC 8707 §2).
        jwks_uri: Where the AS publishes its keys. None: read ``jwks_uri`` from the issuer's
            RFC 8414 metadata on first use (the issuer must match it exactly).
        algorithms: Allowed ``alg`` values; ``none`` and HS* are refused at construction.
        leeway: Clock skew tolerated on ``exp``/``nbf``/``iat``, in seconds.
        http_client: Client used for the JWKS; one with a 5 s timeout is made otherwise.
        min_refetch_interval: Minimum seconds between two JWKS fetches (unknown-``kid``
            refetches included).
        jwks_max_age: Seconds after which the JWKS is refreshed at the next verification,
            so a key the AS withdrew stops being trusted.
        cache_size: Verified tokens remembered (0 disables).
        clock: Seconds since the epoch; tests pass a fixed clock.

    Raises:
        ValueError: ``algorithms`` names a symmetric or ``none`` algorithm, or one unknown.

    Example:
        >>> verifier = JWTVerifier("https://auth.example.com", "https://mcp.example.com/mcp")
        >>> verifier.jwks_uri is None  # read from the issuer's RFC 8414 metadata on first use
        True
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_uri: str | None = None,
        *,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        leeway: int = 30,
        http_client: httpx.AsyncClient | None = None,
        min_refetch_interval: float = 30,
        jwks_max_age: float = 3600,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        bad = [a for a in algorithms if a in _FORBIDDEN_ALGORITHMS or a.startswith("HS")]
        unknown = [a for a in algorithms if a not in JWSRegistry.algorithms]
        if bad or unknown or not algorithms:
            raise ValueError(f"algorithms must be known asymmetric JWS algorithms: {algorithms}")
        self.issuer = issuer
        self.audience = audience
        self.jwks_uri = jwks_uri
        self.algorithms = frozenset(algorithms)
        self.leeway = leeway
        self.min_refetch_interval = min_refetch_interval
        self.jwks_max_age = jwks_max_age
        self._clock = clock
        self._http = http_client
        self._audience_ok = _AudienceCheck(audience)
        self._keys: dict[str, _CachedKey] = {}
        self._anonymous_keys: list[_CachedKey] = []
        self._fetched_at: float | None = None  # monotonic
        self._loaded = False
        self._lock = asyncio.Lock()
        # Verdicts by token hash (never the raw token): a principal, or the error to raise.
        self._cache: TtlCache[bytes, Principal | InvalidTokenError] = TtlCache(cache_size)
        self.jwks_fetches = 0

    @classmethod
    async def from_issuer(
        cls,
        issuer: str,
        audience: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        **options: Any,
    ) -> JWTVerifier:
        """Build a verifier from the issuer's RFC 8414 metadata (its ``jwks_uri``).

        Example:
            >>> import asyncio, httpx
            >>> issuer = "https://auth.example.com"
            >>> metadata = {"issuer": issuer, "jwks_uri": f"{issuer}/jwks"}  # ostiary's path
            >>> answer = httpx.MockTransport(lambda request: httpx.Response(200, json=metadata))
            >>> http = httpx.AsyncClient(transport=answer)
            >>> verifier = asyncio.run(
            ...     JWTVerifier.from_issuer(issuer, "https://mcp.example.com/mcp", http_client=http)
            ... )
            >>> verifier.jwks_uri
            'https://auth.example.com/jwks'
        """
        metadata = await fetch_authorization_server_metadata(issuer, http_client=http_client)
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError(f"{issuer} publishes no jwks_uri")
        return cls(issuer, audience, jwks_uri, http_client=http_client, **options)

    async def verify(self, token: str) -> Principal:
        """Verify a JWT access token; see :class:`TokenVerifier`."""
        now = self._clock()
        digest = _token_hash(token)
        cached = self._cache.get(digest, now)
        if isinstance(cached, Principal):  # the cache deadline is exp + leeway
            return cached
        principal = await self._verify_uncached(token, now)
        deadline = (principal.expires_at or now) + self.leeway
        self._cache.put(digest, principal, deadline)
        return principal

    async def refresh(self) -> bool:
        """Fetch the JWKS now, ignoring the rate limit; True when keys were installed.

        Call it at start-up to fail fast on a wrong ``jwks_uri``.
        """
        async with self._lock:
            return await self._fetch_jwks()

    async def _verify_uncached(self, token: str, now: float) -> Principal:
        header, signing_input, signature, payload_segment = self._split(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidTokenError(detail=f"alg {alg!r} not allowed")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _AT_JWT_TYPES:
            # RFC 9068 §4: reject JWTs whose typ is not at+jwt (ID tokens, assertions, ...).
            raise InvalidTokenError(detail=f"typ {typ!r} is not at+jwt")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidTokenError(detail="kid is not a string")
        candidates = await self._keys_for(kid, alg)
        if not any(self._signature_ok(alg, k, signing_input, signature) for k in candidates):
            raise InvalidTokenError(detail=f"bad signature (kid={kid!r})")
        try:
            claims = json.loads(_b64decode(payload_segment))
        except (ValueError, binascii.Error) as exc:
            raise InvalidTokenError(detail="payload is not JSON") from exc
        if not isinstance(claims, dict):
            raise InvalidTokenError(detail="payload is not a JSON object")
        return self._principal(claims, now)

    @staticmethod
    def _split(token: str) -> tuple[dict[str, Any], bytes, bytes, str]:
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidTokenError(detail=f"not a compact JWS ({len(parts)} segments)")
        try:
            header = json.loads(_b64decode(parts[0]))
            signature = _b64decode(parts[2])
        except (ValueError, binascii.Error) as exc:
            raise InvalidTokenError(detail="undecodable JWS header or signature") from exc
        if not isinstance(header, dict):
            raise InvalidTokenError(detail="JWS header is not an object")
        if "crit" in header:
            # RFC 7515 §4.1.11: we understand no extensions, so any crit is fatal.
            raise InvalidTokenError(detail="crit header present")
        return header, f"{parts[0]}.{parts[1]}".encode("ascii"), signature, parts[1]

    @staticmethod
    def _signature_ok(alg: str, cached: _CachedKey, signing_input: bytes, sig: bytes) -> bool:
        model = JWSRegistry.algorithms[alg]
        if cached.kty != model.key_type or (cached.alg is not None and cached.alg != alg):
            return False
        try:
            return bool(model.verify(signing_input, sig, cached.key))
        except Exception:  # a malformed signature is a failed check, not a crash
            return False

    def _principal(self, claims: dict[str, Any], now: float) -> Principal:
        if claims.get("iss") != self.issuer:
            raise InvalidTokenError(detail=f"iss {claims.get('iss')!r} != {self.issuer!r}")
        audience = _audiences(claims.get("aud"))
        if not self._audience_ok(audience):
            raise InvalidTokenError(
                "The access token was issued for another resource.",
                detail=f"aud {claims.get('aud')!r} does not contain {self.audience!r}",
            )
        expires_at = _check_times(claims, now, self.leeway)
        subject, client_id = claims.get("sub"), claims.get("client_id")
        if not isinstance(subject, str) or not isinstance(client_id, str):
            raise InvalidTokenError(detail="sub or client_id missing (RFC 9068 §2.2)")
        jti = claims.get("jti")
        return Principal(
            subject=subject,
            client_id=client_id,
            scopes=_scopes(claims),
            audience=audience,
            issuer=self.issuer,
            expires_at=expires_at,
            token_id=jti if isinstance(jti, str) else None,
            claims=MappingProxyType(claims),
        )

    async def _keys_for(self, kid: str | None, alg: str) -> list[_CachedKey]:
        if not self._loaded or self._stale():
            await self._load()
        found = self._lookup(kid)
        if found:
            return found
        async with self._lock:
            found = self._lookup(kid)  # another request may have refetched meanwhile
            if not found and self._may_refetch():
                await self._fetch_jwks()  # key rollover: the AS may have published a new kid
                found = self._lookup(kid)
        # RFC 7515 §4.1.4: kid is only a hint; keys published without one stay candidates.
        return found or list(self._anonymous_keys)

    async def _load(self) -> None:
        async with self._lock:
            if self._loaded and not self._stale():
                return
            if self._may_refetch():
                await self._fetch_jwks()
            if not self._loaded:
                # No key was ever obtained: the AS is unreachable, not the token bad.
                raise TemporarilyUnavailableError(detail=f"no JWKS from {self.jwks_uri}")

    def _lookup(self, kid: str | None) -> list[_CachedKey]:
        if kid is None:
            return [*self._keys.values(), *self._anonymous_keys]
        key = self._keys.get(kid)
        return [key] if key is not None else []

    def _stale(self) -> bool:
        return (
            self._fetched_at is not None
            and time.monotonic() - self._fetched_at >= self.jwks_max_age
            and self._may_refetch()
        )

    def _may_refetch(self) -> bool:
        return (
            self._fetched_at is None
            or time.monotonic() - self._fetched_at >= self.min_refetch_interval
        )

    async def _fetch_jwks(self) -> bool:
        """Fetch and install the JWKS; on failure keep the keys we have and return False."""
        self.jwks_fetches += 1
        self._fetched_at = time.monotonic()  # failures count too: that is the rate limit
        try:
            document = await self._download()
        except TemporarilyUnavailableError as exc:
            log.warning(
                "jwks.fetch_failed", extra={"jwks_uri": self.jwks_uri, "detail": exc.detail}
            )
            return False
        return self._install(document)

    async def _resolve_jwks_uri(self) -> str:
        if self.jwks_uri is None:
            try:
                metadata = await fetch_authorization_server_metadata(
                    self.issuer, http_client=self._http
                )
            except ValueError as exc:  # issuer mismatch: a configuration error, loudly logged
                log.error("jwks.metadata_issuer_mismatch", extra={"detail": str(exc)})
                raise TemporarilyUnavailableError(detail=str(exc)) from exc
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise TemporarilyUnavailableError(detail=f"{self.issuer} publishes no jwks_uri")
            self.jwks_uri = jwks_uri
        return self.jwks_uri

    async def _download(self) -> Any:
        jwks_uri = await self._resolve_jwks_uri()
        client = self._http or httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS)
        try:
            response = await client.get(jwks_uri, headers={"Accept": "application/json"})
            if response.status_code != 200 or len(response.content) > _MAX_JWKS_BYTES:
                raise TemporarilyUnavailableError(detail=f"JWKS answered {response.status_code}")
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise TemporarilyUnavailableError(detail=f"JWKS fetch failed: {exc!r}") from exc
        finally:
            if self._http is None:
                await client.aclose()

    def _install(self, document: Any) -> bool:
        raw_keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(raw_keys, list):
            log.warning("jwks.malformed", extra={"jwks_uri": self.jwks_uri})
            return False
        keys: dict[str, _CachedKey] = {}
        anonymous: list[_CachedKey] = []
        for data in raw_keys:
            cached = _import_public_key(data)
            if cached is None:
                continue
            kid = data.get("kid")
            if isinstance(kid, str):
                keys[kid] = cached
            else:
                anonymous.append(cached)
        self._keys, self._anonymous_keys = keys, anonymous
        self._loaded = True
        return True


def _import_public_key(data: Any) -> _CachedKey | None:
    """Import one JWK for signature checks; symmetric, private-only or odd keys are skipped."""
    if not isinstance(data, dict) or data.get("kty") not in ("EC", "OKP", "RSA"):
        return None
    if data.get("use", "sig") != "sig":
        return None
    public = {k: v for k, v in data.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
    try:
        key = JWKRegistry.import_key(public)
    except Exception:  # joserfc raises several types for bad key material
        log.warning("jwks.key_skipped", extra={"kid": data.get("kid")})
        return None
    alg = data.get("alg")
    return _CachedKey(key=key, kty=str(data["kty"]), alg=alg if isinstance(alg, str) else None)
