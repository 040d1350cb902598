"""The one exception hierarchy (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 6750 §3.1, RFC 8707 §2).

This is the only module that spells OAuth wire error codes. Every error carries a public
``description`` (safe to put on the wire, RFC 6749 character set) and a private ``detail``
that goes to logs only. Anything that is not an :class:`OAuthError` is a bug and is rendered
as a generic ``server_error`` by the HTTP layer.
"""

from __future__ import annotations

import re
from typing import ClassVar

# RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E (no '"' and no '\').
_DESCRIPTION_CHARS = re.compile(r"^[\x20-\x21\x23-\x5B\x5D-\x7E]*$")


class ToolkitError(Exception):
    """Base class for everything ostiary raises on purpose."""


class ConfigurationError(ToolkitError):
    """Invalid settings, raised at start-up only."""


class StorageError(ToolkitError):
    """A storage backend failed; rendered as ``temporarily_unavailable``, never as a 400."""


class OAuthError(ToolkitError):
    """A protocol error rendered to the wire.

    Args:
        description: Public sentence for ``error_description``. Defaults to a generic one.
        detail: Private context for logs; never sent to the client.
        status_code: Overrides the class default for this instance.
    """

    error: ClassVar[str] = "server_error"
    default_status_code: ClassVar[int] = 400
    default_description: ClassVar[str] = "The request could not be processed."
    #: False when the error must never be sent to a redirect URI (the URI is not trusted yet).
    redirectable: bool = True

    def __init__(
        self,
        description: str | None = None,
        *,
        detail: str | None = None,
        status_code: int | None = None,
    ) -> None:
        text = description if description is not None else self.default_description
        if not _DESCRIPTION_CHARS.match(text):
            raise ValueError(f"error_description has characters RFC 6749 forbids: {text!r}")
        super().__init__(text)
        self.description = text
        self.detail = detail
        self.status_code = status_code if status_code is not None else self.default_status_code

    def headers(self) -> dict[str, str]:
        """Extra response headers this error needs (challenges, Retry-After)."""
        return {}

    def to_dict(self) -> dict[str, str]:
        """The JSON error body (RFC 6749 §5.2)."""
        return {"error": self.error, "error_description": self.description}


class InvalidRequestError(OAuthError):
    error = "invalid_request"
    default_description = "The request is missing a parameter or is otherwise malformed."


class InvalidClientError(OAuthError):
    error = "invalid_client"
    default_status_code = 401
    default_description = "Client authentication failed."

    def __init__(
        self,
        description: str | None = None,
        *,
        detail: str | None = None,
        status_code: int | None = None,
        used_basic: bool = False,
    ) -> None:
        super().__init__(description, detail=detail, status_code=status_code)
        self.used_basic = used_basic

    def headers(self) -> dict[str, str]:
        # RFC 6749 §5.2: a 401 must carry a challenge matching the scheme the client used.
        if self.status_code == 401:
            return {"WWW-Authenticate": 'Basic realm="ostiary"'} if self.used_basic else {}
        return {}


class InvalidGrantError(OAuthError):
    error = "invalid_grant"
    default_description = "The grant is invalid, expired, revoked or was issued to another client."


class UnauthorizedClientError(OAuthError):
    error = "unauthorized_client"
    default_description = "The client is not allowed to use this grant type."


class UnsupportedGrantTypeError(OAuthError):
    error = "unsupported_grant_type"
    default_description = "The grant type is not supported."


class UnsupportedResponseTypeError(OAuthError):
    error = "unsupported_response_type"
    default_description = "Only response_type=code is supported."


class UnsupportedTokenTypeError(OAuthError):
    error = "unsupported_token_type"
    default_description = "The token type is not supported."


class InvalidScopeError(OAuthError):
    error = "invalid_scope"
    default_description = "The requested scope is invalid, unknown or not allowed."


class InvalidTargetError(OAuthError):
    error = "invalid_target"
    default_description = "The requested resource is invalid or not allowed."


class AccessDeniedError(OAuthError):
    error = "access_denied"
    default_status_code = 403
    default_description = "The resource owner denied the request."


class LoginRequiredError(OAuthError):
    error = "login_required"
    default_description = "The user must log in."


class ConsentRequiredError(OAuthError):
    error = "consent_required"
    default_description = "The user must consent."


class ServerError(OAuthError):
    error = "server_error"
    default_status_code = 500
    default_description = "The server hit an unexpected condition."


class TemporarilyUnavailableError(OAuthError):
    error = "temporarily_unavailable"
    default_status_code = 503
    default_description = "The server is temporarily unavailable. Try again later."

    def __init__(
        self,
        description: str | None = None,
        *,
        detail: str | None = None,
        retry_after_seconds: int = 1,
        status_code: int | None = None,
    ) -> None:
        super().__init__(description, detail=detail, status_code=status_code)
        self.retry_after_seconds = retry_after_seconds

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class SlowDownError(TemporarilyUnavailableError):
    """Rate limit hit (429 + Retry-After)."""

    error = "slow_down"
    default_status_code = 429
    default_description = "Too many requests. Slow down and retry later."


class InvalidRedirectUriError(OAuthError):
    error = "invalid_redirect_uri"
    default_description = "The redirect URI is invalid or not registered for this client."
    redirectable = False


class InvalidClientMetadataError(OAuthError):
    error = "invalid_client_metadata"
    default_description = "The client metadata is invalid."


class InvalidTokenError(OAuthError):
    """RFC 6750 §3.1 ``invalid_token``: 401 from a resource server."""

    error = "invalid_token"
    default_status_code = 401
    default_description = "The access token is invalid, expired or revoked."


class InsufficientScopeError(OAuthError):
    """RFC 6750 §3.1 ``insufficient_scope``: 403 naming every scope needed."""

    error = "insufficient_scope"
    default_status_code = 403
    default_description = "The access token does not carry the scope this request needs."

    def __init__(
        self,
        description: str | None = None,
        *,
        required_scopes: tuple[str, ...] = (),
        detail: str | None = None,
    ) -> None:
        super().__init__(description, detail=detail)
        self.required_scopes = required_scopes


class InvalidDpopProofError(OAuthError):
    """RFC 9449 §5, §7.1 ``invalid_dpop_proof``: 400 at the token endpoint, 401 at an RS."""

    error = "invalid_dpop_proof"
    default_description = "The DPoP proof is invalid."


class UseDpopNonceError(OAuthError):
    """RFC 9449 §8, §9 ``use_dpop_nonce``: retry with the server nonce in ``DPoP-Nonce``."""

    error = "use_dpop_nonce"
    default_description = "Use the DPoP nonce the server provided in the DPoP-Nonce header."

    def __init__(
        self,
        description: str | None = None,
        *,
        nonce: str,
        detail: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(description, detail=detail, status_code=status_code)
        self.nonce = nonce

    def headers(self) -> dict[str, str]:
        return {"DPoP-Nonce": self.nonce}


class ClientError(ToolkitError):
    """Base for errors raised by the MCP OAuth client."""


class DiscoveryError(ClientError):
    """Protected resource or authorization server metadata could not be used."""


class RegistrationError(ClientError):
    """No client identity could be obtained from the authorization server."""


class AuthorizationFlowError(ClientError):
    """The authorization or token step failed; carries the server's error when there is one."""

    def __init__(self, message: str, *, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error
