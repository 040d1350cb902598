"""WWW-Authenticate parsing (RFC 9110 §11.6.1, RFC 6750 §3, RFC 9728 §5.1)."""

from __future__ import annotations

import pytest

from ostiary.client.challenges import (
    BearerChallenge,
    Challenge,
    parse_bearer_challenge,
    parse_challenges,
)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            ['Bearer resource_metadata="https://rs/.well-known/oauth-protected-resource/mcp"'],
            [
                Challenge(
                    "Bearer",
                    {"resource_metadata": "https://rs/.well-known/oauth-protected-resource/mcp"},
                )
            ],
        ),
        (
            ['Bearer error="insufficient_scope", scope="a b", error_description="need \\"b\\""'],
            [
                Challenge(
                    "Bearer",
                    {
                        "error": "insufficient_scope",
                        "scope": "a b",
                        "error_description": 'need "b"',
                    },
                )
            ],
        ),
        (
            ['Basic realm="x", Bearer realm="y",scope="s"'],
            [Challenge("Basic", {"realm": "x"}), Challenge("Bearer", {"realm": "y", "scope": "s"})],
        ),
        (["Bearer"], [Challenge("Bearer")]),
        (["Negotiate abc123=="], [Challenge("Negotiate", token68="abc123==")]),
        (
            ["Bearer resource_metadata=https://rs/x, SCOPE=unquoted"],
            [Challenge("Bearer", {"resource_metadata": "https://rs/x", "scope": "unquoted"})],
        ),
        (
            ['Bearer realm="a, b"', 'DPoP algs="ES256"'],
            [Challenge("Bearer", {"realm": "a, b"}), Challenge("DPoP", {"algs": "ES256"})],
        ),
        ([", ,  "], []),
        (['Bearer scope="first", scope="second"'], [Challenge("Bearer", {"scope": "first"})]),
    ],
)
def test_parse_challenges(headers: list[str], expected: list[Challenge]) -> None:
    assert parse_challenges(headers) == expected


def test_bearer_challenge_is_preferred_over_other_schemes() -> None:
    challenge = parse_bearer_challenge(
        ['DPoP algs="ES256"', 'Bearer error="invalid_token", scope="mcp:basic mcp:basic mcp:write"']
    )
    assert challenge == BearerChallenge(
        scheme="Bearer", error="invalid_token", scope="mcp:basic mcp:basic mcp:write"
    )
    assert challenge.scopes == ("mcp:basic", "mcp:write")


def test_no_bearer_challenge() -> None:
    assert parse_bearer_challenge(['Basic realm="x"']) is None
    assert parse_bearer_challenge([]) is None


def test_unterminated_quote_does_not_raise() -> None:
    assert parse_challenges(['Bearer scope="open']) == [Challenge("Bearer", {"scope": "open"})]
