"""Token endpoint requests, responses and client authentication (RFC 6749 §2.3, §5; RFC 7523 §2.2).

Grants: RFC 6749 §4.1.3 (code), §4.4 (client credentials), §6 (refresh); RFC 8707 §2.

Sans-IO: builds the form and headers for the ``authorization_code``, ``refresh_token`` and
``client_credentials`` grants, authenticates the client with ``none``,
``client_secret_basic``, ``client_secret_post`` or ``private_key_jwt``, and turns the
answer into a :class:`TokenSet`. ``resource`` is sent on every request (RFC 8707).
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any
from urllib.parse import quote

from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ostiary.client._http import HttpRequest, HttpResponse
from ostiary.client.discovery import AuthorizationServerMetadata
from ostiary.client.registration import ClientRegistration, TokenEndpointAuthMethod
from ostiary.errors import AuthorizationFlowError

__all__ = [
    "JWT_BEARER_ASSERTION_TYPE",
    "TokenSet",
    "authorization_code_request",
    "client_credentials_request",
    "jwt_bearer_request",
    "parse_token_response",
    "refresh_request",
    "revocation_request",
    "select_auth_method",
]

JWT_BEARER_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_BEARER_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Refresh this long before the access token expires, so it never expires in flight.
REFRESH_MARGIN_SECONDS = 30
ASSERTION_TTL_SECONDS = 300


class TokenSet(BaseModel):
    """Tokens from one token response, with the absolute expiry computed at receipt."""

    model_config = ConfigDict(frozen=True)

    access_token: str
    token_type: str = "Bearer"
    refresh_token: str | None = None
    scope: str | None = None
    expires_at: float | None = None
    #: The private JWK a DPoP-bound token is bound to (RFC 9449 §5), stored with it.
    dpop_key: dict[str, Any] | None = Field(default=None, repr=False)

    def is_expiring(self, now: float | None = None) -> bool:
        """True when the access token expires within the refresh margin."""
        if self.expires_at is None:
            return False
        return (now if now is not None else time.time()) >= (
            self.expires_at - REFRESH_MARGIN_SECONDS
        )

    @property
    def scopes(self) -> tuple[str, ...]:
        """The granted scopes, as the AS reported them."""
        return tuple((self.scope or "").split())


def select_auth_method(
    registration: ClientRegistration,
    metadata: AuthorizationServerMetadata,
    has_private_key: bool,
) -> TokenEndpointAuthMethod:
    """The token endpoint authentication method to use (RFC 8414 §2; RFC 7591 §2).

    What the registration says wins; otherwise a private key means ``private_key_jwt``;
    a secret picks the first secret method the AS lists (``client_secret_basic`` when it
    lists none, the RFC 8414 default); no secret means ``none``.
    """
    if registration.token_endpoint_auth_method is not None:
        return registration.token_endpoint_auth_method
    supported = metadata.token_endpoint_auth_methods_supported
    if has_private_key and (supported is None or "private_key_jwt" in supported):
        return "private_key_jwt"
    if registration.client_secret is None:
        return "none"
    if supported is None:
        return "client_secret_basic"
    for method in ("client_secret_basic", "client_secret_post"):
        if method in supported:
            return method
    return "none" if "none" in supported else "client_secret_basic"


def _load_private_key(pem: str) -> ECKey | RSAKey | OKPKey:
    for key_type in (ECKey, RSAKey, OKPKey):
        try:
            return key_type.import_key(pem)
        except Exception:  # noqa: S112 - try the next key type
            continue
    raise AuthorizationFlowError("the private key for private_key_jwt could not be read")


def client_assertion(client_id: str, audience: str, private_key_pem: str, algorithm: str) -> str:
    """An RFC 7523 §2.2 client assertion: ``iss`` = ``sub`` = client id, ``aud`` = issuer."""
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + ASSERTION_TTL_SECONDS,
        "jti": str(uuid.uuid4()),
    }
    key = _load_private_key(private_key_pem)
    return jwt.encode({"alg": algorithm, "typ": "JWT"}, claims, key, algorithms=[algorithm])


def _authenticate(
    form: dict[str, str],
    method: TokenEndpointAuthMethod,
    registration: ClientRegistration,
    metadata: AuthorizationServerMetadata,
    signing: tuple[str, str] | None,
) -> dict[str, str]:
    """Add client authentication to ``form``; return the extra headers."""
    secret = registration.client_secret or ""
    if method == "client_secret_basic":
        # RFC 6749 §2.3.1: form-urlencode id and secret before base64.
        pair = f"{quote(registration.client_id, safe='')}:{quote(secret, safe='')}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}
    form["client_id"] = registration.client_id
    if method == "client_secret_post":
        form["client_secret"] = secret
    elif method == "private_key_jwt":
        if signing is None:
            raise AuthorizationFlowError("private_key_jwt needs a private key")
        pem, alg = signing
        form["client_assertion_type"] = JWT_BEARER_ASSERTION_TYPE
        form["client_assertion"] = client_assertion(
            registration.client_id, metadata.issuer, pem, alg
        )
    return {}


def _token_request(
    form: dict[str, str],
    registration: ClientRegistration,
    metadata: AuthorizationServerMetadata,
    signing: tuple[str, str] | None,
) -> HttpRequest:
    method = select_auth_method(registration, metadata, signing is not None)
    headers = _authenticate(form, method, registration, metadata, signing)
    return HttpRequest.post_form(metadata.token_endpoint, form, headers)


def authorization_code_request(
    *,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    resource: str,
    registration: ClientRegistration,
    metadata: AuthorizationServerMetadata,
    signing: tuple[str, str] | None = None,
) -> HttpRequest:
    """The RFC 6749 §4.1.3 code exchange with PKCE (RFC 7636 §4.5) and ``resource``."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
        "resource": resource,
    }
    return _token_request(form, registration, metadata, signing)


def refresh_request(
    *,
    refresh_token: str,
    resource: str,
    registration: ClientRegistration,
    metadata: AuthorizationServerMetadata,
    signing: tuple[str, str] | None = None,
) -> HttpRequest:
    """The RFC 6749 §6 refresh request, with ``resource`` (RFC 8707 §2.2)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "resource": resource}
    return _token_request(form, registration, metadata, signing)


def client_credentials_request(
    *,
    resource: str,
    scope: str | None,
    registration: ClientRegistration,
    metadata: AuthorizationServerMetadata,
    signing: tuple[str, str] | None = None,
) -> HttpRequest:
    """The RFC 6749 §4.4 client credentials request, with ``resource``."""
    form = {"grant_type": "client_credentials", "resource": resource}
    if scope:
        form["scope"] = scope
    return _token_request(form, registration, metadata, signing)


def jwt_bearer_request(
    *,
    assertion: str,
    resource: str,
    scope: str | None,
    registration: ClientRegistration,
    metadata: AuthorizationServerMetadata,
    signing: tuple[str, str] | None = None,
) -> HttpRequest:
    """The RFC 7523 §2.1 JWT bearer grant, with ``resource``."""
    form = {"grant_type": JWT_BEARER_GRANT_TYPE, "assertion": assertion, "resource": resource}
    if scope:
        form["scope"] = scope
    return _token_request(form, registration, metadata, signing)


def revocation_request(
    *,
    token: str,
    token_type_hint: str,
    registration: ClientRegistration,
    metadata: AuthorizationServerMetadata,
    signing: tuple[str, str] | None = None,
) -> HttpRequest | None:
    """The RFC 7009 §2.1 revocation request, or ``None`` when the AS has no endpoint."""
    endpoint = metadata.revocation_endpoint
    if endpoint is None:
        return None
    form = {"token": token, "token_type_hint": token_type_hint}
    method = select_auth_method(registration, metadata, signing is not None)
    headers = _authenticate(form, method, registration, metadata, signing)
    return HttpRequest.post_form(endpoint, form, headers)


class _TokenResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    access_token: str
    token_type: str
    expires_in: float | None = None
    refresh_token: str | None = None
    scope: str | None = None


def _error_of(body: Any) -> tuple[str | None, str | None]:
    if not isinstance(body, dict):
        return None, None
    error, description = body.get("error"), body.get("error_description")
    return (
        error if isinstance(error, str) else None,
        description if isinstance(description, str) else None,
    )


def parse_token_response(
    response: HttpResponse,
    *,
    requested_scope: str | None = None,
    previous_refresh_token: str | None = None,
    now: float | None = None,
) -> TokenSet:
    """Turn a token endpoint answer into a :class:`TokenSet` (RFC 6749 §5.1, §5.2).

    Args:
        response: The token endpoint response.
        requested_scope: The scope asked for; RFC 6749 §5.1 says an omitted ``scope``
            means the requested one was granted.
        previous_refresh_token: Kept when a refresh response carries no new one (§6).
        now: The clock, for tests.

    Raises:
        AuthorizationFlowError: An error response (carrying the ``error`` code) or a
            malformed success response.
    """
    body = response.json()
    if response.status_code != 200:
        error, description = _error_of(body)
        detail = f"{error}: {description}" if error and description else error
        raise AuthorizationFlowError(
            f"token request failed ({detail or f'HTTP {response.status_code}'})", error=error
        )
    try:
        parsed = _TokenResponse.model_validate(body)
    except ValidationError:
        raise AuthorizationFlowError(
            "token response is not a valid token (RFC 6749 §5.1)"
        ) from None
    if parsed.token_type.lower() not in ("bearer", "dpop"):
        raise AuthorizationFlowError(f"unsupported token_type {parsed.token_type!r}")
    issued = now if now is not None else time.time()
    return TokenSet(
        access_token=parsed.access_token,
        token_type="DPoP" if parsed.token_type.lower() == "dpop" else "Bearer",
        refresh_token=parsed.refresh_token or previous_refresh_token,
        scope=parsed.scope if parsed.scope is not None else requested_scope,
        expires_at=issued + parsed.expires_in if parsed.expires_in is not None else None,
    )
