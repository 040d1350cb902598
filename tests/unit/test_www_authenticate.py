"""The one ``WWW-Authenticate`` parser (RFC 9110 §11.6.1, §11.2, §5.6.4), strict and lenient.

The resource server's :func:`ostiary.resource.challenges.parse_bearer_challenge` and the
client's :func:`ostiary.client.challenges.parse_challenges` both call it; their own tests
cover only what they add (the Bearer view, the DPoP fallback).
"""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ostiary.www_authenticate import (
    Challenge,
    find_challenge,
    parse_challenges,
    parse_www_authenticate,
    quote_string,
)


def test_parse_rfc9110_example_with_several_challenges() -> None:
    value = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'
    expected = [
        Challenge("Newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
        Challenge("Basic", {"realm": "simple"}),
    ]
    assert parse_www_authenticate(value) == expected
    assert parse_challenges([value], lenient=True) == expected


def test_parse_token68_and_bare_schemes() -> None:
    assert parse_www_authenticate("Negotiate abc+/==, Bearer, DPoP") == [
        Challenge("Negotiate", token68="abc+/=="),
        Challenge("Bearer"),
        Challenge("DPoP"),
    ]


def test_parse_token68_only_directly_after_scheme() -> None:
    assert parse_www_authenticate('Bearer , Basic realm="x"') == [
        Challenge("Bearer"),
        Challenge("Basic", {"realm": "x"}),
    ]
    assert parse_www_authenticate("Basic abc= , DPoP") == [
        Challenge("Basic", token68="abc="),
        Challenge("DPoP"),
    ]


def test_parameter_names_are_lower_cased_and_schemes_kept() -> None:
    assert parse_www_authenticate('bEaReR Error=invalid_token ,SCOPE="a"') == [
        Challenge("bEaReR", {"error": "invalid_token", "scope": "a"})
    ]


def test_challenges_across_headers_keep_their_order() -> None:
    assert parse_challenges(['Bearer realm="a, b"', 'DPoP algs="ES256"']) == [
        Challenge("Bearer", {"realm": "a, b"}),
        Challenge("DPoP", {"algs": "ES256"}),
    ]


def test_empty_and_separator_only_values_hold_no_challenge() -> None:
    assert parse_challenges(["", ", ,  "]) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('Bearer error="x', "unterminated"),
        ('Bearer a="1", a="2"', "repeated"),
        ('Bearer a="1" b', "unexpected character"),
        ("=oops", "expected an auth-scheme"),
        ('Bearer"x"', "unexpected character after auth-scheme"),
        ('Bearer x="\\', "unterminated"),
        ("X a b", "unexpected character"),
        ('X b="c", a=@', "unexpected character after auth-scheme"),
        ("Bearer resource_metadata=https://rs/x", "unexpected character"),
    ],
)
def test_strict_rejects_malformed_values(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_www_authenticate(value)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            ["Bearer resource_metadata=https://rs/x, SCOPE=unquoted"],
            [Challenge("Bearer", {"resource_metadata": "https://rs/x", "scope": "unquoted"})],
        ),
        (['Bearer scope="first", scope="second"'], [Challenge("Bearer", {"scope": "first"})]),
        (['Bearer scope="open'], [Challenge("Bearer", {"scope": "open"})]),
        (['Bearer x="\\'], [Challenge("Bearer", {"x": ""})]),
        (
            ["Bearer error=invalid_token scope=a"],
            [Challenge("Bearer", {"error": "invalid_token", "scope": "a"})],
        ),
        (
            ['Bearer a="1" Basic realm="x"'],
            [Challenge("Bearer", {"a": "1"}), Challenge("Basic", {"realm": "x"})],
        ),
        (['Bearer"x", DPoP'], [Challenge("Bearer"), Challenge("DPoP")]),
        (['=oops, Bearer realm="y"'], [Challenge("Bearer", {"realm": "y"})]),
    ],
)
def test_lenient_reads_what_sloppy_servers_send(
    headers: list[str], expected: list[Challenge]
) -> None:
    assert parse_challenges(headers, lenient=True) == expected


def test_find_challenge_prefers_the_first_scheme_asked_for() -> None:
    challenges = parse_www_authenticate('DPoP algs="ES256", Bearer realm="x"')
    assert find_challenge(challenges, "bearer", "dpop") == Challenge("Bearer", {"realm": "x"})
    assert find_challenge(challenges, "basic", "DPOP") == Challenge("DPoP", {"algs": "ES256"})
    assert find_challenge(challenges, "basic") is None


def test_quote_string_escapes_quote_and_backslash() -> None:
    assert quote_string('a"b\\c') == '"a\\"b\\\\c"'


@pytest.mark.parametrize("bad", ["a\r\nSet-Cookie: x=1", "nul\x00", "del\x7f", "snow\u2603"])
def test_quote_string_refuses_header_injection(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot appear in an HTTP header"):
        quote_string(bad)


#: Unicode category of control characters, which no header value may carry.
_CONTROLS: tuple[Literal["Cc"]] = ("Cc",)

# Header values in general: any visible Latin-1, SP and HTAB, quotes and backslashes included.
_any_value = st.text(
    st.characters(codec="latin-1", min_codepoint=0x09, exclude_categories=_CONTROLS)
    | st.sampled_from(['"', "\\", "\t", " "]),
    max_size=40,
)
# Arbitrary header text, including the grammar's punctuation, in any arrangement.
_header_text = st.text(
    st.sampled_from(list('Bearer DPoP realm=,"\\ \t abc=/:+')) | st.characters(codec="latin-1"),
    max_size=60,
)


@given(_any_value)
def test_quote_string_then_parse_is_identity(value: str) -> None:
    assert parse_www_authenticate(f"X p={quote_string(value)}") == [Challenge("X", {"p": value})]


@given(_header_text)
def test_lenient_never_raises_and_agrees_with_strict(value: str) -> None:
    """One grammar: where strict mode accepts a value, lenient mode reads it the same way."""
    lenient = parse_challenges([value], lenient=True)
    try:
        strict = parse_www_authenticate(value)
    except ValueError:
        return
    assert lenient == strict
