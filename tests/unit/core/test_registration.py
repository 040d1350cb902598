"""Dynamic client registration and management (RFC 7591 §2-§3; RFC 7592 §2.2)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from joserfc.jwk import ECKey

from ostiary.core.models import Client
from ostiary.core.registration import (
    IssuedCredentials,
    apply_client_update,
    build_registered_client,
    build_registration_response,
)
from ostiary.core.secrets import hash_secret, matches_hash
from ostiary.errors import InvalidClientMetadataError, InvalidRedirectUriError

SCOPES = ("mcp:read", "mcp:write", "offline_access")
NATIVE = {"redirect_uris": ["http://127.0.0.1/callback"], "token_endpoint_auth_method": "none"}
PUBLIC_JWK = ECKey.generate_key("P-256").as_dict(private=False)


def register(metadata: dict[str, Any], **kw: Any) -> tuple[Client, IssuedCredentials]:
    args: dict[str, Any] = {
        "tenant_id": "t1",
        "now": 1000,
        "supported_scopes": SCOPES,
        "client_credentials_enabled": True,
        "secret_ttl": 0,
    }
    args.update(kw)
    return build_registered_client(metadata, **args)


def metadata_error(metadata: dict[str, Any], **kw: Any) -> InvalidClientMetadataError:
    with pytest.raises(InvalidClientMetadataError) as exc:
        register(metadata, **kw)
    assert exc.value.error == "invalid_client_metadata"
    return exc.value


def redirect_error(metadata: dict[str, Any]) -> InvalidRedirectUriError:
    with pytest.raises(InvalidRedirectUriError) as exc:
        register(metadata)
    assert exc.value.error == "invalid_redirect_uri"
    return exc.value


def test_public_native_client_defaults() -> None:
    """MCP clients register with token_endpoint_auth_method=none and loopback redirects."""
    client, creds = register({**NATIVE, "client_name": "Claude", "scope": "mcp:read mcp:read"})
    assert client.tenant_id == "t1"
    assert client.source == "dcr"
    assert client.client_id_issued_at == 1000
    assert client.redirect_uris == ("http://127.0.0.1/callback",)
    assert client.grant_types == ("authorization_code", "refresh_token")
    assert client.response_types == ("code",)
    assert client.application_type == "native"
    assert client.client_name == "Claude"
    assert client.scope == "mcp:read"
    assert client.client_secret_hash is None
    assert creds.client_secret is None
    assert matches_hash(creds.registration_access_token, client.registration_access_token_hash)
    assert len(client.client_id) >= 20


def test_default_auth_method_is_client_secret_basic_with_hashed_secret() -> None:
    """RFC 7591 §2: token_endpoint_auth_method defaults to client_secret_basic."""
    client, creds = register({"redirect_uris": ["https://app.example.com/cb"]}, secret_ttl=3600)
    assert client.token_endpoint_auth_method == "client_secret_basic"
    assert client.application_type == "web"
    assert creds.client_secret is not None
    assert client.client_secret_hash == hash_secret(creds.client_secret)
    assert client.client_secret_expires_at == 4600


def test_secret_without_ttl_never_expires() -> None:
    client, _ = register({**NATIVE, "token_endpoint_auth_method": "client_secret_post"})
    assert client.client_secret_expires_at == 0


def test_each_registration_gets_fresh_identifiers() -> None:
    a, ca = register(NATIVE)
    b, cb = register(NATIVE)
    assert a.client_id != b.client_id
    assert ca.registration_access_token != cb.registration_access_token


@pytest.mark.parametrize(
    ("uris", "expected"),
    [
        (["http://127.0.0.1/cb"], "native"),
        (["com.example.app:/cb"], "native"),
        (["http://localhost:3000/cb", "https://app.example.com/cb"], "native"),
        (["https://app.example.com/cb"], "web"),
    ],
)
def test_application_type_is_inferred(uris: list[str], expected: str) -> None:
    client, _ = register({**NATIVE, "redirect_uris": uris})
    assert client.application_type == expected


def test_explicit_web_application_type_refuses_loopback() -> None:
    """OIDC Registration: web clients must not use localhost redirect URIs."""
    err = redirect_error({**NATIVE, "application_type": "web"})
    assert err.description == "web clients must use https redirect URIs"


def test_unknown_application_type() -> None:
    err = metadata_error({**NATIVE, "application_type": "desktop"})
    assert err.description == "application_type must be native or web"


def test_redirect_uris_required_for_authorization_code() -> None:
    err = redirect_error({"token_endpoint_auth_method": "none"})
    assert err.description == "redirect_uris is required for the authorization_code grant"
    err = redirect_error({"redirect_uris": [], "token_endpoint_auth_method": "none"})
    assert err.description == "redirect_uris is required for the authorization_code grant"


@pytest.mark.parametrize("value", ["http://127.0.0.1/cb", [1], [None], {"a": 1}, 5])
def test_redirect_uris_must_be_a_string_array(value: object) -> None:
    err = redirect_error({"redirect_uris": value, "token_endpoint_auth_method": "none"})
    assert err.description == "redirect_uris must be an array of strings"


def test_too_many_redirect_uris() -> None:
    uris = [f"http://127.0.0.1/cb{i}" for i in range(21)]
    err = redirect_error({**NATIVE, "redirect_uris": uris})
    assert err.description == "too many redirect_uris"


def test_bad_redirect_uri_is_invalid_redirect_uri() -> None:
    err = redirect_error({**NATIVE, "redirect_uris": ["javascript:alert(1)"]})
    assert err.description == "redirect_uri scheme javascript is not allowed"


@pytest.mark.parametrize(
    ("field", "value", "description"),
    [
        ("client_name", 5, "client_name must be a string"),
        ("client_name", "x" * 2001, "client_name is too long"),
        ("scope", ["mcp:read"], "scope must be a string"),
        ("token_endpoint_auth_method", True, "token_endpoint_auth_method must be a string"),
        ("grant_types", "authorization_code", "grant_types must be an array of strings"),
        ("grant_types", [1], "grant_types must be an array of strings"),
        ("response_types", {"code": 1}, "response_types must be an array of strings"),
        ("contacts", "a@example.com", "contacts must be an array of strings"),
        ("contacts", ["a@example.com"] * 21, "contacts has too many entries"),
        ("application_type", 1, "application_type must be a string"),
        ("jwks_uri", 1, "jwks_uri must be a string"),
        ("software_id", 1.5, "software_id must be a string"),
    ],
)
def test_wrong_json_types_are_invalid_client_metadata(
    field: str, value: object, description: str
) -> None:
    """RFC 7591 §3.2.2: invalid metadata values are invalid_client_metadata, never a 500."""
    assert metadata_error({**NATIVE, field: value}).description == description


def test_metadata_must_be_an_object() -> None:
    err = metadata_error(["not", "an", "object"])  # type: ignore[arg-type]
    assert err.description == "client metadata must be a JSON object"


def test_unsupported_grant_type() -> None:
    err = metadata_error({**NATIVE, "grant_types": ["password"]})
    assert err.description == "unsupported grant_type: password"


def test_unsafe_characters_are_not_echoed() -> None:
    err = metadata_error({**NATIVE, "grant_types": ['implicit"\\\n']})
    assert err.description == "unsupported grant_type: implicit???"


def test_empty_grant_types() -> None:
    assert metadata_error({**NATIVE, "grant_types": []}).description == (
        "grant_types must not be empty"
    )


def test_client_credentials_needs_feature() -> None:
    err = metadata_error(
        {
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
        },
        client_credentials_enabled=False,
    )
    assert err.description == "the client_credentials grant is not enabled on this server"


def test_client_credentials_needs_confidential_client() -> None:
    """OAuth 2.1 §4.2: client credentials is for confidential clients."""
    err = metadata_error(
        {"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}
    )
    assert err.description == "the client_credentials grant requires a confidential client"


def test_client_credentials_only_client_has_no_redirects_or_response_types() -> None:
    client, creds = register({"grant_types": ["client_credentials"]})
    assert client.grant_types == ("client_credentials",)
    assert client.response_types == ()
    assert client.redirect_uris == ()
    assert client.application_type == "web"
    assert creds.client_secret is not None


@pytest.mark.parametrize(
    ("extra", "description"),
    [
        ({"response_types": ["token"]}, "unsupported response_type: token"),
        ({"response_types": []}, "the authorization_code grant type requires response_type code"),
        (
            {
                "grant_types": ["client_credentials"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            "response_type code requires the authorization_code grant type",
        ),
    ],
)
def test_response_types_consistent_with_grant_types(
    extra: dict[str, Any], description: str
) -> None:
    """RFC 7591 §2.1: grant_types and response_types must be consistent."""
    assert metadata_error({**NATIVE, **extra}).description == description


def test_unsupported_auth_method() -> None:
    err = metadata_error({**NATIVE, "token_endpoint_auth_method": "tls_client_auth"})
    assert err.description == "unsupported token_endpoint_auth_method: tls_client_auth"


def test_private_key_jwt_with_inline_jwks() -> None:
    client, creds = register(
        {**NATIVE, "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [PUBLIC_JWK]}}
    )
    assert client.jwks == {"keys": [PUBLIC_JWK]}
    assert creds.client_secret is None
    assert client.client_secret_hash is None


def test_private_key_jwt_with_jwks_uri() -> None:
    client, _ = register(
        {
            **NATIVE,
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "https://app.example.com/jwks.json",
        }
    )
    assert client.jwks_uri == "https://app.example.com/jwks.json"


@pytest.mark.parametrize(
    ("extra", "description"),
    [
        ({}, "private_key_jwt requires jwks or jwks_uri"),
        (
            {"jwks": {"keys": [PUBLIC_JWK]}, "jwks_uri": "https://app.example.com/jwks"},
            "use either jwks or jwks_uri, not both",
        ),
        ({"jwks_uri": "http://app.example.com/jwks"}, "jwks_uri must be an https URL"),
        ({"jwks_uri": "http://127.0.0.1/jwks"}, "jwks_uri must be an https URL"),
        ({"jwks_uri": "https://app.example.com/jwks#x"}, "jwks_uri must be an https URL"),
        ({"jwks": [PUBLIC_JWK]}, "jwks must be a JWK set object with a keys array"),
        ({"jwks": {"keys": []}}, "jwks must contain at least one key"),
        ({"jwks": {"keys": [PUBLIC_JWK] * 11}}, "jwks has too many keys"),
        (
            {"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
            "jwks keys must be EC, RSA or OKP public keys",
        ),
        ({"jwks": {"keys": ["x"]}}, "jwks keys must be EC, RSA or OKP public keys"),
        (
            {"jwks": {"keys": [ECKey.generate_key("P-256").as_dict(private=True)]}},
            "jwks must contain public keys only",
        ),
        (
            {"jwks": {"keys": [{"kty": "EC", "crv": "P-256"}]}},
            "jwks contains a key that cannot be parsed",
        ),
    ],
)
def test_private_key_jwt_key_material(extra: dict[str, Any], description: str) -> None:
    """RFC 7591 §2: jwks and jwks_uri are mutually exclusive; keys must be public."""
    metadata = {**NATIVE, "token_endpoint_auth_method": "private_key_jwt", **extra}
    assert metadata_error(metadata).description == description


def test_unsupported_scope() -> None:
    err = metadata_error({**NATIVE, "scope": "mcp:read admin"})
    assert err.description == "unsupported scope: admin"


def test_malformed_scope() -> None:
    err = metadata_error({**NATIVE, "scope": 'mcp:read "x"'})
    assert err.description == "scope must be space-separated scope tokens"


@pytest.mark.parametrize("field", ["client_uri", "logo_uri", "tos_uri", "policy_uri"])
@pytest.mark.parametrize(
    "value", ["http://app.example.com/x", "javascript:alert(1)", "https://a@b.example/x", "/x"]
)
def test_url_metadata_must_be_https(field: str, value: str) -> None:
    assert metadata_error({**NATIVE, field: value}).description == f"{field} must be an https URL"


def test_optional_metadata_is_kept() -> None:
    metadata = {
        **NATIVE,
        "client_uri": "https://app.example.com",
        "logo_uri": "http://localhost:3000/logo.png",
        "tos_uri": "https://app.example.com/tos",
        "policy_uri": "https://app.example.com/policy",
        "contacts": ["ops@example.com", "ops@example.com"],
        "software_id": "4NRB1-0XZABZI9E6-5SM3R",
        "software_version": "2.1",
        "unknown_field": "ignored",
    }
    client, _ = register(metadata)
    assert client.client_uri == "https://app.example.com"
    assert client.logo_uri == "http://localhost:3000/logo.png"
    assert client.extra == {
        "tos_uri": "https://app.example.com/tos",
        "policy_uri": "https://app.example.com/policy",
        "software_id": "4NRB1-0XZABZI9E6-5SM3R",
        "software_version": "2.1",
        "contacts": ["ops@example.com"],
    }


def test_registration_response_with_secret() -> None:
    """RFC 7591 §3.2.1 and RFC 7592 §3: issued secrets are returned once."""
    client, creds = register(
        {
            "redirect_uris": ["https://app.example.com/cb"],
            "client_name": "App",
            "software_id": "s1",
        },
        secret_ttl=60,
    )
    body = build_registration_response(
        client, creds, registration_client_uri="https://as.example.com/register/x"
    )
    assert body == {
        "client_id": client.client_id,
        "client_id_issued_at": 1000,
        "redirect_uris": ["https://app.example.com/cb"],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "application_type": "web",
        "client_name": "App",
        "software_id": "s1",
        "client_secret": creds.client_secret,
        "client_secret_expires_at": 1060,
        "registration_access_token": creds.registration_access_token,
        "registration_client_uri": "https://as.example.com/register/x",
    }


def test_read_response_never_contains_secrets() -> None:
    client, _ = register({"redirect_uris": ["https://app.example.com/cb"]})
    body = build_registration_response(client, None, registration_client_uri="https://as/r")
    assert "client_secret" not in body
    assert "registration_access_token" not in body
    assert body["client_secret_expires_at"] == 0
    assert body["registration_client_uri"] == "https://as/r"


def test_public_client_response_has_no_secret_fields() -> None:
    client, creds = register(
        {
            **NATIVE,
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [PUBLIC_JWK]},
            "scope": "mcp:read",
        }
    )
    body = build_registration_response(client, creds, registration_client_uri="https://as/r")
    assert "client_secret" not in body
    assert "client_secret_expires_at" not in body
    assert body["jwks"] == {"keys": [PUBLIC_JWK]}
    assert body["scope"] == "mcp:read"


def update(existing: Client, metadata: dict[str, Any]) -> Client:
    return apply_client_update(
        existing, metadata, now=2000, supported_scopes=SCOPES, client_credentials_enabled=True
    )


def test_update_replaces_metadata_and_keeps_identity() -> None:
    """RFC 7592 §2.2: the request replaces every metadata field."""
    client, creds = register(
        {"redirect_uris": ["https://app.example.com/cb"], "client_name": "Old"}, secret_ttl=60
    )
    updated = update(
        client,
        {
            "client_id": client.client_id,
            "client_secret": creds.client_secret,
            "redirect_uris": ["https://app.example.com/new"],
        },
    )
    assert updated.redirect_uris == ("https://app.example.com/new",)
    assert updated.client_name is None
    assert updated.client_id == client.client_id
    assert updated.client_secret_hash == client.client_secret_hash
    assert updated.client_secret_expires_at == client.client_secret_expires_at
    assert updated.registration_access_token_hash == client.registration_access_token_hash
    assert updated.client_id_issued_at == 1000
    assert updated.source == "dcr"


@pytest.mark.parametrize("disabled", [True, False])
def test_update_keeps_the_operators_disabled_flag(disabled: bool) -> None:
    """Metadata cannot carry ``disabled``: an update neither sets nor clears it."""
    client, _ = register(NATIVE)
    existing = replace(client, disabled=disabled)
    metadata = {"client_id": client.client_id, **NATIVE, "disabled": not disabled}
    assert update(existing, metadata).disabled is disabled


def test_update_to_public_method_drops_secret() -> None:
    client, _ = register({"redirect_uris": ["http://127.0.0.1/cb"]})
    updated = update(client, {"client_id": client.client_id, **NATIVE})
    assert updated.token_endpoint_auth_method == "none"
    assert updated.client_secret_hash is None


def test_update_cannot_switch_public_client_to_secret() -> None:
    client, _ = register(NATIVE)
    with pytest.raises(InvalidClientMetadataError) as exc:
        update(client, {"client_id": client.client_id, "redirect_uris": ["http://127.0.0.1/cb"]})
    assert exc.value.description == (
        "token_endpoint_auth_method cannot change to a secret method on update"
    )


@pytest.mark.parametrize(
    ("identity", "description"),
    [
        ({}, "client_id is required in an update request"),
        ({"client_id": "other"}, "client_id does not match the registration"),
        ({"client_id": 5}, "client_id does not match the registration"),
        ({"client_secret": "wrong"}, "client_secret does not match the registration"),
        ({"client_secret": 5}, "client_secret does not match the registration"),
    ],
)
def test_update_identity_must_match(identity: dict[str, Any], description: str) -> None:
    """RFC 7592 §2.2: client_id must match; a client_secret, if sent, must match."""
    client, _ = register({"redirect_uris": ["https://app.example.com/cb"]})
    body = {"client_id": client.client_id, "redirect_uris": ["https://app.example.com/cb"]}
    body.update(identity)
    if not identity:
        del body["client_id"]
    with pytest.raises(InvalidClientMetadataError) as exc:
        update(client, body)
    assert exc.value.description == description


def test_update_secret_on_public_client_does_not_match() -> None:
    client, _ = register(NATIVE)
    with pytest.raises(InvalidClientMetadataError) as exc:
        update(client, {**NATIVE, "client_id": client.client_id, "client_secret": "x"})
    assert exc.value.description == "client_secret does not match the registration"


def test_update_keeps_cimd_expiry_fields() -> None:
    client, _ = register(NATIVE)
    client = replace(client, metadata_expires_at=5)
    assert update(client, {**NATIVE, "client_id": client.client_id}).metadata_expires_at == 5
