"""Property tests for the protocol parsers and matchers (RFC 6749 §3.3; RFC 9700 §2.1)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ostiary.core.pkce import s256, validate_code_challenge, verify_code_verifier
from ostiary.core.redirect_uris import is_loopback_redirect, match_redirect_uri
from ostiary.core.resource import canonical_resource
from ostiary.core.scopes import format_scope, is_scope_token, parse_scope
from ostiary.errors import InvalidScopeError

TOKEN_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if c not in (0x22, 0x5C))
scope_tokens = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12)
url_path = st.text(alphabet="abcXYZ019-._~/%", max_size=12).map(lambda p: "/" + p)
query = st.one_of(st.just(""), st.text(alphabet="ab=&1", max_size=6).map(lambda q: "?" + q))
ports = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
loopback_hosts = st.sampled_from(["127.0.0.1", "[::1]", "localhost"])
any_hosts = st.sampled_from(
    ["127.0.0.1", "[::1]", "localhost", "LOCALHOST", "127.0.0.2", "app.example.com", "10.0.0.1"]
)
schemes = st.sampled_from(["http", "https", "HTTP", "com.example.app"])


@given(st.lists(scope_tokens, max_size=8))
def test_scope_format_parse_round_trip(tokens: list[str]) -> None:
    """format then parse yields the distinct tokens in first-seen order."""
    assert parse_scope(format_scope(tokens)) == tuple(dict.fromkeys(tokens))


@given(st.text(max_size=40))
def test_parse_scope_yields_only_valid_tokens_or_raises(value: str) -> None:
    try:
        parsed = parse_scope(value)
    except InvalidScopeError:
        return
    assert all(is_scope_token(t) for t in parsed)
    assert len(set(parsed)) == len(parsed)
    assert format_scope(parsed) == " ".join(parsed)


@given(st.text(alphabet=TOKEN_CHARS.replace("+", "").replace("/", ""), min_size=43, max_size=128))
def test_s256_of_any_verifier_is_a_valid_challenge(verifier: str) -> None:
    challenge = s256(verifier)
    assert validate_code_challenge(challenge, "S256") == challenge


@given(st.text(alphabet="ABCxyz0129-._~", min_size=43, max_size=128))
def test_verifier_verifies_against_its_own_challenge(verifier: str) -> None:
    verify_code_verifier(verifier, s256(verifier))


def _uri(scheme: str, host: str, port: str, path: str, q: str) -> str:
    if scheme == "com.example.app":
        return f"{scheme}:{path}{q}"
    return f"{scheme}://{host}{port}{path}{q}"


uris = st.builds(_uri, schemes, any_hosts, ports, url_path, query)


def _strip_port(uri: str) -> str:
    scheme, _, rest = uri.partition("://")
    authority, slash, tail = rest.partition("/")
    if authority.startswith("["):
        host = authority[: authority.index("]") + 1]
    else:
        host = authority.split(":")[0]
    return f"{scheme}://{host}{slash}{tail}"


@given(uris, st.lists(uris, max_size=4))
def test_redirect_matching_never_widens(requested: str, registered: list[str]) -> None:
    """RFC 9700 §2.1: exact match; only the port of an http loopback URI may differ."""
    if not match_redirect_uri(requested, registered):
        return
    if requested in registered:
        return
    assert is_loopback_redirect(requested)
    assert any(
        is_loopback_redirect(r) and _strip_port(r) == _strip_port(requested) for r in registered
    )


@given(loopback_hosts, ports, ports, url_path, query)
def test_loopback_port_is_flexible(host: str, p1: str, p2: str, path: str, q: str) -> None:
    """RFC 8252 §7.3: any port is allowed at request time for loopback redirects."""
    assert match_redirect_uri(f"http://{host}{p1}{path}{q}", [f"http://{host}{p2}{path}{q}"])


@given(schemes, any_hosts, ports, url_path, query)
def test_canonical_resource_is_idempotent(
    scheme: str, host: str, port: str, path: str, q: str
) -> None:
    if scheme == "com.example.app":
        return
    once = canonical_resource(f"{scheme}://{host}{port}{path}{q}")
    assert canonical_resource(once) == once
