"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-00; MCP CIMD)."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import ECKey

from ostiary.core.client_id_metadata import build_metadata_client, is_client_id_metadata_url
from ostiary.errors import InvalidClientMetadataError

URL = "https://app.example.com/oauth/client-metadata.json"
DOC: dict[str, Any] = {
    "client_id": URL,
    "client_name": "Example MCP Client",
    "redirect_uris": ["http://127.0.0.1:3000/callback", "http://localhost:3000/callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
}


@pytest.mark.parametrize(
    "client_id",
    [
        URL,
        "https://app.example.com/c",
        "https://app.example.com:8443/client.json",
        "https://app.example.com/client?v=1",
        "https://app.example.com/a.b/..c/client",
    ],
)
def test_metadata_urls(client_id: str) -> None:
    assert is_client_id_metadata_url(client_id)


@pytest.mark.parametrize(
    "client_id",
    [
        "abc123",
        "http://app.example.com/client.json",
        "HTTPS://app.example.com/client.json",
        "https://app.example.com",
        "https://app.example.com/",
        "https://app.example.com?x=1",
        "https://app.example.com/client.json#frag",
        "https://user@app.example.com/client.json",
        "https://app.example.com/a/../client.json",
        "https://app.example.com/./client.json",
        "https://app.example.com/a/..",
        "https:///client.json",
        "https://app.example.com:99999/client.json",
        "https://app.example.com/cli ent.json",
        "https://app.exämple.com/client.json",
        "https://app.example.com\\@evil.example/x",
        "https://app.example.com/" + "a" * 2048,
    ],
)
def test_not_metadata_urls(client_id: str) -> None:
    assert not is_client_id_metadata_url(client_id)


def build(document: object, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "tenant_id": "t1",
        "now": 100,
        "expires_at": 400,
        "supported_scopes": ("mcp:read",),
    }
    args.update(kw)
    return build_metadata_client(URL, document, **args)


def test_valid_document_builds_public_cimd_client() -> None:
    client = build(DOC)
    assert client.client_id == URL
    assert client.source == "cimd"
    assert client.token_endpoint_auth_method == "none"
    assert client.application_type == "native"
    assert client.client_name == "Example MCP Client"
    assert client.redirect_uris == tuple(DOC["redirect_uris"])
    assert client.metadata_expires_at == 400
    assert client.client_id_issued_at == 100
    assert client.client_secret_hash is None
    assert client.registration_access_token_hash is None


def test_private_key_jwt_document() -> None:
    jwk = ECKey.generate_key("P-256").as_dict(private=False)
    client = build(
        {**DOC, "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk]}}
    )
    assert client.token_endpoint_auth_method == "private_key_jwt"


def error(document: object, **kw: Any) -> str:
    with pytest.raises(InvalidClientMetadataError) as exc:
        build(document, **kw)
    assert exc.value.error == "invalid_client_metadata"
    return exc.value.description


@pytest.mark.parametrize("document", [[DOC], "x", None, 5])
def test_document_must_be_an_object(document: object) -> None:
    assert error(document) == "the client metadata document must be a JSON object"


@pytest.mark.parametrize(
    "client_id", [None, URL + "/", URL.upper(), "https://app.example.com/other.json", 5]
)
def test_client_id_must_equal_url_exactly(client_id: object) -> None:
    """MCP CIMD: the document's client_id MUST match the URL exactly."""
    assert error({**DOC, "client_id": client_id}) == (
        "the client metadata document client_id does not match its URL"
    )


@pytest.mark.parametrize("field", ["client_name", "redirect_uris"])
@pytest.mark.parametrize("value", [None, "", []])
def test_required_fields(field: str, value: object) -> None:
    document = {**DOC, field: value}
    assert error(document) == f"the client metadata document must include {field}"


@pytest.mark.parametrize("field", ["client_secret", "client_secret_expires_at"])
def test_shared_secrets_are_forbidden(field: str) -> None:
    assert error({**DOC, field: "s"}) == (
        "the client metadata document must not contain a client_secret"
    )


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_secret_auth_methods_are_forbidden(method: str) -> None:
    assert error({**DOC, "token_endpoint_auth_method": method}) == (
        f"the client metadata document is invalid: unsupported token_endpoint_auth_method: {method}"
    )


def test_registration_rules_apply() -> None:
    assert error({**DOC, "redirect_uris": ["http://evil.example/cb"]}) == (
        "the client metadata document is invalid: web clients must use https redirect URIs"
    )
    assert error({**DOC, "client_name": 7}) == (
        "the client metadata document is invalid: client_name must be a string"
    )
    assert error({**DOC, "scope": "admin"}) == (
        "the client metadata document is invalid: unsupported scope: admin"
    )


def test_client_credentials_needs_opt_in() -> None:
    jwk = ECKey.generate_key("P-256").as_dict(private=False)
    document = {
        **DOC,
        "grant_types": ["authorization_code", "client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [jwk]},
    }
    assert error(document) == (
        "the client metadata document is invalid: "
        "the client_credentials grant is not enabled on this server"
    )
    assert build(document, client_credentials_enabled=True).grant_types == (
        "authorization_code",
        "client_credentials",
    )
