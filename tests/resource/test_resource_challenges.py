"""WWW-Authenticate challenges: exact bytes (RFC 6750 §3, RFC 9728 §5.1) and reading them back.

The grammar itself (several challenges, token68, malformed values, quoting) is tested once,
in ``tests/unit/test_www_authenticate.py``.
"""

from __future__ import annotations

from typing import Literal

from hypothesis import given
from hypothesis import strategies as st

from ostiary.errors import InsufficientScopeError, InvalidRequestError, InvalidTokenError
from ostiary.resource.challenges import (
    BearerChallenge,
    build_bearer_challenge,
    challenge_for_error,
    parse_bearer_challenge,
)

PRM = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"


def test_bare_challenge_has_no_error_attribute() -> None:
    """RFC 6750 §3.1: no error information when the request carried no credentials."""
    assert challenge_for_error(None, resource_metadata=PRM) == f'Bearer resource_metadata="{PRM}"'


def test_bare_challenge_names_scope_when_known() -> None:
    assert (
        challenge_for_error(None, resource_metadata=PRM, scopes=("mcp:read", "mcp:write"))
        == f'Bearer scope="mcp:read mcp:write", resource_metadata="{PRM}"'
    )


def test_invalid_token_challenge_exact_bytes() -> None:
    err = InvalidTokenError("The access token expired.")
    assert challenge_for_error(err, resource_metadata=PRM) == (
        'Bearer error="invalid_token", error_description="The access token expired.", '
        f'resource_metadata="{PRM}"'
    )


def test_insufficient_scope_challenge_names_every_required_scope() -> None:
    err = InsufficientScopeError(required_scopes=("mcp:read", "notes:write"))
    assert challenge_for_error(err, resource_metadata=PRM, scopes=("ignored",)) == (
        'Bearer error="insufficient_scope", error_description="The access token does not carry '
        'the scope this request needs.", scope="mcp:read notes:write", '
        f'resource_metadata="{PRM}"'
    )


def test_insufficient_scope_without_required_scopes_uses_endpoint_scopes() -> None:
    err = InsufficientScopeError("Need more.")
    assert challenge_for_error(err, resource_metadata=None, scopes=("a",)) == (
        'Bearer error="insufficient_scope", error_description="Need more.", scope="a"'
    )


def test_invalid_request_challenge() -> None:
    err = InvalidRequestError("Send the token in the Authorization header only.")
    assert challenge_for_error(err, resource_metadata=PRM) == (
        'Bearer error="invalid_request", error_description="Send the token in the '
        f'Authorization header only.", resource_metadata="{PRM}"'
    )


def test_build_without_anything_is_bare_scheme() -> None:
    assert build_bearer_challenge(resource_metadata=None) == "Bearer"


def test_build_drops_duplicate_scopes_and_keeps_order() -> None:
    assert build_bearer_challenge(resource_metadata=None, scopes=["b", "a", "b"]) == (
        'Bearer scope="b a"'
    )


def test_build_with_realm_last() -> None:
    assert build_bearer_challenge(resource_metadata="u", realm="mcp") == (
        'Bearer resource_metadata="u", realm="mcp"'
    )


def test_description_is_only_sent_with_an_error() -> None:
    assert build_bearer_challenge(resource_metadata=None, error_description="x") == "Bearer"


def test_challenge_render_round_trip() -> None:
    challenge = BearerChallenge(resource_metadata=PRM, scopes=("x",), error="invalid_token")
    assert parse_bearer_challenge(challenge.render()) == challenge


def test_parse_is_case_insensitive_for_scheme_and_names() -> None:
    parsed = parse_bearer_challenge('DPoP algs="ES256", bEaReR Error=invalid_token ,SCOPE="a"')
    assert parsed == BearerChallenge(error="invalid_token", scopes=("a",))


def test_parse_keeps_unknown_params_as_extra() -> None:
    parsed = parse_bearer_challenge('Bearer foo="bar", error="invalid_token"')
    assert parsed is not None
    assert parsed.extra == {"foo": "bar"}


def test_parse_returns_none_without_bearer() -> None:
    assert parse_bearer_challenge('Basic realm="x"') is None


#: Unicode category of control characters, which no header value may carry.
_CONTROLS: tuple[Literal["Cc"]] = ("Cc",)

# RFC 6749 charsets: scope-token %x21 / %x23-5B / %x5D-7E; description adds SP.
_scope_token = st.text(
    st.characters(codec="ascii", min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\'),
    min_size=1,
    max_size=12,
)
_description = st.text(
    st.characters(codec="ascii", min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'),
    min_size=1,
    max_size=40,
)
# Header values in general: any visible ASCII, SP and HTAB, quotes and backslashes included.
_any_value = st.text(
    st.characters(codec="latin-1", min_codepoint=0x09, exclude_categories=_CONTROLS)
    | st.sampled_from(['"', "\\", "\t", " "]),
    max_size=40,
)


@given(
    resource_metadata=st.none() | _any_value,
    scopes=st.lists(_scope_token, max_size=5, unique=True).map(tuple),
    error=st.none() | st.sampled_from(["invalid_token", "insufficient_scope", "invalid_request"]),
    error_description=st.none() | _description,
    realm=st.none() | _any_value,
)
def test_build_then_parse_round_trips(
    resource_metadata: str | None,
    scopes: tuple[str, ...],
    error: str | None,
    error_description: str | None,
    realm: str | None,
) -> None:
    value = build_bearer_challenge(
        resource_metadata=resource_metadata,
        scopes=scopes,
        error=error,
        error_description=error_description,
        realm=realm,
    )
    assert parse_bearer_challenge(value) == BearerChallenge(
        resource_metadata=resource_metadata,
        scopes=scopes,
        error=error,
        error_description=error_description if error is not None else None,
        realm=realm,
    )
