"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-00 §3, §4).

A client whose ``client_id`` is an https URL publishes its metadata at that URL (MCP
authorization, "Client ID Metadata Documents"). This module is sans-IO: it decides whether a
``client_id`` is such a URL and turns a fetched document into a :class:`Client`. Fetching,
SSRF protection and caching live in ``ostiary.net``.

The document is validated with the same rules as dynamic registration, plus:

* its ``client_id`` equals the URL exactly (MCP: MUST), and ``client_name`` and
  ``redirect_uris`` are present;
* shared secrets are forbidden (the draft's client metadata rules): the
  ``token_endpoint_auth_method`` is ``none`` (the default when absent) or
  ``private_key_jwt``, and no ``client_secret`` may appear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final, cast

from ostiary.core.models import AuthMethod, Client
from ostiary.core.registration import client_from_metadata, validate_client_metadata
from ostiary.core.urls import split_url
from ostiary.errors import InvalidClientMetadataError, InvalidRedirectUriError

CIMD_AUTH_METHODS: Final[tuple[AuthMethod, ...]] = ("none", "private_key_jwt")
MAX_CLIENT_ID_URL_LENGTH: Final = 2048
_URL_CHARS = re.compile(r"^[\x21-\x7E]+$")
#: Members a metadata document may never carry (no shared symmetric secrets).
_FORBIDDEN_MEMBERS: Final = ("client_secret", "client_secret_expires_at")


def is_client_id_metadata_url(client_id: str) -> bool:
    """Whether ``client_id`` is a Client ID Metadata Document URL (draft -00 §3).

    The URL uses the ``https`` scheme, has a path other than ``/``, and has no fragment, no
    userinfo and no ``.`` or ``..`` path segments.

    Example:
        >>> is_client_id_metadata_url("https://app.example.com/oauth/client.json")
        True
        >>> is_client_id_metadata_url("https://app.example.com/")
        False
    """
    if len(client_id) > MAX_CLIENT_ID_URL_LENGTH or not _URL_CHARS.match(client_id):
        return False
    if not client_id.startswith("https://") or "#" in client_id or "\\" in client_id:
        return False
    parts = split_url(client_id)
    if parts is None or "@" in parts.netloc or not parts.hostname:
        return False
    if parts.path in ("", "/"):
        return False
    segments = parts.path.split("/")
    return not any(seg in (".", "..") for seg in segments)


def _describe(exc: InvalidClientMetadataError | InvalidRedirectUriError) -> str:
    return f"the client metadata document is invalid: {exc.description}"


def build_metadata_client(
    client_id: str,
    document: object,
    *,
    tenant_id: str,
    now: int,
    expires_at: int,
    supported_scopes: Sequence[str],
    client_credentials_enabled: bool = False,
) -> Client:
    """Validate a fetched metadata document and build its client (draft -00 §4; MCP CIMD).

    Args:
        client_id: The URL the document was fetched from.
        document: The parsed JSON body.
        tenant_id: Tenant the client is used in.
        now: Current Unix time.
        expires_at: When the document must be fetched again (from its cache headers).
        supported_scopes: Scopes the server knows.
        client_credentials_enabled: Whether a private_key_jwt client may use client_credentials.

    Returns:
        A ``Client`` with ``source="cimd"`` and ``metadata_expires_at=expires_at``.

    Raises:
        InvalidClientMetadataError: The document is unusable; the description says why and is
            safe to show on the authorization error page.
    """
    if not isinstance(document, dict):
        raise InvalidClientMetadataError("the client metadata document must be a JSON object")
    metadata = cast("Mapping[str, Any]", document)
    if metadata.get("client_id") != client_id:
        # MCP: the document's client_id MUST match the URL exactly; no normalisation.
        raise InvalidClientMetadataError(
            "the client metadata document client_id does not match its URL"
        )
    for name in ("client_name", "redirect_uris"):
        if metadata.get(name) in (None, "", []):
            raise InvalidClientMetadataError(f"the client metadata document must include {name}")
    for name in _FORBIDDEN_MEMBERS:
        if name in metadata:
            raise InvalidClientMetadataError(
                "the client metadata document must not contain a client_secret"
            )
    if "token_endpoint_auth_method" not in metadata:
        # RFC 7591's client_secret_basic default makes no sense without a shared secret.
        metadata = {**metadata, "token_endpoint_auth_method": "none"}
    try:
        validated = validate_client_metadata(
            metadata,
            supported_scopes=supported_scopes,
            client_credentials_enabled=client_credentials_enabled,
            allowed_auth_methods=CIMD_AUTH_METHODS,
        )
    except (InvalidClientMetadataError, InvalidRedirectUriError) as exc:
        raise InvalidClientMetadataError(_describe(exc), detail=exc.detail) from None
    client = client_from_metadata(
        validated, tenant_id=tenant_id, client_id=client_id, source="cimd", issued_at=now
    )
    return replace(client, metadata_expires_at=expires_at)
