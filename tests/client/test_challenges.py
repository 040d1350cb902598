"""What the MCP client reads from a challenge (RFC 6750 §3, RFC 9728 §5.1).

The grammar is :mod:`ostiary.www_authenticate`'s (tested in
``tests/unit/test_www_authenticate.py``); here: the client reads it leniently, prefers
``Bearer`` to ``DPoP``, and reads back exactly what ostiary's resource server builds.
"""

from __future__ import annotations

from typing import Literal

from hypothesis import given
from hypothesis import strategies as st

from ostiary.client.challenges import (
    BearerChallenge,
    Challenge,
    parse_bearer_challenge,
    parse_challenges,
)
from ostiary.resource.challenges import build_bearer_challenge, build_dpop_challenge


def test_the_client_reads_leniently() -> None:
    """Unquoted URLs, repeated parameters and unterminated quotes do not stop a client."""
    assert parse_challenges(
        ["Bearer resource_metadata=https://rs/x, scope=a, scope=b", 'DPoP algs="ES256']
    ) == [
        Challenge("Bearer", {"resource_metadata": "https://rs/x", "scope": "a"}),
        Challenge("DPoP", {"algs": "ES256"}),
    ]


def test_bearer_challenge_is_preferred_over_other_schemes() -> None:
    challenge = parse_bearer_challenge(
        ['DPoP algs="ES256"', 'Bearer error="invalid_token", scope="mcp:basic mcp:basic mcp:write"']
    )
    assert challenge == BearerChallenge(
        scheme="Bearer", error="invalid_token", scope="mcp:basic mcp:basic mcp:write"
    )
    assert challenge.scopes == ("mcp:basic", "mcp:write")


def test_a_dpop_challenge_is_used_without_a_bearer_one() -> None:
    assert parse_bearer_challenge(['Basic realm="x"', 'DPoP algs="ES256", scope="a"']) == (
        BearerChallenge(scheme="DPoP", scope="a")
    )


def test_no_bearer_challenge() -> None:
    assert parse_bearer_challenge(['Basic realm="x"']) is None
    assert parse_bearer_challenge([]) is None


#: Unicode category of control characters, which no header value may carry.
_CONTROLS: tuple[Literal["Cc"]] = ("Cc",)

_scope_token = st.text(
    st.characters(codec="ascii", min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\'),
    min_size=1,
    max_size=12,
)
_text = st.text(st.characters(codec="latin-1", min_codepoint=0x20, exclude_categories=_CONTROLS))


@given(
    resource_metadata=st.none() | _text,
    scopes=st.lists(_scope_token, max_size=5, unique=True),
    error=st.none() | st.sampled_from(["invalid_token", "insufficient_scope"]),
    description=_text,
    dpop=st.booleans(),
)
def test_the_client_reads_what_the_resource_server_builds(
    resource_metadata: str | None,
    scopes: list[str],
    error: str | None,
    description: str,
    dpop: bool,
) -> None:
    header = build_bearer_challenge(
        resource_metadata=resource_metadata,
        scopes=scopes,
        error=error,
        error_description=description,
    )
    if dpop:
        header = build_dpop_challenge(
            algs=("ES256",),
            resource_metadata=resource_metadata,
            scopes=scopes,
            error=error,
            error_description=description,
        )
    assert parse_bearer_challenge([header]) == BearerChallenge(
        scheme="DPoP" if dpop else "Bearer",
        error=error,
        error_description=description if error is not None and description else None,
        scope=" ".join(scopes) or None,
        resource_metadata=resource_metadata,
    )
