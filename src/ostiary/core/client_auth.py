"""Client authentication at the token endpoint (OAuth 2.1 §2.4; RFC 6749 §2.3.1; RFC 7523 §2.2, §3).

Two steps, so the caller can load the client in between:

1. :func:`parse_client_credentials` reads which single method the request used (Basic header,
   ``client_secret`` in the body, a JWT ``client_assertion``, or only a ``client_id``) and
   which ``client_id`` it claims. A request using more than one method is refused (RFC 6749
   §2.3: "The client MUST NOT use more than one authentication method in each request").
2. :func:`authenticate_client` checks the presented credentials against the registered
   client: same method as registered, secrets compared in constant time against their hash,
   ``private_key_jwt`` assertions verified per RFC 7523 §3 with single-use ``jti``.

Every authentication failure is ``invalid_client``; ``used_basic`` is set when the client used
the Authorization header so the response carries a matching ``WWW-Authenticate`` challenge.
"""

from __future__ import annotations

import base64
import binascii
import json
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote_plus

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import Key, KeySet

from ostiary.core.models import AuthMethod, Client
from ostiary.core.secrets import matches_hash
from ostiary.errors import InvalidClientError, InvalidRequestError, ToolkitError

JWT_BEARER_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Asymmetric algorithms only: a client assertion is never signed with ``none`` or an HMAC.
ALLOWED_ASSERTION_ALGORITHMS: Final = (
    "ES256",
    "ES384",
    "RS256",
    "PS256",
    "EdDSA",
    "Ed25519",
)
#: Longest accepted gap between now (or ``iat``) and ``exp`` of a client assertion.
MAX_ASSERTION_LIFETIME_SECONDS: Final = 600
#: Tolerated clock skew for ``iat`` and ``nbf`` in the future.
CLOCK_SKEW_SECONDS: Final = 30
MAX_ASSERTION_LENGTH: Final = 8192


@dataclass(frozen=True)
class PresentedCredentials:
    """What a token request presented to authenticate the client (RFC 6749 §2.3)."""

    method: AuthMethod
    client_id: str | None
    client_secret: str | None = None
    assertion: str | None = None


def _parse_basic(header: str) -> tuple[str, str]:
    """Decode ``Basic base64(urlencode(id) ":" urlencode(secret))`` (RFC 6749 §2.3.1)."""
    token = header.strip().partition(" ")[2]
    malformed = InvalidClientError("malformed Basic authorization header", used_basic=True)
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise malformed from None
    raw_id, sep, raw_secret = decoded.partition(":")
    if not sep:
        raise malformed
    client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    if not client_id or not secret:
        raise malformed
    return client_id, secret


def _unverified_subject(assertion: str) -> str | None:
    """The ``sub`` of a JWT before verification, used only to find the client to verify with."""
    parts = assertion.split(".")
    if len(parts) != 3 or len(assertion) > MAX_ASSERTION_LENGTH:
        raise InvalidClientError("client assertion is malformed")
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidClientError("client assertion is malformed") from None
    if not isinstance(payload, dict):
        raise InvalidClientError("client assertion is malformed")
    sub = payload.get("sub")
    return sub if isinstance(sub, str) and sub else None


def _is_basic(header: str | None) -> bool:
    return header is not None and header.strip().partition(" ")[0].lower() == "basic"


def _assertion_credentials(form: Mapping[str, str], client_id: str | None) -> PresentedCredentials:
    if form.get("client_assertion_type") != JWT_BEARER_ASSERTION_TYPE:
        raise InvalidClientError(f"client_assertion_type must be {JWT_BEARER_ASSERTION_TYPE}")
    assertion = form.get("client_assertion")
    if not assertion:
        raise InvalidRequestError("client_assertion is required")
    subject = _unverified_subject(assertion)
    if client_id is not None and subject is not None and subject != client_id:
        raise InvalidClientError("client_id does not match the client assertion")
    claimed = client_id or subject
    if claimed is None:
        raise InvalidRequestError("client_id is required")
    return PresentedCredentials("private_key_jwt", claimed, assertion=assertion)


def parse_client_credentials(
    authorization_header: str | None, form: Mapping[str, str]
) -> PresentedCredentials:
    """Work out how a token request authenticates its client (RFC 6749 §2.3; OAuth 2.1 §2.4).

    Args:
        authorization_header: The ``Authorization`` header, or None. Schemes other than
            Basic are ignored here.
        form: The single-valued form parameters of the request.

    Returns:
        The method used, the claimed ``client_id`` and the presented secret or assertion.

    Raises:
        InvalidRequestError: More than one method, or no ``client_id`` at all.
        InvalidClientError: A malformed Basic header or client assertion, or a ``client_id``
            parameter that disagrees with the header or the assertion.

    Example:
        >>> parse_client_credentials(None, {"client_id": "abc"})
        PresentedCredentials(method='none', client_id='abc', client_secret=None, assertion=None)
    """
    basic = _is_basic(authorization_header)
    post = "client_secret" in form
    jwt_auth = "client_assertion" in form or "client_assertion_type" in form
    if basic + post + jwt_auth > 1:
        raise InvalidRequestError("use exactly one client authentication method")
    client_id = form.get("client_id") or None
    if basic and authorization_header is not None:
        header_id, secret = _parse_basic(authorization_header)
        if client_id is not None and client_id != header_id:
            raise InvalidClientError(
                "client_id does not match the Authorization header", used_basic=True
            )
        return PresentedCredentials("client_secret_basic", header_id, client_secret=secret)
    if jwt_auth:
        return _assertion_credentials(form, client_id)
    if client_id is None:
        raise InvalidRequestError("client_id is required")
    if post:
        return PresentedCredentials("client_secret_post", client_id, form["client_secret"])
    return PresentedCredentials("none", client_id)


def _check_secret(presented: PresentedCredentials, client: Client, now: int) -> None:
    used_basic = presented.method == "client_secret_basic"
    secret = presented.client_secret or ""
    # Only the hash is stored; compare in constant time so timing reveals nothing.
    if not matches_hash(secret, client.client_secret_hash):
        raise InvalidClientError("client authentication failed", used_basic=used_basic)
    if client.client_secret_expires_at and now >= client.client_secret_expires_at:
        raise InvalidClientError("client secret has expired", used_basic=used_basic)


def _audience_matches(aud: object, audiences: Sequence[str]) -> bool:
    """RFC 7523 §3 item 3: ``aud`` identifies this server (issuer or token endpoint).

    A single trailing slash is tolerated, as clients derive the issuer from metadata URLs.
    """
    wanted = {a.removesuffix("/") for a in audiences}
    values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    return any(isinstance(v, str) and v.removesuffix("/") in wanted for v in values)


def signed_claims(assertion: str, keys: Sequence[Key]) -> dict[str, Any] | None:
    """The claims of a JWT assertion whose signature one of ``keys`` verifies, with an
    allowed asymmetric algorithm (client assertions, ID-JAGs); None when none does."""
    with warnings.catch_warnings():
        # joserfc flags "EdDSA" as deprecated by RFC 9864; clients and identity providers
        # still send it.
        warnings.simplefilter("ignore", SecurityWarning)
        for key in keys:
            try:
                token = jwt.decode(assertion, key, algorithms=list(ALLOWED_ASSERTION_ALGORITHMS))
            except (JoseError, ValueError, TypeError):
                continue
            return dict(token.claims)
    return None


def _number(claims: Mapping[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidClientError(f"client assertion {name} must be a number")
    return int(value)


def _check_times(claims: Mapping[str, Any], now: int) -> int:
    exp = _number(claims, "exp")
    if exp is None:
        raise InvalidClientError("client assertion exp is required")
    if exp <= now:
        raise InvalidClientError("client assertion has expired")
    iat = _number(claims, "iat")
    if iat is not None and iat > now + CLOCK_SKEW_SECONDS:
        raise InvalidClientError("client assertion iat is in the future")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + CLOCK_SKEW_SECONDS:
        raise InvalidClientError("client assertion is not valid yet")
    start = now if iat is None else min(iat, now)
    if exp - start > MAX_ASSERTION_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
        raise InvalidClientError("client assertion lifetime is too long")
    return exp


async def _signing_keys(
    client: Client, load_jwks: Callable[[Client], Awaitable[Mapping[str, Any]]], kid: object
) -> list[Key]:
    try:
        jwks = await load_jwks(client)
        key_set = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
    except (ToolkitError, JoseError, ValueError, TypeError, KeyError):
        raise InvalidClientError("the client keys could not be loaded") from None
    keys = [k for k in key_set.keys if k.kid is None or kid is None or k.kid == kid]
    if not keys:
        raise InvalidClientError("no client key matches the assertion kid")
    return keys


def _header_kid(assertion: str) -> object:
    try:
        part = assertion.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidClientError("client assertion is malformed") from None
    if not isinstance(header, dict):
        raise InvalidClientError("client assertion is malformed")
    if header.get("alg") not in ALLOWED_ASSERTION_ALGORITHMS:
        raise InvalidClientError("client assertion algorithm is not allowed")
    return header.get("kid")


async def _check_assertion(
    presented: PresentedCredentials,
    client: Client,
    *,
    audiences: Sequence[str],
    now: int,
    remember_jti: Callable[[str, int], Awaitable[bool]],
    load_jwks: Callable[[Client], Awaitable[Mapping[str, Any]]],
) -> None:
    """RFC 7523 §3: verify signature, iss, sub, aud, exp, nbf, iat and a fresh jti."""
    assertion = presented.assertion or ""
    if len(assertion) > MAX_ASSERTION_LENGTH or assertion.count(".") != 2:
        raise InvalidClientError("client assertion is malformed")
    kid = _header_kid(assertion)
    claims = signed_claims(assertion, await _signing_keys(client, load_jwks, kid))
    if claims is None:
        raise InvalidClientError("client assertion signature is invalid")
    if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
        raise InvalidClientError("client assertion iss and sub must be the client_id")
    if not _audience_matches(claims.get("aud"), audiences):
        raise InvalidClientError("client assertion audience is not this server")
    exp = _check_times(claims, now)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise InvalidClientError("client assertion jti is required")
    # RFC 7523 §3 item 7: the server may reject a JWT whose jti it has seen before.
    if not await remember_jti(jti, exp):
        raise InvalidClientError("client assertion replayed")


async def authenticate_client(
    presented: PresentedCredentials,
    client: Client | None,
    *,
    audiences: Sequence[str],
    now: int,
    remember_jti: Callable[[str, int], Awaitable[bool]],
    load_jwks: Callable[[Client], Awaitable[Mapping[str, Any]]],
) -> Client:
    """Authenticate the client of a token request (OAuth 2.1 §2.4; RFC 7523 §3).

    Args:
        presented: Output of :func:`parse_client_credentials`.
        client: The client registered under ``presented.client_id``, or None when unknown.
        audiences: Values a client assertion's ``aud`` may name: the issuer and the token
            endpoint URL. A trailing-slash variant of each is accepted too.
        now: Current Unix time.
        remember_jti: Records an assertion ``jti`` until its ``exp``; returns False when it
            was already recorded (a replay).
        load_jwks: Returns the client's JWK set (inline ``jwks`` or fetched ``jwks_uri``).

    Returns:
        The authenticated client.

    Raises:
        InvalidClientError: For every failure, with ``used_basic`` set when the Basic header
            was used.
    """
    used_basic = presented.method == "client_secret_basic"
    if client is None:
        raise InvalidClientError("unknown client", used_basic=used_basic)
    if presented.method != client.token_endpoint_auth_method:
        raise InvalidClientError(
            "client authentication method does not match registration", used_basic=used_basic
        )
    if presented.method in ("client_secret_basic", "client_secret_post"):
        _check_secret(presented, client, now)
    elif presented.method == "private_key_jwt":
        await _check_assertion(
            presented,
            client,
            audiences=audiences,
            now=now,
            remember_jti=remember_jti,
            load_jwks=load_jwks,
        )
    return client
