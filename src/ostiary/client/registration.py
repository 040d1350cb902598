"""Client identity: pre-registered, then CIMD, then dynamic registration (RFC 7591 §2-3).

MCP "Client Registration" (2026-07-28) orders the choices this way.

Sans-IO. :func:`choose_registration` picks how the client gets a ``client_id`` at a given
authorization server in the order the MCP spec prefers; :func:`build_registration_request`
and :func:`parse_registration_response` are the RFC 7591 wire format. A
:class:`ClientRegistration` is always bound to the issuer that issued it (SEP-2352): a
credential is never presented to another authorization server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ostiary.client.discovery import AuthorizationServerMetadata
from ostiary.errors import RegistrationError

__all__ = [
    "ClientConfig",
    "ClientRegistration",
    "RegistrationStrategy",
    "build_registration_request",
    "choose_registration",
    "parse_registration_response",
]

TokenEndpointAuthMethod = Literal[
    "none", "client_secret_basic", "client_secret_post", "private_key_jwt"
]
RegistrationStrategy = Literal["pre_registered", "client_id_metadata_document", "dynamic"]


@dataclass(frozen=True)
class ClientConfig:
    """What the application knows about itself before it meets an authorization server.

    Args:
        client_name: Human-readable name sent in registration.
        redirect_uris: Redirect URIs; the first one is used in authorization requests.
        application_type: ``native`` for CLIs and desktop apps, ``web`` for remote browser
            apps (SEP-837; sent in dynamic registration).
        client_id: A pre-registered client id, used as is.
        client_secret: The pre-registered client's secret, if it is confidential.
        client_metadata_url: An HTTPS URL serving this client's metadata document; used as
            ``client_id`` where the AS advertises ``client_id_metadata_document_supported``.
        private_key_pem: PEM private key for ``private_key_jwt`` (RFC 7523 §2.2).
        signing_algorithm: JWS algorithm for ``private_key_jwt`` assertions.
        token_endpoint_auth_method: Force a method; by default it is negotiated.
        pre_registered_issuer: The issuer the pre-registered credentials belong to. When
            set, presenting them to another issuer is an error (SEP-2352).
        scope: Scopes to request when neither the challenge nor the PRM names any.
        grant_types: Grant types named in dynamic registration.
        use_dpop: Bind tokens with DPoP (RFC 9449) when the AS offers ES256 proofs.
        legacy_discovery: When a server publishes no PRM at all (every candidate 404),
            treat its origin as the authorization server, as MCP 2025-03-26 did.
        allow_insecure_http: Accept plain-http metadata and endpoints on any host (tests).
    """

    client_name: str = "ostiary"
    redirect_uris: tuple[str, ...] = ("http://127.0.0.1/callback",)
    application_type: Literal["native", "web"] = "native"
    client_id: str | None = None
    client_secret: str | None = None
    client_metadata_url: str | None = None
    private_key_pem: str | None = None
    signing_algorithm: str = "ES256"
    token_endpoint_auth_method: TokenEndpointAuthMethod | None = None
    pre_registered_issuer: str | None = None
    scope: str | None = None
    grant_types: tuple[str, ...] = field(default=("authorization_code", "refresh_token"))
    use_dpop: bool = True
    legacy_discovery: bool = True
    allow_insecure_http: bool = False


class ClientRegistration(BaseModel):
    """A client identity at one authorization server (persisted by the token store)."""

    model_config = ConfigDict(frozen=True)

    issuer: str
    client_id: str
    client_secret: str | None = None
    client_secret_expires_at: int | None = None
    token_endpoint_auth_method: TokenEndpointAuthMethod | None = None
    redirect_uris: tuple[str, ...] = ()
    strategy: RegistrationStrategy = "dynamic"

    def is_expired(self, now: float | None = None) -> bool:
        """True when the AS said the secret expires and that moment has passed (RFC 7591 §3.2.1)."""
        expires = self.client_secret_expires_at
        if not expires:  # absent or 0 means "never"
            return False
        return (now if now is not None else time.time()) >= expires


def choose_registration(
    config: ClientConfig, metadata: AuthorizationServerMetadata
) -> RegistrationStrategy:
    """How to obtain a client id at this AS, in the MCP spec's order of preference.

    Raises:
        RegistrationError: Pre-registered credentials belong to another issuer, or the AS
            offers neither CIMD (with a configured URL) nor dynamic registration.
    """
    if config.client_id is not None:
        bound = config.pre_registered_issuer
        if bound is not None and bound != metadata.issuer:
            raise RegistrationError(
                f"the pre-registered client is bound to {bound}, "
                f"but the server now uses {metadata.issuer}; re-register"
            )
        return "pre_registered"
    if config.client_metadata_url and metadata.client_id_metadata_document_supported:
        return "client_id_metadata_document"
    if metadata.registration_endpoint:
        return "dynamic"
    raise RegistrationError(
        f"authorization server {metadata.issuer} supports neither client ID metadata "
        "documents nor dynamic registration; configure a pre-registered client_id"
    )


def static_registration(
    config: ClientConfig, metadata: AuthorizationServerMetadata, strategy: RegistrationStrategy
) -> ClientRegistration:
    """The registration for the pre-registered and CIMD strategies (no request needed)."""
    if strategy == "pre_registered":
        assert config.client_id is not None
        return ClientRegistration(
            issuer=metadata.issuer,
            client_id=config.client_id,
            client_secret=config.client_secret,
            token_endpoint_auth_method=config.token_endpoint_auth_method,
            redirect_uris=config.redirect_uris,
            strategy=strategy,
        )
    assert config.client_metadata_url is not None
    return ClientRegistration(
        issuer=metadata.issuer,
        client_id=config.client_metadata_url,
        token_endpoint_auth_method="private_key_jwt" if config.private_key_pem else "none",
        redirect_uris=config.redirect_uris,
        strategy=strategy,
    )


def _requested_auth_method(
    config: ClientConfig, metadata: AuthorizationServerMetadata
) -> TokenEndpointAuthMethod:
    if config.token_endpoint_auth_method is not None:
        return config.token_endpoint_auth_method
    supported = metadata.token_endpoint_auth_methods_supported
    if supported is None or "none" in supported:
        return "none"  # a native app cannot keep a secret (RFC 8252 §8.4)
    for method in ("client_secret_basic", "client_secret_post"):
        if method in supported:
            return method
    return "none"


def build_registration_request(
    config: ClientConfig, metadata: AuthorizationServerMetadata
) -> dict[str, Any]:
    """The RFC 7591 §2 registration body.

    ``application_type`` is always sent (SEP-837) and ``grant_types`` names
    ``refresh_token`` so the AS may issue refresh tokens (MCP "Refresh Tokens").
    """
    body: dict[str, Any] = {
        "client_name": config.client_name,
        "redirect_uris": list(config.redirect_uris),
        "grant_types": list(config.grant_types),
        "response_types": ["code"],
        "token_endpoint_auth_method": _requested_auth_method(config, metadata),
        "application_type": config.application_type,
    }
    if config.scope:
        body["scope"] = config.scope
    return body


class _RegistrationResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    client_id: str
    client_secret: str | None = None
    client_secret_expires_at: int | None = None
    token_endpoint_auth_method: str | None = None
    redirect_uris: list[str] | None = None


def parse_registration_response(
    status_code: int, body: Any, metadata: AuthorizationServerMetadata, config: ClientConfig
) -> ClientRegistration:
    """Turn the registration endpoint's answer into a :class:`ClientRegistration`.

    Raises:
        RegistrationError: The AS refused (RFC 7591 §3.2.2) or answered nonsense.
    """
    if status_code not in (200, 201):
        error = body.get("error") if isinstance(body, dict) else None
        described = body.get("error_description") if isinstance(body, dict) else None
        reason = f"{error}: {described}" if error and described else (error or f"{status_code}")
        raise RegistrationError(
            f"dynamic registration at {metadata.registration_endpoint} failed ({reason})"
        )
    try:
        parsed = _RegistrationResponse.model_validate(body)
    except ValidationError:
        raise RegistrationError(
            f"dynamic registration at {metadata.registration_endpoint} returned no client_id"
        ) from None
    method = parsed.token_endpoint_auth_method
    known: tuple[str, ...] = (
        "none",
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    )
    return ClientRegistration(
        issuer=metadata.issuer,
        client_id=parsed.client_id,
        client_secret=parsed.client_secret,
        client_secret_expires_at=parsed.client_secret_expires_at,
        token_endpoint_auth_method=method if method in known else None,
        redirect_uris=tuple(parsed.redirect_uris or config.redirect_uris),
        strategy="dynamic",
    )
