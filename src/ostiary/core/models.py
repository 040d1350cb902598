"""Frozen domain records shared by the core, storage and HTTP layers (OAuth 2.1 §1-§4).

Times are integer Unix seconds. Secrets (codes, refresh tokens, client secrets, registration
access tokens, session ids) appear here only as SHA-256 hex hashes; see ``core/secrets.py``.
Every record carries ``tenant_id`` and every token-like record carries ``grant_id`` so that
revoking a grant can cascade.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

ClientSource = Literal["dcr", "static", "cimd"]
AuthMethod = Literal["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]
ApplicationType = Literal["native", "web"]


@dataclass(frozen=True, slots=True)
class Client:
    tenant_id: str
    client_id: str
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: AuthMethod = "none"
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    response_types: tuple[str, ...] = ("code",)
    application_type: ApplicationType = "native"
    client_name: str | None = None
    client_uri: str | None = None
    logo_uri: str | None = None
    scope: str | None = None
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    client_secret_hash: str | None = None
    client_secret_expires_at: int = 0
    registration_access_token_hash: str | None = None
    client_id_issued_at: int = 0
    source: ClientSource = "dcr"
    #: Extra RFC 7591 metadata echoed back on read (contacts, tos_uri, software_id, ...).
    extra: dict[str, Any] = field(default_factory=dict)
    #: For CIMD clients: when the cached metadata document must be fetched again.
    metadata_expires_at: int = 0
    #: Set by an operator (``ostiary clients disable``): no authorization, no token request.
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class User:
    tenant_id: str
    user_id: str
    username: str
    password_hash: str
    created_at: int
    disabled: bool = False
    display_name: str | None = None
    #: The RFC 6238 secret when a TOTP second factor is enrolled, sealed with the storage
    #: encryption key (``v1.…``; legacy rows: plain base32). Not hashed: verifying a code needs
    #: the secret itself. Read it with ``core.users.open_totp_secret``.
    totp_secret: str | None = None
    #: May use the operator console at ``{issuer}/admin`` (``ostiary users admin grant``).
    admin: bool = False


@dataclass(frozen=True, slots=True)
class Grant:
    """One authorization a user (or a client, for client_credentials) gave to a client."""

    tenant_id: str
    grant_id: str
    client_id: str
    subject: str
    scopes: tuple[str, ...]
    resource: str | None
    created_at: int
    expires_at: int
    revoked_at: int | None = None
    last_used_at: int | None = None


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    tenant_id: str
    code_hash: str
    grant_id: str
    client_id: str
    subject: str
    redirect_uri: str
    code_challenge: str
    scopes: tuple[str, ...]
    resource: str | None
    expires_at: int
    consumed_at: int | None = None
    #: RFC 9449 §10 ``dpop_jkt``: the token request must prove possession of this key.
    dpop_jkt: str | None = None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    tenant_id: str
    token_hash: str
    grant_id: str
    client_id: str
    subject: str
    scopes: tuple[str, ...]
    resource: str | None
    issued_at: int
    expires_at: int
    idle_expires_at: int
    rotated_at: int | None = None
    revoked_at: int | None = None
    #: Set by rotation: the hash of the one token that replaced this one.
    successor_hash: str | None = None
    #: The raw successor sealed with the storage key (``core/grants/refresh_token.py``), so a
    #: retry within the grace window gets that same token back. The one raw secret kept at
    #: rest, and only until the window ends (purge), the successor rotates or the grant is
    #: revoked.
    sealed_successor: str | None = field(default=None, repr=False)
    #: RFC 9449 §5.0: a public client's refresh token works only with a proof of this key
    #: (the JWK thumbprint); successors keep it.
    dpop_jkt: str | None = None


@dataclass(frozen=True, slots=True)
class AccessTokenRecord:
    """Book-keeping for an issued JWT: lets introspection see revocation and /stats count."""

    tenant_id: str
    jti: str
    grant_id: str
    client_id: str
    subject: str
    expires_at: int
    revoked_at: int | None = None


@dataclass(frozen=True, slots=True)
class Consent:
    tenant_id: str
    subject: str
    client_id: str
    resource: str | None
    scopes: tuple[str, ...]
    created_at: int


@dataclass(frozen=True, slots=True)
class SigningKey:
    tenant_id: str
    kid: str
    alg: str
    #: ``{"sealed": "v1.…"}`` (the private JWK sealed with the storage encryption key; legacy
    #: rows: the plain JWK). Read it with ``core.keys.open_private_jwk``.
    private_jwk: dict[str, Any]
    created_at: int
    #: Set when a newer key took over signing; the key stays in JWKS until ``expires_at``.
    retired_at: int | None = None
    expires_at: int | None = None


@dataclass(frozen=True, slots=True)
class Interaction:
    """A pending authorization request waiting for login and consent (server-side state)."""

    tenant_id: str
    interaction_id: str
    params: dict[str, Any]
    expires_at: int
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class BrowserSession:
    tenant_id: str
    session_hash: str
    subject: str
    created_at: int
    expires_at: int


class ConsumeStatus(Enum):
    OK = "ok"
    NOT_FOUND = "not_found"
    EXPIRED = "expired"
    REPLAYED = "replayed"


@dataclass(frozen=True, slots=True)
class ConsumeResult:
    """Outcome of an atomic single-use code consumption.

    ``record`` is set for OK, EXPIRED and REPLAYED so the caller can revoke ``grant_id``.
    """

    status: ConsumeStatus
    record: AuthorizationCode | None = None


class RotateStatus(Enum):
    OK = "ok"
    NOT_FOUND = "not_found"
    EXPIRED = "expired"
    REVOKED = "revoked"
    #: Presented again after rotation, outside the grace window, or after its successor was
    #: rotated in turn (the client moved on): the grant must be revoked.
    REUSED = "reused"
    #: The immediately previous token, presented again within the grace window while its
    #: successor is still unused (a lost response, a concurrent refresh): answer with that
    #: same successor, never a new one, so a grant never has two live refresh tokens.
    SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class RotateResult:
    """Outcome of an atomic refresh-token rotation.

    ``old`` is the presented token's record (set for every status but NOT_FOUND);
    ``successor`` is the live token that replaced it, set only for SUPERSEDED.
    """

    status: RotateStatus
    old: RefreshToken | None = None
    successor: RefreshToken | None = None


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """What a code redemption or a refresh books, in the transaction that read its inputs.

    The core plans it (:data:`CodePlan`, :data:`RotationPlan`) from the records that
    transaction read; the storage writes it before committing, so a token is answered only
    once its record is stored.
    """

    #: The access token to book (None only from a bare ``rotate_refresh_token``).
    access_token: AccessTokenRecord | None
    #: The new refresh token: for a code, the grant's first (or None); for a refresh, the
    #: successor of the presented token (required).
    refresh_token: RefreshToken | None = None
    #: For a refresh: the raw successor sealed for the old token's row (kept for the grace
    #: window so a retry gets the same successor).
    sealed_successor: str | None = None


#: Checks a code against its grant and mints the tokens to book; raises an OAuthError to
#: refuse (the code stays consumed and its grant is revoked). Called by the storage inside
#: its transaction, so it must not await: it validates and signs, nothing else.
CodePlan = Callable[[AuthorizationCode, Grant | None], IssuedTokens]
#: Checks a presented refresh token against its grant and mints the successor and the
#: access token; raises an OAuthError to refuse (nothing then changes). Synchronous, as above.
RotationPlan = Callable[[RefreshToken, Grant | None], IssuedTokens]


@dataclass(frozen=True, slots=True)
class Stats:
    clients: int
    users: int
    live_grants: int
    live_authorization_codes: int
    live_access_tokens: int
    live_refresh_tokens: int


@dataclass(frozen=True, slots=True)
class Note:
    """A demo MCP server's per-user secure note."""

    tenant_id: str
    note_id: str
    subject: str
    title: str
    content: str
    created_at: int


@dataclass(frozen=True, slots=True)
class LinkedIdentity:
    """An upstream identity provider's account linked to a local subject."""

    tenant_id: str
    provider: str
    upstream_subject: str
    subject: str
    created_at: int
    email: str | None = None
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class UpstreamToken:
    """Upstream provider tokens kept for tool code, encrypted at rest, tied to one grant.

    ``grant_id`` may name a pending login (``"pending:<id>"``) until consent creates the grant.
    """

    tenant_id: str
    grant_id: str
    subject: str
    provider: str
    access_token_enc: str
    updated_at: int
    refresh_token_enc: str | None = None
    expires_at: int | None = None
    scope: str | None = None
