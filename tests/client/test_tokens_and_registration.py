"""Token requests/responses, client authentication and registration choice."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from ostiary.client._http import HttpResponse
from ostiary.client.discovery import AuthorizationServerMetadata
from ostiary.client.registration import (
    ClientConfig,
    ClientRegistration,
    build_registration_request,
    choose_registration,
    parse_registration_response,
)
from ostiary.client.tokens import (
    JWT_BEARER_ASSERTION_TYPE,
    TokenSet,
    client_credentials_request,
    parse_token_response,
    refresh_request,
    select_auth_method,
)
from ostiary.errors import AuthorizationFlowError, RegistrationError

META = AuthorizationServerMetadata(
    issuer="https://as.example",
    token_endpoint="https://as.example/token",
    registration_endpoint="https://as.example/register",
)


def response(status: int, body: bytes) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, body)


def test_token_response_computes_expiry_and_keeps_requested_scope() -> None:
    tokens = parse_token_response(
        response(200, b'{"access_token":"a","token_type":"bearer","expires_in":60}'),
        requested_scope="x y",
        previous_refresh_token="old",
        now=1000.0,
    )
    assert tokens == TokenSet(
        access_token="a", token_type="Bearer", refresh_token="old", scope="x y", expires_at=1060.0
    )
    assert tokens.is_expiring(now=1029.0) is False
    assert tokens.is_expiring(now=1030.0) is True


def test_token_error_carries_the_oauth_error() -> None:
    with pytest.raises(AuthorizationFlowError) as caught:
        parse_token_response(
            response(400, b'{"error":"invalid_grant","error_description":"revoked"}')
        )
    assert (str(caught.value), caught.value.error) == (
        "token request failed (invalid_grant: revoked)",
        "invalid_grant",
    )


def test_html_token_response_is_a_clear_error() -> None:
    with pytest.raises(AuthorizationFlowError) as caught:
        parse_token_response(HttpResponse(200, {"content-type": "text/html"}, b"<html>"))
    assert str(caught.value) == "token response is not a valid token (RFC 6749 §5.1)"


@pytest.mark.parametrize(
    ("registration", "supported", "key", "expected"),
    [
        (
            ClientRegistration(
                issuer="i", client_id="c", token_endpoint_auth_method="client_secret_post"
            ),
            None,
            False,
            "client_secret_post",
        ),
        (ClientRegistration(issuer="i", client_id="c"), None, False, "none"),
        (
            ClientRegistration(issuer="i", client_id="c", client_secret="s"),
            None,
            False,
            "client_secret_basic",
        ),
        (
            ClientRegistration(issuer="i", client_id="c", client_secret="s"),
            ["client_secret_post"],
            False,
            "client_secret_post",
        ),
        (ClientRegistration(issuer="i", client_id="c", client_secret="s"), ["none"], False, "none"),
        (
            ClientRegistration(issuer="i", client_id="c"),
            ["private_key_jwt"],
            True,
            "private_key_jwt",
        ),
    ],
)
def test_select_auth_method(
    registration: ClientRegistration, supported: list[str] | None, key: bool, expected: str
) -> None:
    meta = META.model_copy(update={"token_endpoint_auth_methods_supported": supported})
    assert select_auth_method(registration, meta, key) == expected


def test_private_key_jwt_assertion_claims() -> None:
    key = ECKey.generate_key("P-256")
    pem = key.as_pem(private=True).decode()
    registration = ClientRegistration(issuer=META.issuer, client_id="svc")
    meta = META.model_copy(update={"token_endpoint_auth_methods_supported": ["private_key_jwt"]})

    request = client_credentials_request(
        resource="https://mcp/mcp",
        scope="a",
        registration=registration,
        metadata=meta,
        signing=(pem, "ES256"),
    )

    form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    assert form["client_assertion_type"] == JWT_BEARER_ASSERTION_TYPE
    token = jwt.decode(form["client_assertion"], key, algorithms=["ES256"])
    assert {k: token.claims[k] for k in ("iss", "sub", "aud")} == {
        "iss": "svc",
        "sub": "svc",
        "aud": "https://as.example",
    }
    assert token.claims["exp"] - token.claims["iat"] == 300
    assert (form["grant_type"], form["resource"], form["scope"], form["client_id"]) == (
        "client_credentials",
        "https://mcp/mcp",
        "a",
        "svc",
    )


def test_refresh_request_sends_resource() -> None:
    registration = ClientRegistration(issuer=META.issuer, client_id="c")
    request = refresh_request(
        refresh_token="rt", resource="https://mcp/mcp", registration=registration, metadata=META
    )
    assert parse_qs(request.body.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["rt"],
        "resource": ["https://mcp/mcp"],
        "client_id": ["c"],
    }
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_registration_order_pre_registered_then_cimd_then_dcr() -> None:
    cimd = META.model_copy(update={"client_id_metadata_document_supported": True})
    assert choose_registration(ClientConfig(client_id="c"), cimd) == "pre_registered"
    url = "https://app.example/client.json"
    assert choose_registration(ClientConfig(client_metadata_url=url), cimd) == (
        "client_id_metadata_document"
    )
    assert choose_registration(ClientConfig(client_metadata_url=url), META) == "dynamic"
    with pytest.raises(RegistrationError):
        choose_registration(ClientConfig(), META.model_copy(update={"registration_endpoint": None}))


def test_registration_request_always_names_application_type() -> None:
    assert build_registration_request(
        ClientConfig(
            client_name="n", redirect_uris=("http://127.0.0.1/cb",), application_type="web"
        ),
        META.model_copy(update={"token_endpoint_auth_methods_supported": ["client_secret_basic"]}),
    ) == {
        "client_name": "n",
        "redirect_uris": ["http://127.0.0.1/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "application_type": "web",
    }


def test_registration_failure_is_surfaced() -> None:
    with pytest.raises(RegistrationError) as caught:
        parse_registration_response(
            400,
            {"error": "invalid_client_metadata", "error_description": "bad redirect"},
            META,
            ClientConfig(),
        )
    assert str(caught.value) == (
        "dynamic registration at https://as.example/register failed "
        "(invalid_client_metadata: bad redirect)"
    )


def test_registration_expiry() -> None:
    reg = ClientRegistration(issuer="i", client_id="c", client_secret_expires_at=50)
    assert reg.is_expired(now=49) is False
    assert reg.is_expired(now=50) is True
    assert (
        ClientRegistration(issuer="i", client_id="c", client_secret_expires_at=0).is_expired()
        is False
    )
