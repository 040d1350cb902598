"""DPoP proof validation shared by the AS and the RS (RFC 9449 §4.2-§4.3, §7.1, §11.1).

Sans-IO: :func:`validate_proof` checks one ``DPoP`` header against the request it came with
and returns the proof's key thumbprint (RFC 7638), ``jti``, ``iat`` and ``nonce``. What needs
state stays with the caller: single use of ``jti`` (a :class:`ReplayCache`, shared across
nodes when it is the storage; :func:`remember_proof` does the bookkeeping) and the server
nonce (:mod:`ostiary.core.dpop_nonce`).

The checks follow RFC 9449 §4.3 in order: exactly one header; a JWS whose ``typ`` is
``dpop+jwt``; an asymmetric ``alg`` from the allow-list (never ``none`` or an HMAC); a ``jwk``
header holding a public key only; a signature that verifies with that key; ``htm`` and
``htu`` naming this request (``htu`` compared after normalisation: scheme and host lower
case, default port dropped, no query or fragment); ``iat`` inside the window; and, at a
resource server, ``ath`` = base64url(SHA-256(access token)).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import JWKRegistry, Key

from ostiary.core.urls import split_url
from ostiary.errors import InvalidDpopProofError

__all__ = [
    "DPOP_ALGORITHMS",
    "PROOF_TYPE",
    "DPoPProof",
    "ProofWindow",
    "ReplayCache",
    "access_token_hash",
    "jwk_thumbprint",
    "normalize_htu",
    "remember_proof",
    "validate_proof",
]

#: RFC 9449 §5.1 ``dpop_signing_alg_values_supported``: asymmetric algorithms only.
DPOP_ALGORITHMS: Final = ("ES256", "EdDSA", "RS256", "PS256")
PROOF_TYPE: Final = "dpop+jwt"
#: A proof is a few hundred bytes (an RSA-4096 key makes it about 1.5 kB).
MAX_PROOF_BYTES: Final = 8192
MAX_JTI_LENGTH: Final = 256
MIN_RSA_BITS: Final = 2048
#: JWK members only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_TYPES: Final = frozenset({"EC", "RSA", "OKP"})
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}


class _ProofRegistry(jws.JWSRegistry):
    # The public key travels in the protected header: joserfc's 512-byte default is too
    # small for an RSA ``jwk``.
    max_header_length = 4096
    max_payload_length = 4096
    max_signature_length = 1024


@dataclass(frozen=True, slots=True)
class ProofWindow:
    """How far a proof's ``iat`` may lie from the server clock (RFC 9449 §11.1)."""

    max_age: int = 60
    max_future: int = 5


@dataclass(frozen=True, slots=True)
class DPoPProof:
    """A validated proof: the key it proves possession of and its one-time values."""

    jkt: str
    jti: str
    iat: int
    nonce: str | None


class ReplayCache(Protocol):
    """The storage's one-time-value cache (``core.storage.ReplayCache``)."""

    async def remember_jti(self, tenant_id: str, key: str, expires_at: int, now: int) -> bool: ...


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def access_token_hash(access_token: str) -> str:
    """RFC 9449 §4.2 ``ath``: base64url of the SHA-256 of the ASCII access token."""
    return _b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of a public JWK, base64url: the ``cnf.jkt`` value."""
    return JWKRegistry.import_key(dict(jwk)).thumbprint()


def normalize_htu(url: str) -> str | None:
    """RFC 9449 §4.3 (RFC 3986 §6.2.2-3): the form ``htu`` values are compared in.

    Scheme and host lower case, the default port dropped, an empty path made ``/``, query
    and fragment removed. None for a URL that is not absolute http(s).

    Example:
        >>> normalize_htu("HTTPS://AS.Example:443/token?x=1#f")
        'https://as.example/token'
    """
    parts = split_url(url)
    if parts is None or parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or _DEFAULT_PORTS[scheme] == port else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def _invalid(description: str, detail: str | None = None) -> InvalidDpopProofError:
    return InvalidDpopProofError(description, detail=detail)


def _header_of(proof: str) -> dict[str, Any]:
    try:
        header = jws.extract_compact(proof.encode("ascii"), registry=_ProofRegistry()).headers()
    except (JoseError, ValueError, UnicodeEncodeError) as exc:
        raise _invalid("The DPoP proof is not a signed JWT.", repr(exc)) from None
    return dict(header)


def _public_key(header: Mapping[str, Any]) -> Key:
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or jwk.get("kty") not in _KEY_TYPES:
        raise _invalid("The DPoP proof header must carry the public key as jwk.")
    if _PRIVATE_MEMBERS & jwk.keys():
        # RFC 9449 §4.3 item 7: the jwk "does not contain a private key".
        raise _invalid("The DPoP proof jwk must not contain a private key.")
    try:
        members = tuple(sorted((k, v) for k, v in jwk.items() if isinstance(v, str)))
        key = _imported(members) if len(members) == len(jwk) else JWKRegistry.import_key(jwk)
    except (JoseError, ValueError, TypeError) as exc:
        raise _invalid("The DPoP proof jwk is not a usable public key.", repr(exc)) from None
    if key.key_type == "RSA" and key.raw_value.key_size < MIN_RSA_BITS:  # type: ignore[union-attr]
        raise _invalid("The DPoP proof RSA key is shorter than 2048 bits.")
    return key


@functools.lru_cache(maxsize=1024)
def _imported(members: tuple[tuple[str, str], ...]) -> Key:
    """A public JWK imported once: a client signs every proof with the same key, and the
    import (point decoding and validation) cost more than the signature check itself."""
    return JWKRegistry.import_key(dict(members))


def _verified_claims(proof: str, key: Key, alg: str) -> dict[str, Any]:
    with warnings.catch_warnings():
        # joserfc flags "EdDSA" as deprecated by RFC 9864; RFC 9449 clients still send it.
        warnings.simplefilter("ignore", SecurityWarning)
        try:
            obj = jws.deserialize_compact(
                proof, key, algorithms=[alg], registry=_ProofRegistry(algorithms=[alg])
            )
        except (JoseError, ValueError, TypeError) as exc:
            raise _invalid("The DPoP proof signature does not verify.", repr(exc)) from None
    try:
        claims = json.loads(obj.payload)
    except ValueError:
        claims = None
    if not isinstance(claims, dict):
        raise _invalid("The DPoP proof payload is not a JSON object.")
    return claims


def _check_request(claims: Mapping[str, Any], method: str, url: str) -> None:
    if claims.get("htm") != method:
        raise _invalid("The DPoP proof htm does not match the request method.")
    htu = claims.get("htu")
    expected = normalize_htu(url)
    if not isinstance(htu, str) or expected is None or normalize_htu(htu) != expected:
        raise _invalid(
            "The DPoP proof htu does not match the request URL.", f"htu={htu!r} want={expected}"
        )


def _check_iat(claims: Mapping[str, Any], now: int, window: ProofWindow) -> int:
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise _invalid("The DPoP proof iat must be a number.")
    if iat > now + window.max_future:
        raise _invalid("The DPoP proof iat is in the future.", f"iat={iat} now={now}")
    if iat < now - window.max_age:
        raise _invalid("The DPoP proof is too old.", f"iat={iat} now={now}")
    return int(iat)


def validate_proof(
    values: Sequence[str],
    *,
    method: str,
    url: str,
    now: int,
    window: ProofWindow,
    access_token: str | None = None,
    algorithms: Sequence[str] = DPOP_ALGORITHMS,
) -> DPoPProof:
    """Check the ``DPoP`` header values of one request (RFC 9449 §4.3).

    Args:
        values: Every ``DPoP`` header value the request carried (exactly one is allowed).
        method: The request method, compared with ``htm``.
        url: The URL the server is known by for this request (built from configured public
            URLs, never from Host or X-Forwarded headers), compared with ``htu``.
        now: The server clock.
        window: How far ``iat`` may lie in the past and future.
        access_token: At a resource server, the token the proof must carry ``ath`` for.
        algorithms: The acceptable ``alg`` values.

    Returns:
        The proof's key thumbprint, ``jti``, ``iat`` and ``nonce``.

    Raises:
        InvalidDpopProofError: Any check failed; the description says which.
    """
    if len(values) != 1:
        raise _invalid("Send exactly one DPoP header.")
    proof = values[0].strip()
    if not proof or len(proof) > MAX_PROOF_BYTES:
        raise _invalid("The DPoP proof is empty or too large.")
    header = _header_of(proof)
    if header.get("typ") != PROOF_TYPE:
        raise _invalid("The DPoP proof typ must be dpop+jwt.")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise _invalid("The DPoP proof alg is not supported.", f"alg={alg!r}")
    key = _public_key(header)
    claims = _verified_claims(proof, key, alg)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise _invalid("The DPoP proof jti is missing or too long.")
    _check_request(claims, method, url)
    iat = _check_iat(claims, now, window)
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise _invalid("The DPoP proof ath does not match the access token.")
    nonce = claims.get("nonce")
    return DPoPProof(
        jkt=key.thumbprint(),
        jti=jti,
        iat=iat,
        nonce=nonce if isinstance(nonce, str) else None,
    )


async def remember_proof(
    cache: ReplayCache,
    tenant_id: str,
    proof: DPoPProof,
    *,
    scope: str,
    now: int,
    window: ProofWindow,
) -> None:
    """Spend the proof's ``jti`` (RFC 9449 §11.1); a second use is ``invalid_dpop_proof``.

    The key names the key thumbprint too, so two clients picking the same ``jti`` never
    collide; ``scope`` separates the token endpoint from each resource. A ``jti`` is kept
    until its ``iat`` leaves the window, after which the proof is refused as too old anyway.

    Raises:
        InvalidDpopProofError: The proof was seen before.
    """
    expires_at = max(proof.iat, now) + window.max_age + window.max_future + 1
    key = f"dpop:{scope}:{proof.jkt}:{proof.jti}"
    if not await cache.remember_jti(tenant_id, key, expires_at, now):
        raise _invalid("The DPoP proof was already used.", f"jti={proof.jti}")
