"""ID-JAG validation (draft-ietf-oauth-identity-assertion-authz-grant; RFC 7523 §3).

An ID-JAG is a JWT an enterprise identity provider signs for one user, one client and this
authorization server; the client presents it with the RFC 7523 ``jwt-bearer`` grant. This
module checks everything that needs no storage: the JOSE header (``typ`` is
``oauth-id-jag+jwt``, an asymmetric ``alg``), the trusted issuer, the signature against that
issuer's keys, ``aud`` (this server's issuer), the times, and the ``client_id`` binding.
Replay (``jti``), resource, scope and the subject's account are the grant's
(``core/grants/jwt_bearer.py``). Every refusal is ``invalid_grant`` with its own description.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

from ostiary.core.client_auth import ALLOWED_ASSERTION_ALGORITHMS, signed_claims
from ostiary.errors import InvalidGrantError
from ostiary.settings import TrustedIssuerSettings

ID_JAG_TYPE: Final = "oauth-id-jag+jwt"
MAX_ID_JAG_LENGTH: Final = 16 * 1024

#: ``(jwks_uri, refresh) -> JWK set``; ``refresh`` asks for a fresh copy (unknown ``kid``).
LoadKeys = Callable[[str, bool], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class IdJag:
    """A verified ID-JAG: who issued it, for whom, and what it may be exchanged for."""

    issuer: TrustedIssuerSettings
    subject: str
    client_id: str
    jti: str
    expires_at: int
    claims: Mapping[str, Any]

    @property
    def resources(self) -> tuple[str, ...]:
        """The ``resource`` claim (a string or an array of strings), if any."""
        value = self.claims.get("resource")
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list):
            return tuple(v for v in value if isinstance(v, str))
        return ()

    @property
    def scope(self) -> str | None:
        value = self.claims.get("scope")
        return value if isinstance(value, str) else None


def _segment(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def parse_unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JOSE header and claims, before any verification (to pick the issuer's keys)."""
    if len(assertion) > MAX_ID_JAG_LENGTH or assertion.count(".") != 2:
        raise InvalidGrantError("the assertion is not a well-formed JWT")
    header_part, payload_part, _ = assertion.split(".")
    try:
        header, claims = _segment(header_part), _segment(payload_part)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidGrantError("the assertion is not a well-formed JWT") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidGrantError("the assertion is not a well-formed JWT")
    return header, claims


def is_id_jag_type(typ: object) -> bool:
    """``typ`` names an ID-JAG; media types compare case-insensitively (RFC 7515 §4.1.9)."""
    if not isinstance(typ, str):
        return False
    return typ.lower().removeprefix("application/") == ID_JAG_TYPE


def _audience_is(aud: object, issuer: str) -> bool:
    values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    wanted = issuer.removesuffix("/")
    return any(isinstance(v, str) and v.removesuffix("/") == wanted for v in values)


def _number(claims: Mapping[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidGrantError(f"the ID-JAG {name} claim must be a number")
    return int(value)


def validate_times(claims: Mapping[str, Any], *, now: int, skew: int, max_lifetime: int) -> int:
    """RFC 7523 §3 items 4-6 with the draft's required ``iat``; returns ``exp``."""
    exp = _number(claims, "exp")
    iat = _number(claims, "iat")
    if exp is None or iat is None:
        raise InvalidGrantError("the ID-JAG must carry exp and iat")
    if exp + skew <= now:
        raise InvalidGrantError("the ID-JAG has expired")
    if iat > now + skew:
        raise InvalidGrantError("the ID-JAG was issued in the future")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + skew:
        raise InvalidGrantError("the ID-JAG is not valid yet")
    if exp - iat > max_lifetime:
        raise InvalidGrantError("the ID-JAG lifetime is too long")
    return exp


def _string_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidGrantError(f"the ID-JAG must carry a {name} claim")
    return value


def _verified(assertion: str, keys: Sequence[Key]) -> dict[str, Any]:
    claims = signed_claims(assertion, keys)
    if claims is None:
        raise InvalidGrantError("the ID-JAG signature is invalid")
    return claims


def _matching(jwks: Mapping[str, Any], kid: object) -> list[Key]:
    try:
        key_set = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidGrantError("the identity provider's keys could not be loaded") from None
    # Only public asymmetric keys: a symmetric ("oct") key would let a shared secret sign.
    usable = [k for k in key_set.keys if k.key_type in ("RSA", "EC", "OKP")]
    return [k for k in usable if kid is None or k.kid is None or k.kid == kid]


async def verify_id_jag(
    assertion: str,
    *,
    issuers: Sequence[TrustedIssuerSettings],
    audience: str,
    client_id: str,
    now: int,
    skew: int,
    max_lifetime: int,
    load_keys: LoadKeys,
) -> IdJag:
    """Verify an ID-JAG for ``client_id`` at the authorization server ``audience``.

    Raises:
        InvalidGrantError: With a description naming the failed check.
    """
    header, unverified = parse_unverified(assertion)
    if not is_id_jag_type(header.get("typ")):
        raise InvalidGrantError(f"the assertion is not an ID-JAG (typ must be {ID_JAG_TYPE})")
    if header.get("alg") not in ALLOWED_ASSERTION_ALGORITHMS:
        raise InvalidGrantError("the ID-JAG signing algorithm is not accepted")
    trusted = next((t for t in issuers if t.issuer == unverified.get("iss")), None)
    if trusted is None:
        raise InvalidGrantError(
            "the ID-JAG issuer is not a trusted identity provider",
            detail=f"iss {str(unverified.get('iss'))[:200]!r}",
        )
    kid = header.get("kid")
    try:
        keys = _matching(await load_keys(trusted.jwks_uri, False), kid)
        if not keys:
            # An unknown kid: the provider may have rotated its keys since the last fetch.
            keys = _matching(await load_keys(trusted.jwks_uri, True), kid)
    except InvalidGrantError:
        raise
    except Exception as exc:  # the fetch: FetchError, timeouts, bad JSON
        raise InvalidGrantError(
            "the identity provider's keys could not be loaded", detail=repr(exc)
        ) from None
    if not keys:
        raise InvalidGrantError("no key of the identity provider matches the ID-JAG kid")
    claims = _verified(assertion, keys)
    if claims.get("iss") != trusted.issuer:
        raise InvalidGrantError("the ID-JAG issuer is not a trusted identity provider")
    if not _audience_is(claims.get("aud"), audience):
        raise InvalidGrantError("the ID-JAG audience is not this authorization server")
    exp = validate_times(claims, now=now, skew=skew, max_lifetime=max_lifetime)
    subject, jti = _string_claim(claims, "sub"), _string_claim(claims, "jti")
    bound = _string_claim(claims, "client_id")
    if bound != client_id:
        raise InvalidGrantError(
            "the ID-JAG was issued to another client",
            detail=f"client_id claim {bound[:200]!r}, authenticated {client_id!r}",
        )
    if trusted.client_ids is not None and bound not in trusted.client_ids:
        raise InvalidGrantError("this identity provider may not authorize this client")
    return IdJag(trusted, subject, bound, jti, exp, claims)
