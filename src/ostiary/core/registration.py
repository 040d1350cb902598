"""Dynamic client registration and management (RFC 7591 §3; RFC 7592 §2).

Sans-IO: this module mints the identifiers and secrets of a new client, renders the client
information response and applies updates; the endpoint stores the record. Client metadata
is validated by :mod:`ostiary.core.registration_metadata` (RFC 7591 §2), whose
:func:`validate_client_metadata` and :func:`client_from_metadata` are re-exported here.

Secrets (client secret, registration access token) are returned once and stored as hashes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from ostiary.core.models import Client
from ostiary.core.registration_metadata import client_from_metadata, validate_client_metadata
from ostiary.core.secrets import hash_secret, new_secret, secrets_equal
from ostiary.errors import InvalidClientMetadataError

__all__ = [
    "CLIENT_ID_BYTES",
    "SECRET_AUTH_METHODS",
    "IssuedCredentials",
    "apply_client_update",
    "build_registered_client",
    "build_registration_response",
    "client_from_metadata",
    "validate_client_metadata",
]

SECRET_AUTH_METHODS: Final = frozenset({"client_secret_basic", "client_secret_post"})
CLIENT_ID_BYTES: Final = 16


@dataclass(frozen=True)
class IssuedCredentials:
    """Secrets created by a registration, returned to the client exactly once."""

    client_secret: str | None
    registration_access_token: str


def build_registered_client(
    metadata: Mapping[str, Any],
    *,
    tenant_id: str,
    now: int,
    supported_scopes: Sequence[str],
    client_credentials_enabled: bool,
    jwt_bearer_enabled: bool = False,
    secret_ttl: int,
) -> tuple[Client, IssuedCredentials]:
    """Validate a registration request and mint the client's identifiers (RFC 7591 §3.1-§3.2).

    Args:
        metadata: The JSON object of the registration request.
        tenant_id: Tenant the client belongs to.
        now: Current Unix time.
        supported_scopes: Scopes the server knows.
        client_credentials_enabled: Whether the client_credentials grant may be registered.
        jwt_bearer_enabled: Whether the jwt-bearer (ID-JAG) grant may be registered.
        secret_ttl: Seconds until a client secret expires; 0 means never.

    Returns:
        The client record (secrets as hashes only) and the plaintext credentials to return once.

    Raises:
        InvalidClientMetadataError: A field has the wrong type or an unacceptable value.
        InvalidRedirectUriError: ``redirect_uris`` is missing or an entry is unacceptable.

    Example:
        >>> client, creds = build_registered_client(
        ...     {"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"},
        ...     tenant_id="default", now=0, supported_scopes=(), client_credentials_enabled=False,
        ...     secret_ttl=0)
        >>> client.application_type, creds.client_secret
        ('native', None)
    """
    validated = validate_client_metadata(
        metadata,
        supported_scopes=supported_scopes,
        client_credentials_enabled=client_credentials_enabled,
        jwt_bearer_enabled=jwt_bearer_enabled,
    )
    client = client_from_metadata(
        validated,
        tenant_id=tenant_id,
        client_id=new_secret(CLIENT_ID_BYTES),
        source="dcr",
        issued_at=now,
    )
    secret = new_secret() if validated.token_endpoint_auth_method in SECRET_AUTH_METHODS else None
    registration_access_token = new_secret()
    client = replace(
        client,
        client_secret_hash=hash_secret(secret) if secret else None,
        client_secret_expires_at=now + secret_ttl if secret and secret_ttl else 0,
        registration_access_token_hash=hash_secret(registration_access_token),
    )
    return client, IssuedCredentials(secret, registration_access_token)


def build_registration_response(
    client: Client, credentials: IssuedCredentials | None, *, registration_client_uri: str
) -> dict[str, Any]:
    """The client information response (RFC 7591 §3.2.1; RFC 7592 §3).

    Args:
        client: The registered client.
        credentials: Secrets just issued (registration), or None (read or update): plaintext
            secrets are only ever returned when they are issued.
        registration_client_uri: The RFC 7592 management URL of this client.

    Returns:
        The JSON object to send with status 201 (registration) or 200 (read, update).
    """
    body: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": client.client_id_issued_at,
        "redirect_uris": list(client.redirect_uris),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "grant_types": list(client.grant_types),
        "response_types": list(client.response_types),
        "application_type": client.application_type,
    }
    optional = {
        "client_name": client.client_name,
        "client_uri": client.client_uri,
        "logo_uri": client.logo_uri,
        "scope": client.scope,
        "jwks": client.jwks,
        "jwks_uri": client.jwks_uri,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    body.update(client.extra)
    if credentials is not None and credentials.client_secret is not None:
        body["client_secret"] = credentials.client_secret
    if client.client_secret_hash is not None:
        # RFC 7591 §3.2.1: REQUIRED whenever a client_secret was issued; 0 = no expiry.
        body["client_secret_expires_at"] = client.client_secret_expires_at
    if credentials is not None:
        body["registration_access_token"] = credentials.registration_access_token
    body["registration_client_uri"] = registration_client_uri
    return body


def _check_update_identity(existing: Client, metadata: Mapping[str, Any]) -> None:
    client_id = metadata.get("client_id")
    if client_id is None:
        raise InvalidClientMetadataError("client_id is required in an update request")
    if not isinstance(client_id, str) or not secrets_equal(client_id, existing.client_id):
        raise InvalidClientMetadataError("client_id does not match the registration")
    secret = metadata.get("client_secret")
    if secret is None:
        return
    if not isinstance(secret, str) or existing.client_secret_hash is None:
        raise InvalidClientMetadataError("client_secret does not match the registration")
    if not secrets_equal(hash_secret(secret), existing.client_secret_hash):
        raise InvalidClientMetadataError("client_secret does not match the registration")


def apply_client_update(
    existing: Client,
    metadata: Mapping[str, Any],
    *,
    now: int,
    supported_scopes: Sequence[str],
    client_credentials_enabled: bool,
    jwt_bearer_enabled: bool = False,
) -> Client:
    """Replace a client's metadata (RFC 7592 §2.2).

    The request carries the complete metadata: omitted fields take their defaults. The
    ``client_id``, secret, registration access token and ``client_id_issued_at`` never change.
    A client without a secret cannot switch to a secret-based method here (it would have no
    way to learn the secret); it must register again.

    Args:
        existing: The stored client.
        metadata: The JSON object of the PUT request.
        now: Current Unix time (kept for symmetry with registration; unused today).
        supported_scopes: Scopes the server knows.
        client_credentials_enabled: Whether the client_credentials grant may be registered.
        jwt_bearer_enabled: Whether the jwt-bearer (ID-JAG) grant may be registered.

    Returns:
        The updated client record to store.

    Raises:
        InvalidClientMetadataError: Identity mismatch or invalid metadata.
        InvalidRedirectUriError: ``redirect_uris`` is missing or an entry is unacceptable.
    """
    del now
    _check_update_identity(existing, metadata)
    validated = validate_client_metadata(
        metadata,
        supported_scopes=supported_scopes,
        client_credentials_enabled=client_credentials_enabled,
        jwt_bearer_enabled=jwt_bearer_enabled,
    )
    uses_secret = validated.token_endpoint_auth_method in SECRET_AUTH_METHODS
    if uses_secret and existing.client_secret_hash is None:
        raise InvalidClientMetadataError(
            "token_endpoint_auth_method cannot change to a secret method on update"
        )
    updated = client_from_metadata(
        validated,
        tenant_id=existing.tenant_id,
        client_id=existing.client_id,
        source=existing.source,
        issued_at=existing.client_id_issued_at,
    )
    return replace(
        updated,
        client_secret_hash=existing.client_secret_hash if uses_secret else None,
        client_secret_expires_at=existing.client_secret_expires_at if uses_secret else 0,
        registration_access_token_hash=existing.registration_access_token_hash,
        metadata_expires_at=existing.metadata_expires_at,
        disabled=existing.disabled,  # the operator's decision, not the client's metadata
    )
