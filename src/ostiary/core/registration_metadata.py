"""Client metadata validation, shared by registration and CIMD (RFC 7591 §2, §2.1).

Pure policy: it turns the JSON object a client sent (or a Client ID Metadata Document) into
:class:`ClientMetadata` with defaults applied, or raises ``invalid_client_metadata`` /
``invalid_redirect_uri``; :func:`client_from_metadata` makes the :class:`Client` record.
Registration and management (``core/registration.py``) and Client ID Metadata Documents
(``core/client_id_metadata.py``) both call it, the latter with a narrower set of
authentication methods.

Decisions worth knowing:

* ``token_endpoint_auth_method`` defaults to ``client_secret_basic`` as RFC 7591 §2 says; MCP
  public clients send ``none`` explicitly.
* ``application_type`` (OpenID Connect Registration, required from MCP clients since
  2026-07-28) is inferred when absent: ``native`` when the redirect URIs include a loopback or
  private-use-scheme URI and all of them are acceptable for a native app, otherwise ``web``.
* Every value is type-checked; a wrong JSON type is ``invalid_client_metadata``, never a crash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast, get_args

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ostiary.core.models import ApplicationType, AuthMethod, Client
from ostiary.core.redirect_uris import is_loopback_redirect, validate_registered_redirect_uri
from ostiary.core.scopes import format_scope, parse_scope
from ostiary.core.urls import split_url
from ostiary.errors import (
    InvalidClientMetadataError,
    InvalidRedirectUriError,
    InvalidScopeError,
)
from ostiary.loopback import is_loopback_host

__all__ = [
    "AUTH_METHODS",
    "DEFAULT_GRANT_TYPES",
    "SUPPORTED_GRANT_TYPES",
    "ClientMetadata",
    "client_from_metadata",
    "validate_client_metadata",
]

JWT_BEARER_GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SUPPORTED_GRANT_TYPES: Final = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    JWT_BEARER_GRANT_TYPE,
)
DEFAULT_GRANT_TYPES: Final = ("authorization_code", "refresh_token")
AUTH_METHODS: Final[tuple[AuthMethod, ...]] = get_args(AuthMethod)
#: Optional URL-valued metadata (RFC 7591 §2): https, or http on loopback.
URL_FIELDS: Final = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
#: Optional metadata kept in ``Client.extra`` and echoed back on read.
EXTRA_STRING_FIELDS: Final = ("tos_uri", "policy_uri", "software_id", "software_version")
MAX_STRING_LENGTH: Final = 2000
MAX_REDIRECT_URIS: Final = 20
MAX_CONTACTS: Final = 20
MAX_JWKS_KEYS: Final = 10
#: JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
_PRIVATE_JWK_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_ASYMMETRIC_KTY: Final = frozenset({"EC", "RSA", "OKP"})
_UNSAFE_DESCRIPTION_CHARS = re.compile(r"[^\x20-\x21\x23-\x5B\x5D-\x7E]")


@dataclass(frozen=True)
class ClientMetadata:
    """Validated RFC 7591 §2 client metadata, before ids and secrets are attached."""

    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: AuthMethod
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    application_type: ApplicationType
    client_name: str | None = None
    client_uri: str | None = None
    logo_uri: str | None = None
    scope: str | None = None
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _safe(value: object) -> str:
    """A short rendering of client input that fits the error_description charset."""
    return _UNSAFE_DESCRIPTION_CHARS.sub("?", str(value))[:60]


def _invalid(description: str) -> InvalidClientMetadataError:
    return InvalidClientMetadataError(description)


def _string(metadata: Mapping[str, Any], name: str) -> str | None:
    value = metadata.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{name} must be a string")
    if len(value) > MAX_STRING_LENGTH:
        raise _invalid(f"{name} is too long")
    return value


def _string_list(metadata: Mapping[str, Any], name: str, limit: int = 50) -> tuple[str, ...] | None:
    value = metadata.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid(f"{name} must be an array of strings")
    if len(value) > limit:
        raise _invalid(f"{name} has too many entries")
    return tuple(dict.fromkeys(cast("list[str]", value)))


def _web_url(name: str, value: str) -> str:
    """RFC 7591 §2 URL metadata: absolute https (http only on loopback), no fragment."""
    if not value.isascii() or any(ch.isspace() for ch in value) or "#" in value:
        raise _invalid(f"{name} must be an https URL")
    parts = split_url(value)
    if parts is None or "@" in parts.netloc or not parts.hostname:
        raise _invalid(f"{name} must be an https URL")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname)):
        return value
    raise _invalid(f"{name} must be an https URL")


def _grant_types(
    metadata: Mapping[str, Any], *, client_credentials_enabled: bool, jwt_bearer_enabled: bool
) -> tuple[str, ...]:
    grant_types = _string_list(metadata, "grant_types")
    if grant_types is None:
        return DEFAULT_GRANT_TYPES
    if not grant_types:
        raise _invalid("grant_types must not be empty")
    for grant_type in grant_types:
        if grant_type not in SUPPORTED_GRANT_TYPES:
            raise _invalid(f"unsupported grant_type: {_safe(grant_type)}")
    if "client_credentials" in grant_types and not client_credentials_enabled:
        raise _invalid("the client_credentials grant is not enabled on this server")
    if JWT_BEARER_GRANT_TYPE in grant_types and not jwt_bearer_enabled:
        raise _invalid("the jwt-bearer grant is not enabled on this server")
    return grant_types


def _response_types(metadata: Mapping[str, Any], grant_types: tuple[str, ...]) -> tuple[str, ...]:
    uses_code = "authorization_code" in grant_types
    response_types = _string_list(metadata, "response_types")
    if response_types is None:
        return ("code",) if uses_code else ()
    for response_type in response_types:
        if response_type != "code":
            raise _invalid(f"unsupported response_type: {_safe(response_type)}")
    # RFC 7591 §2.1: grant_types and response_types must be consistent.
    if response_types and not uses_code:
        raise _invalid("response_type code requires the authorization_code grant type")
    if uses_code and not response_types:
        raise _invalid("the authorization_code grant type requires response_type code")
    return response_types


def _auth_method(metadata: Mapping[str, Any], allowed: Sequence[AuthMethod]) -> AuthMethod:
    value = _string(metadata, "token_endpoint_auth_method")
    method = "client_secret_basic" if value is None else value
    if method not in allowed:
        raise _invalid(f"unsupported token_endpoint_auth_method: {_safe(method)}")
    return cast("AuthMethod", method)


def _validate_jwks(value: object) -> dict[str, Any]:
    """An inline JWK set holding only public asymmetric keys (RFC 7591 §2; RFC 7517 §5)."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise _invalid("jwks must be a JWK set object with a keys array")
    keys = cast("list[object]", value["keys"])
    if not keys:
        raise _invalid("jwks must contain at least one key")
    if len(keys) > MAX_JWKS_KEYS:
        raise _invalid("jwks has too many keys")
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in _ASYMMETRIC_KTY:
            raise _invalid("jwks keys must be EC, RSA or OKP public keys")
        if _PRIVATE_JWK_MEMBERS & key.keys():
            raise _invalid("jwks must contain public keys only")
    try:
        KeySet.import_key_set(cast("Any", value))
    except (JoseError, ValueError, TypeError, KeyError):  # KeyError: unknown EC curve
        raise _invalid("jwks contains a key that cannot be parsed") from None
    return cast("dict[str, Any]", value)


def _key_material(
    metadata: Mapping[str, Any], method: AuthMethod
) -> tuple[dict[str, Any] | None, str | None]:
    jwks_value = metadata.get("jwks")
    jwks_uri = _string(metadata, "jwks_uri")
    if jwks_value is not None and jwks_uri is not None:
        # RFC 7591 §2: jwks_uri and jwks MUST NOT both be present.
        raise _invalid("use either jwks or jwks_uri, not both")
    jwks = _validate_jwks(jwks_value) if jwks_value is not None else None
    if jwks_uri is not None:
        if not jwks_uri.startswith("https://"):
            raise _invalid("jwks_uri must be an https URL")
        _web_url("jwks_uri", jwks_uri)
    if method == "private_key_jwt" and jwks is None and jwks_uri is None:
        raise _invalid("private_key_jwt requires jwks or jwks_uri")
    return jwks, jwks_uri


def _application_type(
    metadata: Mapping[str, Any], redirect_uris: tuple[str, ...]
) -> ApplicationType:
    value = _string(metadata, "application_type")
    if value is not None:
        if value not in ("native", "web"):
            raise _invalid("application_type must be native or web")
        return cast("ApplicationType", value)
    native_only = [u for u in redirect_uris if is_loopback_redirect(u) or _is_private_use(u)]
    if not native_only:
        return "web"
    try:
        for uri in redirect_uris:
            validate_registered_redirect_uri(uri, "native")
    except InvalidRedirectUriError:
        return "web"
    return "native"


def _is_private_use(uri: str) -> bool:
    scheme, sep, _ = uri.partition(":")
    return bool(sep) and scheme.lower() not in ("http", "https")


def _redirect_uris(metadata: Mapping[str, Any], grant_types: tuple[str, ...]) -> tuple[str, ...]:
    value = metadata.get("redirect_uris")
    if value is not None and (
        not isinstance(value, list) or not all(isinstance(item, str) for item in value)
    ):
        raise InvalidRedirectUriError("redirect_uris must be an array of strings")
    uris = tuple(dict.fromkeys(cast("list[str]", value or [])))
    if "authorization_code" in grant_types and not uris:
        raise InvalidRedirectUriError("redirect_uris is required for the authorization_code grant")
    if len(uris) > MAX_REDIRECT_URIS:
        raise InvalidRedirectUriError("too many redirect_uris")
    return uris


def _scope(metadata: Mapping[str, Any], supported_scopes: Sequence[str]) -> str | None:
    value = _string(metadata, "scope")
    if value is None:
        return None
    try:
        scopes = parse_scope(value)
    except InvalidScopeError:
        raise _invalid("scope must be space-separated scope tokens") from None
    unsupported = [s for s in scopes if s not in supported_scopes]
    if unsupported:
        raise _invalid(f"unsupported scope: {_safe(' '.join(unsupported))}")
    return format_scope(scopes) or None


def _extra(metadata: Mapping[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for name in EXTRA_STRING_FIELDS:
        value = _string(metadata, name)
        if value is not None:
            extra[name] = _web_url(name, value) if name in URL_FIELDS else value
    contacts = _string_list(metadata, "contacts", limit=MAX_CONTACTS)
    if contacts is not None:
        extra["contacts"] = list(contacts)
    # RFC 9449 §5.2: true makes every token request of this client need a DPoP proof.
    bound = metadata.get("dpop_bound_access_tokens")
    if bound is not None:
        if not isinstance(bound, bool):
            raise _invalid("dpop_bound_access_tokens must be a boolean")
        extra["dpop_bound_access_tokens"] = bound
    return extra


def validate_client_metadata(
    metadata: Mapping[str, Any],
    *,
    supported_scopes: Sequence[str],
    client_credentials_enabled: bool,
    jwt_bearer_enabled: bool = False,
    allowed_auth_methods: Sequence[AuthMethod] = AUTH_METHODS,
) -> ClientMetadata:
    """Validate RFC 7591 §2 client metadata.

    Args:
        metadata: The parsed JSON object sent by the client (or fetched, for CIMD).
        supported_scopes: Scopes the server knows; ``scope`` must be a subset.
        client_credentials_enabled: Whether the client_credentials grant may be registered.
        jwt_bearer_enabled: Whether the jwt-bearer (ID-JAG) grant may be registered.
        allowed_auth_methods: Token endpoint authentication methods acceptable here.

    Returns:
        The validated metadata with defaults applied.

    Raises:
        InvalidClientMetadataError: A field has the wrong type or an unacceptable value.
        InvalidRedirectUriError: ``redirect_uris`` is missing or an entry is unacceptable.
    """
    if not isinstance(metadata, Mapping):
        raise _invalid("client metadata must be a JSON object")
    grant_types = _grant_types(
        metadata,
        client_credentials_enabled=client_credentials_enabled,
        jwt_bearer_enabled=jwt_bearer_enabled,
    )
    response_types = _response_types(metadata, grant_types)
    method = _auth_method(metadata, allowed_auth_methods)
    if "client_credentials" in grant_types and method == "none":
        # OAuth 2.1 §4.2: the client_credentials grant is for confidential clients only.
        raise _invalid("the client_credentials grant requires a confidential client")
    if JWT_BEARER_GRANT_TYPE in grant_types and method == "none":
        # SEP-990: the MCP AS authenticates the client presenting an ID-JAG.
        raise _invalid("the jwt-bearer grant requires a confidential client")
    jwks, jwks_uri = _key_material(metadata, method)
    redirect_uris = _redirect_uris(metadata, grant_types)
    application_type = _application_type(metadata, redirect_uris)
    for uri in redirect_uris:
        validate_registered_redirect_uri(uri, application_type)
    urls = {name: _string(metadata, name) for name in ("client_uri", "logo_uri")}
    return ClientMetadata(
        redirect_uris=redirect_uris,
        token_endpoint_auth_method=method,
        grant_types=grant_types,
        response_types=response_types,
        application_type=application_type,
        client_name=_string(metadata, "client_name"),
        client_uri=_web_url("client_uri", urls["client_uri"]) if urls["client_uri"] else None,
        logo_uri=_web_url("logo_uri", urls["logo_uri"]) if urls["logo_uri"] else None,
        scope=_scope(metadata, supported_scopes),
        jwks=jwks,
        jwks_uri=jwks_uri,
        extra=_extra(metadata),
    )


def client_from_metadata(
    validated: ClientMetadata,
    *,
    tenant_id: str,
    client_id: str,
    source: Literal["dcr", "static", "cimd"],
    issued_at: int,
) -> Client:
    """A :class:`Client` record carrying ``validated`` metadata and no secrets."""
    return Client(
        tenant_id=tenant_id,
        client_id=client_id,
        redirect_uris=validated.redirect_uris,
        token_endpoint_auth_method=validated.token_endpoint_auth_method,
        grant_types=validated.grant_types,
        response_types=validated.response_types,
        application_type=validated.application_type,
        client_name=validated.client_name,
        client_uri=validated.client_uri,
        logo_uri=validated.logo_uri,
        scope=validated.scope,
        jwks=validated.jwks,
        jwks_uri=validated.jwks_uri,
        client_id_issued_at=issued_at,
        source=source,
        extra=dict(validated.extra),
    )
