"""ID-JAG checks that need no HTTP (draft-ietf-oauth-identity-assertion-authz-grant)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from ostiary.core.id_jag import is_id_jag_type, validate_times, verify_id_jag
from ostiary.errors import InvalidGrantError
from ostiary.settings import TrustedIssuerSettings

NOW = 1_900_000_000
AS = "https://as.example"
IDP = TrustedIssuerSettings(
    name="acme", issuer="https://idp.example", jwks_uri="https://idp.example/jwks"
)
KEY = ECKey.generate_key("P-256", {"kid": "k1"})


def sign(claims: Mapping[str, Any] | None = None, key: Any = KEY, **header: Any) -> str:
    body = {
        "iss": IDP.issuer,
        "sub": "u1",
        "aud": AS,
        "client_id": "c1",
        "jti": "j1",
        "iat": NOW,
        "exp": NOW + 300,
        **(claims or {}),
    }
    return jwt.encode({"alg": "ES256", "typ": "oauth-id-jag+jwt", "kid": "k1", **header}, body, key)


async def verify(
    assertion: str, *, issuer: TrustedIssuerSettings = IDP, sets: list[Any] | None = None
) -> Any:
    served = list(sets) if sets is not None else [{"keys": [KEY.as_dict(private=False)]}]
    asked: list[bool] = []

    async def load_keys(uri: str, refresh: bool) -> Mapping[str, Any]:
        asked.append(refresh)
        found = served.pop(0)
        if isinstance(found, Exception):
            raise found
        return dict(found)

    jag = await verify_id_jag(
        assertion,
        issuers=[issuer],
        audience=AS,
        client_id="c1",
        now=NOW,
        skew=60,
        max_lifetime=600,
        load_keys=load_keys,
    )
    return jag, asked


def refused(description: str) -> Any:
    return pytest.raises(InvalidGrantError, match=f"^{description}$")


@pytest.mark.parametrize(
    ("typ", "ok"),
    [
        ("oauth-id-jag+jwt", True),
        ("application/OAuth-ID-JAG+JWT", True),
        ("JWT", False),
        (None, False),
    ],
)
def test_typ(typ: object, ok: bool) -> None:
    assert is_id_jag_type(typ) is ok


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        ({"iat": NOW}, "the ID-JAG must carry exp and iat"),
        ({"iat": NOW + 61, "exp": NOW + 300}, "the ID-JAG was issued in the future"),
        ({"iat": NOW, "exp": NOW + 300, "nbf": NOW + 61}, "the ID-JAG is not valid yet"),
        ({"iat": NOW, "exp": "soon"}, "the ID-JAG exp claim must be a number"),
        ({"iat": True, "exp": NOW}, "the ID-JAG iat claim must be a number"),
    ],
)
def test_times(claims: dict[str, Any], description: str) -> None:
    with refused(description):
        validate_times(claims, now=NOW, skew=60, max_lifetime=600)


def test_expiry_allows_the_skew() -> None:
    assert validate_times({"iat": NOW - 100, "exp": NOW - 59}, now=NOW, skew=60, max_lifetime=600)


async def test_a_valid_id_jag_and_its_claims() -> None:
    jag, asked = await verify(sign({"resource": ["https://r.example"], "scope": "a b"}))
    assert (jag.subject, jag.client_id, jag.jti, jag.expires_at) == ("u1", "c1", "j1", NOW + 300)
    assert (jag.resources, jag.scope) == (("https://r.example",), "a b")
    assert asked == [False]


async def test_an_unknown_kid_asks_for_a_fresh_set() -> None:
    other = ECKey.generate_key("P-256", {"kid": "k0"})
    sets = [{"keys": [other.as_dict(private=False)]}, {"keys": [KEY.as_dict(private=False)]}]
    _, asked = await verify(sign(), sets=sets)
    assert asked == [False, True]


async def test_symmetric_keys_in_the_set_are_ignored() -> None:
    secret = OctKey.generate_key(256, {"kid": "k1"})
    with refused("no key of the identity provider matches the ID-JAG kid"):
        await verify(sign(), sets=[{"keys": [secret.as_dict()]}, {"keys": [secret.as_dict()]}])


@pytest.mark.parametrize("failure", [OSError("down"), {"keys": "x"}])
async def test_keys_that_cannot_be_loaded(failure: Any) -> None:
    with refused("the identity provider's keys could not be loaded"):
        await verify(sign(), sets=[failure])


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        ({"sub": ""}, "the ID-JAG must carry a sub claim"),
        ({"jti": None}, "the ID-JAG must carry a jti claim"),
        ({"client_id": 7}, "the ID-JAG must carry a client_id claim"),
        ({"aud": [AS + "/", "x"]}, None),
        ({"aud": {"x": AS}}, "the ID-JAG audience is not this authorization server"),
    ],
)
async def test_claims(claims: dict[str, Any], description: str | None) -> None:
    if description is None:
        await verify(sign(claims))
        return
    with refused(description):
        await verify(sign(claims))


async def test_the_issuer_may_limit_its_clients() -> None:
    limited = IDP.model_copy(update={"client_ids": ("c2",)})
    with refused("this identity provider may not authorize this client"):
        await verify(sign(), issuer=limited)
