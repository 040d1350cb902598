"""Authorization request and response handling (RFC 6749 §4.1.1-4.1.2; RFC 7636 §4; RFC 9207 §2.4).

Sans-IO. :func:`start_authorization` creates the PKCE verifier, the ``state`` and the
authorization URL, and records the validated issuer next to them before anyone is
redirected (MCP "Authorization Response Validation"). :func:`validate_callback` applies
the ``state`` check and the RFC 9207 §2.4 ``iss`` table to what came back:

======================  ============  ========================================
AS advertises ``iss``    ``iss`` sent  client does
======================  ============  ========================================
yes                      yes           compare with the recorded issuer
yes                      no            reject
no                       yes           compare with the recorded issuer
no                       no            proceed
======================  ============  ========================================

The comparison is a simple string comparison, no normalization. On a mismatch nothing
the response says (``error``, ``error_description``) is acted on or displayed.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from ostiary.client.discovery import AuthorizationServerMetadata
from ostiary.errors import AuthorizationFlowError

__all__ = [
    "AuthorizationCallback",
    "CallbackResult",
    "PendingAuthorization",
    "callback_result_from_url",
    "start_authorization",
    "validate_callback",
]

VERIFIER_BYTES = 32  # 43 characters, the RFC 7636 §4.1 minimum length, 256 bits


@dataclass(frozen=True)
class CallbackResult:
    """What the redirect brought back to the client.

    Args:
        code: The ``code`` parameter, if any.
        state: The ``state`` parameter, if any.
        iss: The RFC 9207 ``iss`` parameter, if any.
        full_query: Every query parameter (first value of each), for ``error`` reporting.
    """

    code: str | None
    state: str | None
    iss: str | None
    full_query: Mapping[str, str] = field(default_factory=dict)


AuthorizationCallback = Callable[[str], Awaitable[CallbackResult]]
"""Sends the user to the authorization URL and returns what the redirect brought back."""


@dataclass(frozen=True)
class PendingAuthorization:
    """Everything recorded before the redirect; checked when the redirect returns."""

    issuer: str
    iss_supported: bool
    state: str
    code_verifier: str
    redirect_uri: str
    resource: str
    scope: str | None
    authorization_url: str


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _validate_url_scheme(url: str, what: str) -> None:
    # MCP security best practices: only http(s) authorization URLs, never javascript:/data:.
    if urlsplit(url).scheme.lower() not in ("https", "http"):
        raise AuthorizationFlowError(f"refusing a {what} that is not http(s): {url!r}")


def start_authorization(
    *,
    metadata: AuthorizationServerMetadata,
    client_id: str,
    redirect_uri: str,
    resource: str,
    scope: str | None,
    dpop_jkt: str | None = None,
) -> PendingAuthorization:
    """Build the authorization URL with PKCE S256, ``state`` and ``resource``.

    Args:
        metadata: The validated AS metadata (its ``issuer`` is recorded).
        client_id: The client id at this AS.
        redirect_uri: Where the AS sends the browser back.
        resource: The canonical MCP server URI (RFC 8707).
        scope: Space-separated scopes, or ``None`` to omit the parameter.
        dpop_jkt: The DPoP key's thumbprint, binding the code to it (RFC 9449 §10).

    Raises:
        AuthorizationFlowError: The AS has no usable authorization endpoint.
    """
    endpoint = metadata.authorization_endpoint
    if not endpoint:
        raise AuthorizationFlowError(f"{metadata.issuer} has no authorization_endpoint")
    _validate_url_scheme(endpoint, "authorization endpoint")
    verifier = secrets.token_urlsafe(VERIFIER_BYTES)
    state = secrets.token_urlsafe(24)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": _s256(verifier),
        "code_challenge_method": "S256",
        "resource": resource,
    }
    if scope:
        params["scope"] = scope
    if dpop_jkt:
        params["dpop_jkt"] = dpop_jkt
    parts = urlsplit(endpoint)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    return PendingAuthorization(
        issuer=metadata.issuer,
        iss_supported=metadata.authorization_response_iss_parameter_supported,
        state=state,
        code_verifier=verifier,
        redirect_uri=redirect_uri,
        resource=resource,
        scope=scope,
        authorization_url=url,
    )


def callback_result_from_url(url: str) -> CallbackResult:
    """Read ``code``, ``state`` and ``iss`` from a redirect URL (or a bare query string)."""
    query = urlsplit(url).query if "?" in url or "://" in url else url.lstrip("?")
    values = {name: items[0] for name, items in parse_qs(query, keep_blank_values=True).items()}
    return CallbackResult(
        code=values.get("code"),
        state=values.get("state"),
        iss=values.get("iss"),
        full_query=values,
    )


def validate_callback(pending: PendingAuthorization, result: CallbackResult) -> str:
    """Apply the ``iss`` and ``state`` checks; return the authorization code.

    Raises:
        AuthorizationFlowError: Wrong or missing ``iss``, wrong ``state``, an error
            response, or no code.
    """
    # RFC 9207 §2.4 first: a response from the wrong issuer is not read any further.
    if result.iss is not None:
        if result.iss != pending.issuer:
            raise AuthorizationFlowError(
                f"authorization response came from issuer {result.iss!r}, "
                f"expected {pending.issuer!r}; discarding it"
            )
    elif pending.iss_supported:
        raise AuthorizationFlowError(
            "authorization response has no iss parameter although the authorization "
            "server advertises it; discarding it"
        )
    if result.state != pending.state:
        raise AuthorizationFlowError("authorization response state does not match; discarding it")
    error = result.full_query.get("error")
    if error:
        description = result.full_query.get("error_description")
        text = f"{error}: {description}" if description else error
        raise AuthorizationFlowError(f"authorization was refused ({text})", error=error)
    if not result.code:
        raise AuthorizationFlowError("authorization response has no code")
    return result.code
