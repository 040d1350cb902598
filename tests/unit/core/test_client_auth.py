"""Token endpoint client authentication (RFC 6749 §2.3.1; RFC 7523 §2.2, §3; OAuth 2.1 §2.4)."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Mapping
from typing import Any

import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from ostiary.core.client_auth import (
    JWT_BEARER_ASSERTION_TYPE,
    PresentedCredentials,
    authenticate_client,
    parse_client_credentials,
)
from ostiary.core.models import Client
from ostiary.core.secrets import hash_secret
from ostiary.errors import ConfigurationError, InvalidClientError, InvalidRequestError

ISSUER = "https://as.example.com"
TOKEN_ENDPOINT = "https://as.example.com/token"
NOW = 1_700_000_000
EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})


def b64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


def basic(client_id: str, secret: str) -> str:
    return "Basic " + b64(f"{client_id}:{secret}")


def b64url_json(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# --- parse_client_credentials -------------------------------------------------------------


def test_basic_header() -> None:
    presented = parse_client_credentials(basic("c1", "s3cret"), {"grant_type": "x"})
    assert presented == PresentedCredentials("client_secret_basic", "c1", client_secret="s3cret")


def test_basic_header_values_are_form_urldecoded() -> None:
    """RFC 6749 §2.3.1: id and secret are application/x-www-form-urlencoded before base64."""
    header = basic("my%3Aclient", "p%40ss+word%25")
    assert parse_client_credentials(header, {}) == PresentedCredentials(
        "client_secret_basic", "my:client", client_secret="p@ss word%"
    )


def test_basic_scheme_is_case_insensitive_and_body_client_id_may_repeat_it() -> None:
    header = "bAsIc " + b64("c1:s")
    assert parse_client_credentials(header, {"client_id": "c1"}).client_id == "c1"


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!notbase64",
        "Basic " + b64("no-colon"),
        "Basic " + b64(":secret"),
        "Basic " + b64("id:"),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Basic ",
    ],
)
def test_malformed_basic_header_is_invalid_client(header: str) -> None:
    with pytest.raises(InvalidClientError) as exc:
        parse_client_credentials(header, {})
    assert exc.value.description == "malformed Basic authorization header"
    assert exc.value.used_basic is True
    assert exc.value.headers() == {"WWW-Authenticate": 'Basic realm="ostiary"'}


def test_basic_header_disagreeing_with_body_client_id() -> None:
    with pytest.raises(InvalidClientError) as exc:
        parse_client_credentials(basic("c1", "s"), {"client_id": "c2"})
    assert exc.value.description == "client_id does not match the Authorization header"
    assert exc.value.used_basic is True


def test_non_basic_authorization_header_is_ignored() -> None:
    presented = parse_client_credentials("Bearer abc", {"client_id": "c1"})
    assert presented == PresentedCredentials("none", "c1")


def test_client_secret_post() -> None:
    presented = parse_client_credentials(None, {"client_id": "c1", "client_secret": "s"})
    assert presented == PresentedCredentials("client_secret_post", "c1", client_secret="s")


def test_public_client() -> None:
    assert parse_client_credentials(None, {"client_id": "c1"}) == PresentedCredentials("none", "c1")


@pytest.mark.parametrize("form", [{}, {"client_id": ""}, {"client_secret": "s"}])
def test_missing_client_id_is_invalid_request(form: dict[str, str]) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        parse_client_credentials(None, form)
    assert exc.value.description == "client_id is required"


def assertion_for(claims: Mapping[str, Any], key: Any = EC_KEY, alg: str = "ES256") -> str:
    header: dict[str, Any] = {"alg": alg}
    if getattr(key, "kid", None):
        header["kid"] = key.kid
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return jwt.encode(header, dict(claims), key, algorithms=[alg])


def jwt_form(assertion: str, **extra: str) -> dict[str, str]:
    return {
        "client_assertion_type": JWT_BEARER_ASSERTION_TYPE,
        "client_assertion": assertion,
        **extra,
    }


def test_private_key_jwt_takes_client_id_from_sub() -> None:
    """RFC 7523 §3: sub is the client_id when client_id is not sent."""
    assertion = assertion_for({"sub": "c1"})
    assert parse_client_credentials(None, jwt_form(assertion)) == PresentedCredentials(
        "private_key_jwt", "c1", assertion=assertion
    )


def test_private_key_jwt_with_matching_client_id() -> None:
    assertion = assertion_for({"sub": "c1"})
    assert parse_client_credentials(None, jwt_form(assertion, client_id="c1")).client_id == "c1"


def test_private_key_jwt_with_conflicting_client_id() -> None:
    with pytest.raises(InvalidClientError) as exc:
        parse_client_credentials(None, jwt_form(assertion_for({"sub": "c1"}), client_id="c2"))
    assert exc.value.description == "client_id does not match the client assertion"


def test_private_key_jwt_without_any_client_id() -> None:
    with pytest.raises(InvalidRequestError) as exc:
        parse_client_credentials(None, jwt_form(assertion_for({"iss": "c1"})))
    assert exc.value.description == "client_id is required"


@pytest.mark.parametrize(
    ("form", "error", "description"),
    [
        (
            {"client_assertion": "a.b.c"},
            InvalidClientError,
            f"client_assertion_type must be {JWT_BEARER_ASSERTION_TYPE}",
        ),
        (
            {"client_assertion": "a.b.c", "client_assertion_type": "urn:other"},
            InvalidClientError,
            f"client_assertion_type must be {JWT_BEARER_ASSERTION_TYPE}",
        ),
        (
            {"client_assertion_type": JWT_BEARER_ASSERTION_TYPE},
            InvalidRequestError,
            "client_assertion is required",
        ),
        (jwt_form("not-a-jwt"), InvalidClientError, "client assertion is malformed"),
        (jwt_form("a.!!!.c"), InvalidClientError, "client assertion is malformed"),
        (
            jwt_form("a." + b64url_json([1]) + ".c"),
            InvalidClientError,
            "client assertion is malformed",
        ),
        (jwt_form("a." + "A" * 9000 + ".c"), InvalidClientError, "client assertion is malformed"),
    ],
)
def test_malformed_assertion_requests(
    form: dict[str, str], error: type[Exception], description: str
) -> None:
    with pytest.raises(error) as exc:
        parse_client_credentials(None, form)
    assert exc.value.description == description  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("header", "form"),
    [
        (basic("c1", "s"), {"client_secret": "s"}),
        (basic("c1", "s"), {"client_assertion": "x"}),
        (None, {"client_id": "c1", "client_secret": "s", "client_assertion": "x"}),
        (None, {"client_secret": "s", "client_assertion_type": JWT_BEARER_ASSERTION_TYPE}),
    ],
)
def test_more_than_one_method_is_invalid_request(header: str | None, form: dict[str, str]) -> None:
    """RFC 6749 §2.3: the client MUST NOT use more than one authentication method."""
    with pytest.raises(InvalidRequestError) as exc:
        parse_client_credentials(header, form)
    assert exc.value.description == "use exactly one client authentication method"


# --- authenticate_client ------------------------------------------------------------------


def make_client(method: str, **kw: Any) -> Client:
    return Client(
        tenant_id="t",
        client_id="c1",
        redirect_uris=("http://127.0.0.1/cb",),
        token_endpoint_auth_method=method,  # type: ignore[arg-type]
        **kw,
    )


class Jti:
    """A real in-memory replay cache with the remember_jti contract."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    async def __call__(self, jti: str, expires_at: int) -> bool:
        if jti in self.seen:
            return False
        self.seen[jti] = expires_at
        return True


def jwks_loader(*keys: Any) -> Any:
    async def load(client: Client) -> Mapping[str, Any]:
        return {"keys": [k.as_dict(private=False) for k in keys]}

    return load


async def auth(
    presented: PresentedCredentials,
    client: Client | None,
    *,
    jti: Jti | None = None,
    load: Any = None,
    now: int = NOW,
) -> Client:
    return await authenticate_client(
        presented,
        client,
        audiences=(ISSUER, TOKEN_ENDPOINT),
        now=now,
        remember_jti=jti or Jti(),
        load_jwks=load or jwks_loader(EC_KEY),
    )


async def auth_error(
    presented: PresentedCredentials, client: Client | None, **kw: Any
) -> InvalidClientError:
    with pytest.raises(InvalidClientError) as exc:
        await auth(presented, client, **kw)
    assert exc.value.error == "invalid_client"
    assert exc.value.status_code == 401
    return exc.value


async def test_public_client_authenticates_with_client_id_only() -> None:
    client = make_client("none")
    assert await auth(PresentedCredentials("none", "c1"), client) is client


async def test_unknown_client() -> None:
    err = await auth_error(PresentedCredentials("client_secret_basic", "c9", "s"), None)
    assert err.description == "unknown client"
    assert err.used_basic is True


@pytest.mark.parametrize(
    ("presented_method", "registered"),
    [
        ("none", "client_secret_basic"),
        ("client_secret_post", "client_secret_basic"),
        ("client_secret_basic", "none"),
        ("client_secret_basic", "private_key_jwt"),
    ],
)
async def test_method_must_match_registration(presented_method: str, registered: str) -> None:
    """A confidential client can never authenticate as public (OAuth 2.1 §2.4)."""
    presented = PresentedCredentials(presented_method, "c1", "s")  # type: ignore[arg-type]
    err = await auth_error(presented, make_client(registered, client_secret_hash=hash_secret("s")))
    assert err.description == "client authentication method does not match registration"
    assert err.used_basic is (presented_method == "client_secret_basic")


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_correct_secret(method: str) -> None:
    client = make_client(method, client_secret_hash=hash_secret("s3cret"))
    presented = PresentedCredentials(method, "c1", "s3cret")  # type: ignore[arg-type]
    assert await auth(presented, client) is client


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_wrong_secret(method: str) -> None:
    client = make_client(method, client_secret_hash=hash_secret("s3cret"))
    presented = PresentedCredentials(method, "c1", "wrong")  # type: ignore[arg-type]
    err = await auth_error(presented, client)
    assert err.description == "client authentication failed"
    assert err.used_basic is (method == "client_secret_basic")


async def test_secret_method_without_stored_hash_fails() -> None:
    err = await auth_error(
        PresentedCredentials("client_secret_post", "c1", "s"), make_client("client_secret_post")
    )
    assert err.description == "client authentication failed"


async def test_expired_secret() -> None:
    """RFC 7591 §3.2.1 client_secret_expires_at."""
    client = make_client(
        "client_secret_basic", client_secret_hash=hash_secret("s"), client_secret_expires_at=NOW
    )
    err = await auth_error(PresentedCredentials("client_secret_basic", "c1", "s"), client)
    assert err.description == "client secret has expired"
    still_valid = make_client(
        "client_secret_basic", client_secret_hash=hash_secret("s"), client_secret_expires_at=NOW + 1
    )
    assert await auth(PresentedCredentials("client_secret_basic", "c1", "s"), still_valid)


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "c1",
        "sub": "c1",
        "aud": ISSUER,
        "exp": NOW + 60,
        "iat": NOW,
        "jti": "jti-1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def jwt_presented(assertion: str) -> PresentedCredentials:
    return PresentedCredentials("private_key_jwt", "c1", assertion=assertion)


JWT_CLIENT = make_client("private_key_jwt")


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        (EC_KEY, "ES256"),
        (ECKey.generate_key("P-384"), "ES384"),
        (RSAKey.generate_key(2048), "RS256"),
        (RSAKey.generate_key(2048), "PS256"),
        (OKPKey.generate_key("Ed25519"), "EdDSA"),
        (OKPKey.generate_key("Ed25519"), "Ed25519"),
    ],
)
async def test_valid_client_assertion(key: Any, alg: str) -> None:
    """RFC 7523 §3 with each allowed asymmetric algorithm."""
    jti = Jti()
    assertion = assertion_for(claims(), key, alg)
    client = await auth(jwt_presented(assertion), JWT_CLIENT, jti=jti, load=jwks_loader(key))
    assert client is JWT_CLIENT
    assert jti.seen == {"jti-1": NOW + 60}


@pytest.mark.parametrize(
    "aud",
    [ISSUER, ISSUER + "/", TOKEN_ENDPOINT, [ISSUER], ["https://other.example", TOKEN_ENDPOINT]],
)
async def test_assertion_audiences(aud: Any) -> None:
    assertion = assertion_for(claims(aud=aud))
    assert await auth(jwt_presented(assertion), JWT_CLIENT) is JWT_CLIENT


async def test_replayed_assertion() -> None:
    """RFC 7523 §3 item 7: a jti may be used once."""
    jti = Jti()
    assertion = assertion_for(claims())
    await auth(jwt_presented(assertion), JWT_CLIENT, jti=jti)
    err = await auth_error(jwt_presented(assertion), JWT_CLIENT, jti=jti)
    assert err.description == "client assertion replayed"


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        ({"iss": "other"}, "client assertion iss and sub must be the client_id"),
        ({"sub": "other"}, "client assertion iss and sub must be the client_id"),
        ({"iss": None}, "client assertion iss and sub must be the client_id"),
        ({"aud": "https://evil.example.com"}, "client assertion audience is not this server"),
        ({"aud": None}, "client assertion audience is not this server"),
        ({"aud": [1, 2]}, "client assertion audience is not this server"),
        ({"aud": ISSUER + "//"}, "client assertion audience is not this server"),
        ({"exp": None}, "client assertion exp is required"),
        ({"exp": "soon"}, "client assertion exp must be a number"),
        ({"exp": True}, "client assertion exp must be a number"),
        ({"exp": NOW}, "client assertion has expired"),
        ({"exp": NOW - 1}, "client assertion has expired"),
        ({"exp": NOW + 631, "iat": None}, "client assertion lifetime is too long"),
        ({"exp": NOW + 700, "iat": NOW + 20}, "client assertion lifetime is too long"),
        ({"iat": NOW + 31}, "client assertion iat is in the future"),
        ({"nbf": NOW + 31}, "client assertion is not valid yet"),
        ({"jti": None}, "client assertion jti is required"),
        ({"jti": ""}, "client assertion jti is required"),
        ({"jti": 7}, "client assertion jti is required"),
    ],
)
async def test_invalid_assertion_claims(overrides: dict[str, Any], description: str) -> None:
    """RFC 7523 §3: iss, sub, aud, exp, nbf, iat and jti rules."""
    jti = Jti()
    err = await auth_error(jwt_presented(assertion_for(claims(**overrides))), JWT_CLIENT, jti=jti)
    assert err.description == description
    assert jti.seen == {}  # a rejected assertion never burns its jti
    assert err.used_basic is False


async def test_assertion_within_skew_and_lifetime_is_accepted() -> None:
    assertion = assertion_for(claims(exp=NOW + 600, iat=NOW + 30, nbf=NOW + 30))
    assert await auth(jwt_presented(assertion), JWT_CLIENT) is JWT_CLIENT


async def test_assertion_signed_by_another_key() -> None:
    other = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    err = await auth_error(jwt_presented(assertion_for(claims(), other)), JWT_CLIENT)
    assert err.description == "client assertion signature is invalid"


async def test_tampered_assertion() -> None:
    head, _, sig = assertion_for(claims()).split(".")
    forged = f"{head}.{b64url_json(claims(sub='c1', iss='c1', exp=NOW + 500))}.{sig}"
    err = await auth_error(jwt_presented(forged), JWT_CLIENT)
    assert err.description == "client assertion signature is invalid"


async def test_hmac_assertion_is_refused() -> None:
    """HS256 with a public key as the secret is the classic algorithm confusion attack."""
    secret = OctKey.import_key(b"0" * 32)
    assertion = jwt.encode({"alg": "HS256"}, claims(), secret)
    err = await auth_error(jwt_presented(assertion), JWT_CLIENT)
    assert err.description == "client assertion algorithm is not allowed"


async def test_unsigned_assertion_is_refused() -> None:
    assertion = f"{b64url_json({'alg': 'none'})}.{b64url_json(claims())}."
    err = await auth_error(jwt_presented(assertion), JWT_CLIENT)
    assert err.description == "client assertion algorithm is not allowed"


@pytest.mark.parametrize(
    "assertion", ["x", "a.b", "!!!." + b64url_json(claims()) + ".x", b64url_json([1]) + ".e30.x"]
)
async def test_malformed_assertion(assertion: str) -> None:
    err = await auth_error(jwt_presented(assertion), JWT_CLIENT)
    assert err.description == "client assertion is malformed"


async def test_kid_selects_the_key() -> None:
    other = ECKey.generate_key("P-256", parameters={"kid": "k2"})
    assertion = assertion_for(claims())
    assert await auth(jwt_presented(assertion), JWT_CLIENT, load=jwks_loader(other, EC_KEY))


async def test_unknown_kid() -> None:
    other = ECKey.generate_key("P-256", parameters={"kid": "k2"})
    err = await auth_error(
        jwt_presented(assertion_for(claims())), JWT_CLIENT, load=jwks_loader(other)
    )
    assert err.description == "no client key matches the assertion kid"


async def test_keys_without_kid_are_all_tried() -> None:
    first = ECKey.generate_key("P-256")
    second = ECKey.generate_key("P-256")
    assertion = assertion_for(claims(), second)
    assert await auth(jwt_presented(assertion), JWT_CLIENT, load=jwks_loader(first, second))


async def test_unloadable_keys() -> None:
    async def broken(client: Client) -> Mapping[str, Any]:
        raise ConfigurationError("jwks_uri unreachable")

    async def garbage(client: Client) -> Mapping[str, Any]:
        return {"keys": "nope"}

    for load in (broken, garbage):
        err = await auth_error(jwt_presented(assertion_for(claims())), JWT_CLIENT, load=load)
        assert err.description == "the client keys could not be loaded"
