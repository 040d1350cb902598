"""Upstream OpenID discovery and ID token validation (OIDC Core §3.1.3.7; Discovery §4).

The ID token is the upstream's statement of who logged in, so every rule of OpenID Connect
Core §3.1.3.7 that applies to the code flow is checked: a signature by a key in the
provider's JWKS (fetched through the SSRF guard, re-fetched once when an unknown ``kid``
appears, i.e. after a key rotation) with an asymmetric algorithm the provider announced;
``iss`` equal to the discovered issuer; ``aud`` containing our client_id (and ``azp`` equal
to it when there are several audiences); ``exp`` in the future and ``iat`` not in the future
(both with a small leeway); and ``nonce`` matching the one this browser's login sent, which
we keep only as a hash.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError, SecurityWarning
from joserfc.jwk import KeySet

from ostiary.core.secrets import hash_secret, secrets_equal
from ostiary.federation.http import UpstreamError, UpstreamHttp

#: Asymmetric JWS algorithms accepted on ID tokens. HS* would make our client secret the
#: verification key (OIDC Core §10.1); "none" is never accepted.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
    | {"Ed25519"}
)
LEEWAY_SECONDS = 60
#: Shortest time between two JWKS fetches triggered by an unknown ``kid``.
JWKS_REFETCH_SECONDS = 60
WELL_KNOWN = "/.well-known/openid-configuration"


class IdTokenError(UpstreamError):
    """The ID token failed validation; ``reason`` says which rule."""


@dataclass(frozen=True, slots=True)
class OidcMetadata:
    """What the federation needs of a provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    id_token_algorithms: frozenset[str]
    token_auth_methods: tuple[str, ...]
    #: RFC 9207: the provider adds ``iss`` to its authorization responses.
    iss_parameter: bool

    @classmethod
    def parse(cls, data: Mapping[str, Any], discovery_url: str) -> OidcMetadata:
        """Validate a discovery document fetched from ``discovery_url`` (Discovery §4.3)."""
        issuer = _text(data, "issuer")
        if discovery_url.endswith(WELL_KNOWN) and issuer.rstrip("/") != discovery_url[
            : -len(WELL_KNOWN)
        ].rstrip("/"):
            raise UpstreamError(
                "the discovery document's issuer does not match its URL",
                detail=f"issuer {issuer!r} from {discovery_url!r}",
            )
        algorithms = data.get("id_token_signing_alg_values_supported", ["RS256"])
        if not isinstance(algorithms, list):
            raise UpstreamError("id_token_signing_alg_values_supported is not a list")
        methods = data.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
        userinfo = data.get("userinfo_endpoint")
        return cls(
            issuer=issuer,
            authorization_endpoint=_text(data, "authorization_endpoint"),
            token_endpoint=_text(data, "token_endpoint"),
            jwks_uri=_text(data, "jwks_uri"),
            userinfo_endpoint=userinfo if isinstance(userinfo, str) else None,
            id_token_algorithms=frozenset(a for a in algorithms if a in ASYMMETRIC_ALGORITHMS),
            token_auth_methods=tuple(m for m in methods if isinstance(m, str))
            if isinstance(methods, list)
            else (),
            iss_parameter=data.get("authorization_response_iss_parameter_supported") is True,
        )


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise UpstreamError(f"the discovery document has no {name}")
    return value


class ProviderKeys:
    """A provider's JWKS, cached, and re-fetched once when a token names an unknown key."""

    def __init__(self, http: UpstreamHttp, jwks_uri: str, clock: Callable[[], int]) -> None:
        self._http = http
        self._jwks_uri = jwks_uri
        self._clock = clock
        self._keys: KeySet | None = None
        self._fetched_at = 0

    async def key_set(self, *, refresh: bool = False) -> KeySet:
        now = self._clock()
        stale = refresh and now - self._fetched_at >= JWKS_REFETCH_SECONDS
        if self._keys is None or stale:
            document = await self._http.get_document(self._jwks_uri)
            try:
                self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError):
                raise UpstreamError("the provider's JWKS is not a valid key set") from None
            self._fetched_at = now
        return self._keys


async def validate_id_token(
    id_token: str,
    *,
    keys: ProviderKeys,
    metadata: OidcMetadata,
    client_id: str,
    nonce_hash: str,
    now: int,
) -> dict[str, Any]:
    """The ID token's claims once every check of OIDC Core §3.1.3.7 passed.

    Args:
        id_token: The compact JWS from the token response.
        keys: The provider's key cache.
        metadata: The provider's discovery metadata (issuer, algorithms).
        client_id: Our client_id at the provider (the expected audience).
        nonce_hash: ``hash_secret`` of the nonce sent in the authorization request.
        now: Current Unix time.

    Raises:
        IdTokenError: A check failed; ``reason`` names it.
    """
    algorithms = sorted(metadata.id_token_algorithms) or ["RS256"]
    token = await _verified(id_token, keys, algorithms)
    claims = dict(token.claims)
    _check_claims(claims, metadata.issuer, client_id, now)
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not secrets_equal(hash_secret(nonce), nonce_hash):
        raise IdTokenError("the ID token's nonce does not match this login")
    return claims


async def _verified(id_token: str, keys: ProviderKeys, algorithms: list[str]) -> jwt.Token:
    for refresh in (False, True):
        key_set = await keys.key_set(refresh=refresh)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SecurityWarning)
                return jwt.decode(id_token, key_set, algorithms=algorithms)
        except InvalidKeyIdError:
            continue
        except (JoseError, ValueError, TypeError) as exc:
            raise IdTokenError(
                "the ID token's signature is not valid", detail=type(exc).__name__
            ) from None
    raise IdTokenError("the ID token is signed with a key the provider does not publish")


def _check_claims(claims: dict[str, Any], issuer: str, client_id: str, now: int) -> None:
    if claims.get("iss") != issuer:
        raise IdTokenError("the ID token was issued by another issuer")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        raise IdTokenError("the ID token is not meant for this server (aud)")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise IdTokenError("the ID token is not meant for this server (azp)")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or exp + LEEWAY_SECONDS <= now:
        raise IdTokenError("the ID token has expired")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool) or iat - LEEWAY_SECONDS > now:
        raise IdTokenError("the ID token's issue time is in the future")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise IdTokenError("the ID token has no usable sub")
