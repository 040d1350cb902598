"""Arbitrary input never crashes the parsers: only the documented OAuth errors come out.

STYLE §D "errors are data": every malformed request is an OAuthError, never a 500.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Any
from urllib.parse import quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from ostiary.core.client_auth import parse_client_credentials
from ostiary.core.client_id_metadata import build_metadata_client, is_client_id_metadata_url
from ostiary.core.redirect_uris import (
    FORBIDDEN_SCHEMES,
    match_redirect_uri,
    validate_registered_redirect_uri,
)
from ostiary.core.registration import build_registered_client
from ostiary.core.resource import canonical_resource, validate_resources
from ostiary.errors import (
    InvalidClientError,
    InvalidClientMetadataError,
    InvalidRedirectUriError,
    InvalidRequestError,
    InvalidTargetError,
)
from ostiary.net.fetch import is_public_address

FIELDS = [
    "redirect_uris",
    "grant_types",
    "response_types",
    "token_endpoint_auth_method",
    "application_type",
    "scope",
    "client_name",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "contacts",
    "jwks",
    "jwks_uri",
    "software_id",
    "client_id",
    "client_secret",
]
SAMPLE_STRINGS = st.sampled_from(
    [
        "http://127.0.0.1/cb",
        "https://app.example.com/cb",
        "com.example.app:/cb",
        "javascript:alert(1)",
        "none",
        "private_key_jwt",
        "client_secret_basic",
        "authorization_code",
        "client_credentials",
        "refresh_token",
        "code",
        "native",
        "web",
        "mcp:read",
        "",
    ]
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    SAMPLE_STRINGS,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(["keys", "kty", "crv", "x", "y", "d"]), children, max_size=4
        ),
    ),
    max_leaves=12,
)
metadata = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)


@settings(max_examples=300)
@given(metadata)
def test_registration_raises_only_oauth_errors(doc: dict[str, Any]) -> None:
    try:
        client, creds = build_registered_client(
            doc,
            tenant_id="t",
            now=0,
            supported_scopes=("mcp:read",),
            client_credentials_enabled=True,
            secret_ttl=0,
        )
    except (InvalidClientMetadataError, InvalidRedirectUriError):
        return
    for uri in client.redirect_uris:
        validate_registered_redirect_uri(uri, client.application_type)
    assert (creds.client_secret is None) == (client.client_secret_hash is None)


URL = "https://app.example.com/client.json"


@settings(max_examples=200)
@given(metadata, st.booleans())
def test_cimd_raises_only_client_metadata_errors(doc: dict[str, Any], matching: bool) -> None:
    if matching:
        doc = {**doc, "client_id": URL}
    try:
        client = build_metadata_client(
            URL, doc, tenant_id="t", now=0, expires_at=60, supported_scopes=("mcp:read",)
        )
    except InvalidClientMetadataError:
        return
    assert client.token_endpoint_auth_method in ("none", "private_key_jwt")
    assert client.client_secret_hash is None


form_keys = st.sampled_from(
    ["client_id", "client_secret", "client_assertion", "client_assertion_type", "grant_type"]
)


@given(
    st.one_of(st.none(), st.text(max_size=40), st.text(max_size=30).map(lambda t: "Basic " + t)),
    st.dictionaries(form_keys, st.text(max_size=30), max_size=5),
)
def test_client_credential_parsing_raises_only_oauth_errors(
    header: str | None, form: dict[str, str]
) -> None:
    try:
        presented = parse_client_credentials(header, form)
    except (InvalidRequestError, InvalidClientError):
        return
    assert presented.client_id


@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
def test_basic_credentials_round_trip(client_id: str, secret: str) -> None:
    """RFC 6749 §2.3.1: form-urlencode each part, join with ':', base64."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    header = "Basic " + base64.b64encode(raw).decode("ascii")
    presented = parse_client_credentials(header, {})
    assert (presented.client_id, presented.client_secret) == (client_id, secret)


@given(st.text(max_size=60))
def test_redirect_validation_raises_only_invalid_redirect_uri(uri: str) -> None:
    for app_type in ("native", "web"):
        try:
            validate_registered_redirect_uri(uri, app_type)
        except InvalidRedirectUriError:
            continue
        scheme = uri.split(":", 1)[0].lower()
        assert scheme not in FORBIDDEN_SCHEMES
        assert "#" not in uri
        assert match_redirect_uri(uri, [uri])


@given(st.text(max_size=60))
def test_resource_parsing_raises_only_invalid_target(value: str) -> None:
    try:
        canonical = canonical_resource(value)
        validate_resources([value], allowed=None)
    except InvalidTargetError:
        return
    assert canonical_resource(canonical) == canonical


@given(st.text(max_size=80))
def test_metadata_url_check_never_crashes(value: str) -> None:
    if is_client_id_metadata_url(value):
        assert value.startswith("https://")
        assert "#" not in value


@given(st.integers(0, 2**32 - 1))
def test_ipv4_mapped_addresses_are_judged_like_ipv4(n: int) -> None:
    v4 = ipaddress.IPv4Address(n)
    mapped = ipaddress.IPv6Address(f"::ffff:{v4}")
    assert is_public_address(mapped) == is_public_address(v4)
