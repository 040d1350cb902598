"""Access-token verification for resource servers (RFC 9068 §4, RFC 7662, RFC 8707 §2).

Two verifiers implement :class:`TokenVerifier`:

* :class:`JWTVerifier` checks an RFC 9068 JWT locally against the authorization server's
  JWKS: no network call per request. Keys are fetched once, imported once, and refetched on
  an unknown ``kid`` at most every ``min_refetch_interval`` seconds (key rollover without
  letting garbage tokens hammer the AS). Verified tokens are remembered (keyed by a SHA-256
  of the token, never the token itself) so a client repeating its token pays one dictionary
  lookup instead of one signature check.
* :class:`IntrospectionVerifier` asks the AS (RFC 7662) and caches the answer for a bounded
  time that never outlives the token.

Audience binding is not optional in either: MCP forbids token passthrough, so a token whose
``aud`` does not name this resource is ``invalid_token`` (RFC 8707 §2; MCP "Token Handling").
Both raise :class:`~ostiary.errors.InvalidTokenError` for a bad token and
:class:`~ostiary.errors.TemporarilyUnavailableError` when the AS cannot be reached, so a
network blip is a 503 the client retries, not a 401 that sends the user back to log in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from joserfc.jwk import JWKRegistry
from joserfc.jws import JWSRegistry

from ostiary.errors import InvalidTokenError, TemporarilyUnavailableError

__all__ = [
    "DEFAULT_ALGORITHMS",
    "IntrospectionVerifier",
    "JWTVerifier",
    "Principal",
    "TokenVerifier",
    "canonical_resource",
    "fetch_authorization_server_metadata",
]

log = logging.getLogger("ostiary.resource")

#: Asymmetric only: ``none`` and the HS* family are never accepted (RFC 9068 §4, RFC 8725 §3.1).
DEFAULT_ALGORITHMS: Final = ("ES256", "EdDSA", "Ed25519", "RS256")
_FORBIDDEN_ALGORITHMS: Final = frozenset({"none", "HS256", "HS384", "HS512"})
_AT_JWT_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
_HTTP_TIMEOUT_SECONDS: Final = 5.0
_MAX_JWKS_BYTES: Final = 256 * 1024
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified access token speaks for. Also a Starlette ``BaseUser``-shaped object.

    Attributes:
        subject: ``sub``: the resource owner (the client itself for client_credentials).
        client_id: The OAuth client the token was issued to.
        scopes: Granted scopes, in token order.
        audience: Every ``aud`` value of the token.
        issuer: ``iss``.
        expires_at: ``exp`` (seconds since the epoch), None when the AS gave none.
        token_id: ``jti`` when present.
        claims: Every claim or introspection member, read-only.
    """

    subject: str
    client_id: str
    scopes: tuple[str, ...]
    audience: tuple[str, ...]
    issuer: str | None = None
    expires_at: int | None = None
    token_id: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    scope_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once: scope checks run on every request.
        object.__setattr__(self, "scope_set", frozenset(self.scopes))

    def has_scopes(self, needed: Iterable[str]) -> bool:
        """True when every scope in ``needed`` was granted (literally; see ScopePolicy)."""
        return self.scope_set.issuperset(needed)

    @property
    def is_authenticated(self) -> bool:
        """Starlette ``BaseUser`` protocol: always true for a verified token."""
        return True

    @property
    def display_name(self) -> str:
        """Starlette ``BaseUser`` protocol: the subject."""
        return self.subject

    @property
    def identity(self) -> str:
        """Starlette ``BaseUser`` protocol: the subject."""
        return self.subject


@runtime_checkable
class TokenVerifier(Protocol):
    """Turns a bearer token into a :class:`Principal` or refuses it."""

    async def verify(self, token: str) -> Principal:
        """Verify ``token`` for this resource.

        Raises:
            InvalidTokenError: Invalid, expired, revoked, or issued for another resource.
            TemporarilyUnavailableError: The authorization server could not be reached.
        """
        ...


def canonical_resource(url: str) -> str:
    """Normal form used to compare resource URLs: lower-case scheme and host, no default port,
    no trailing slash (MCP: clients SHOULD accept uppercase scheme/host; RFC 3986 §6.2.2-3).

    Example:
        >>> canonical_resource("HTTPS://MCP.Example.com:443/mcp/")
        'https://mcp.example.com/mcp'
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, ""))


async def fetch_authorization_server_metadata(
    issuer: str, *, http_client: httpx.AsyncClient | None = None
) -> dict[str, Any]:
    """Fetch and check RFC 8414 metadata for ``issuer`` (path-inserted well-known URL, §3.1).

    Raises:
        TemporarilyUnavailableError: The metadata could not be fetched or parsed.
        ValueError: The document's ``issuer`` differs from ``issuer`` (RFC 8414 §3.3: such
            metadata MUST NOT be used).

    Example:
        >>> # meta = await fetch_authorization_server_metadata("https://auth.example.com")
        >>> # meta["jwks_uri"]
    """
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    url = urlunsplit(
        (parts.scheme, parts.netloc, f"/.well-known/oauth-authorization-server{path}", "", "")
    )
    client = http_client or httpx.AsyncClient(timeout=_HTTP_TIMEOUT_SECONDS)
    try:
        response = await client.get(url, headers={"Accept": "application/json"})
        document = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        raise TemporarilyUnavailableError(detail=f"AS metadata fetch failed: {exc!r}") from exc
    finally:
        if http_client is None:
            await client.aclose()
    if not isinstance(document, dict):
        raise TemporarilyUnavailableError(detail=f"AS metadata at {url} unusable")
    if document.get("issuer") != issuer:
        raise ValueError(f"metadata issuer {document.get('issuer')!r} is not {issuer!r}")
    return document


def _audiences(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return ()


def _scopes(claims: Mapping[str, Any]) -> tuple[str, ...]:
    scope = claims.get("scope")
    if isinstance(scope, str):
        return tuple(dict.fromkeys(s for s in scope.split(" ") if s))
    scp = claims.get("scp")  # common non-standard list form (Entra ID, Okta)
    if isinstance(scp, list):
        return tuple(dict.fromkeys(s for s in scp if isinstance(s, str) and s))
    return ()


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class _AudienceCheck:
    """Exact match first (the fast, normal case), then the canonical form."""

    def __init__(self, audience: str) -> None:
        self.audience = audience
        self.canonical = canonical_resource(audience)

    def __call__(self, audiences: Sequence[str]) -> bool:
        if self.audience in audiences:
            return True
        return any(canonical_resource(aud) == self.canonical for aud in audiences)


def _check_times(claims: Mapping[str, Any], now: float, leeway: int) -> int:
    """Validate ``exp`` (required), ``nbf`` and ``iat``; return ``exp``."""
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise InvalidTokenError(detail="exp missing or not a number")
    if now > exp + leeway:
        raise InvalidTokenError("The access token expired.", detail=f"exp={exp} now={now:.0f}")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise InvalidTokenError(detail=f"{name} not a number")
        if value > now + leeway:
            raise InvalidTokenError(
                "The access token is not valid yet.", detail=f"{name}={value} now={now:.0f}"
            )
    return int(exp)


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@dataclass(frozen=True, slots=True)
class _CachedKey:
    key: Any  # a joserfc key object, imported once
    kty: str
    alg: str | None


class _BoundedCache:
    """LRU map from token hash to (principal or error, deadline); never holds raw tokens."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[bytes, tuple[Principal | InvalidTokenError, float]] = OrderedDict()

    def get(self, key: bytes, now: float) -> Principal | InvalidTokenError | None:
        item = self._items.get(key)
        if item is None:
            return None
        if now >= item[1]:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: bytes, value: Principal | InvalidTokenError, deadline: float) -> None:
        if self.max_entries <= 0:
            return
        self._items[key] = (value, deadline)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


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
        >>> # jwks_uri is read from https://auth.example.com/.well-known/oauth-authorization-server
        >>> verifier = JWTVerifier("https://auth.example.com", "https://mcp.example.com/mcp")
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
        self._cache = _BoundedCache(cache_size)
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
            >>> # verifier = await JWTVerifier.from_issuer(
            >>> #     "https://auth.example.com", "https://mcp.example.com/mcp")
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
        client = self._http or httpx.AsyncClient(timeout=_HTTP_TIMEOUT_SECONDS)
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
        self._cache = _BoundedCache(max_entries)
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
        client = self._http or httpx.AsyncClient(timeout=_HTTP_TIMEOUT_SECONDS)
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
