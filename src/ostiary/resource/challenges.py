"""``WWW-Authenticate: Bearer`` and ``DPoP`` challenges (RFC 6750 §3, RFC 9449 §7.1, RFC 9728 §5.1).

A resource server answers 401 and 403 with a ``Bearer`` challenge. Three shapes exist:

* no credentials were sent: a *bare* challenge, with no ``error`` attribute (RFC 6750 §3.1:
  "the resource server SHOULD NOT include an error code or other error information"), still
  carrying ``resource_metadata`` (RFC 9728 §5.1) and ``scope`` when the endpoint knows it;
* a token was sent but is unusable: ``error="invalid_token"`` (401);
* the token lacks a scope: ``error="insufficient_scope"`` (403) naming *every* scope the
  operation needs in one challenge (MCP authorization, "Server Scope Management").

Attribute order on the wire is fixed (``error``, ``error_description``, ``scope``,
``resource_metadata``, then ``realm``) so tests can assert exact header bytes. Every value is
a quoted-string (RFC 9110 §5.6.4); ``"`` and ``\\`` are escaped and control characters are
refused, so no caller can inject a header line.

The parser accepts any RFC 9110 ``WWW-Authenticate`` value (several challenges, token68,
token or quoted-string parameters, case-insensitive names) and is used by tests and by the
MCP OAuth client.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ostiary.errors import InsufficientScopeError, OAuthError

__all__ = [
    "BearerChallenge",
    "Challenge",
    "build_bearer_challenge",
    "build_dpop_challenge",
    "challenge_for_error",
    "parse_bearer_challenge",
    "parse_www_authenticate",
    "quote_string",
]

_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN68_CHARS = frozenset("-._~+/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# RFC 9110 §5.6.4 qdtext / quoted-pair: HTAB, SP, VCHAR and obs-text; no other controls.
_QUOTABLE = re.compile(r"^[\t\x20-\x7E\x80-\xFF]*$")
_ESCAPE = re.compile(r'(["\\])')


def quote_string(value: str) -> str:
    """Render ``value`` as an RFC 9110 §5.6.4 quoted-string.

    Raises:
        ValueError: ``value`` holds a control character (CR, LF, NUL, ...) or a code point
            outside Latin-1, which no header may carry.

    Example:
        >>> quote_string('say "hi"')
        '"say \\\\"hi\\\\""'
    """
    if not _QUOTABLE.match(value):
        raise ValueError(f"value cannot appear in an HTTP header: {value!r}")
    return '"' + _ESCAPE.sub(r"\\\1", value) + '"'


@dataclass(frozen=True, slots=True)
class BearerChallenge:
    """One ``Bearer`` challenge, as built for the wire or parsed from it.

    Attributes:
        resource_metadata: RFC 9728 §5.1 URL of the protected resource metadata.
        scopes: Scopes the request needs (RFC 6750 §3 ``scope``), in order.
        error: ``invalid_request``, ``invalid_token`` or ``insufficient_scope``; None when
            no credentials were sent.
        error_description: Human-readable sentence (RFC 6749 charset).
        realm: Optional protection space (RFC 9110 §11.5).
        extra: Any other parameters (parsed challenges only; never emitted).
    """

    resource_metadata: str | None = None
    scopes: tuple[str, ...] = ()
    error: str | None = None
    error_description: str | None = None
    realm: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def render(self) -> str:
        """The header value, e.g. ``Bearer error="invalid_token", resource_metadata="…"``."""
        return build_bearer_challenge(
            resource_metadata=self.resource_metadata,
            scopes=self.scopes,
            error=self.error,
            error_description=self.error_description,
            realm=self.realm,
        )


def build_bearer_challenge(
    *,
    resource_metadata: str | None,
    scopes: Iterable[str] = (),
    error: str | None = None,
    error_description: str | None = None,
    realm: str | None = None,
) -> str:
    """Build a ``WWW-Authenticate`` value carrying one ``Bearer`` challenge.

    Args:
        resource_metadata: PRM URL (RFC 9728 §5.1); None leaves the attribute out.
        scopes: Scopes to name in ``scope``; empty leaves the attribute out. Duplicates are
            dropped, order is kept.
        error: RFC 6750 §3.1 error code; None for a bare challenge.
        error_description: Public sentence; only sent together with ``error``.
        realm: Optional ``realm``.

    Returns:
        The header value, starting with ``Bearer``.

    Raises:
        ValueError: A value would need a character no header may carry.

    Example:
        >>> build_bearer_challenge(
        ...     resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
        ...     scopes=("mcp:read",),
        ... )
        'Bearer scope="mcp:read", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"'
    """
    params: list[tuple[str, str]] = []
    if error is not None:
        params.append(("error", error))
        if error_description:
            params.append(("error_description", error_description))
    scope_value = " ".join(dict.fromkeys(scopes))
    if scope_value:
        params.append(("scope", scope_value))
    if resource_metadata is not None:
        params.append(("resource_metadata", resource_metadata))
    if realm is not None:
        params.append(("realm", realm))
    if not params:
        return "Bearer"
    return "Bearer " + ", ".join(f"{name}={quote_string(value)}" for name, value in params)


def build_dpop_challenge(
    *,
    algs: Iterable[str],
    resource_metadata: str | None = None,
    scopes: Iterable[str] = (),
    error: str | None = None,
    error_description: str | None = None,
) -> str:
    """Build a ``WWW-Authenticate`` value carrying one ``DPoP`` challenge (RFC 9449 §7.1).

    Same attributes and order as :func:`build_bearer_challenge`, then ``algs`` (the proof
    algorithms the resource server accepts, space-separated).

    Example:
        >>> build_dpop_challenge(algs=("ES256", "EdDSA"), error="invalid_dpop_proof")
        'DPoP error="invalid_dpop_proof", algs="ES256 EdDSA"'
    """
    bearer = build_bearer_challenge(
        resource_metadata=resource_metadata,
        scopes=scopes,
        error=error,
        error_description=error_description,
    )
    params = bearer.removeprefix("Bearer").strip()
    algs_param = f"algs={quote_string(' '.join(algs))}"
    return f"DPoP {params}, {algs_param}" if params else f"DPoP {algs_param}"


def challenge_for_error(
    error: OAuthError | None,
    *,
    resource_metadata: str | None,
    scopes: Iterable[str] = (),
) -> str:
    """The challenge that goes with ``error`` (None: no credentials were sent).

    For :class:`InsufficientScopeError` the ``scope`` attribute names the error's
    ``required_scopes`` when it has any, else ``scopes``.

    Example:
        >>> from ostiary.errors import InvalidTokenError
        >>> challenge_for_error(InvalidTokenError("The access token expired."),
        ...                     resource_metadata="https://rs/.well-known/oauth-protected-resource")
        'Bearer error="invalid_token", error_description="The access token expired.", resource_metadata="https://rs/.well-known/oauth-protected-resource"'
    """
    if error is None:
        return build_bearer_challenge(resource_metadata=resource_metadata, scopes=scopes)
    needed = tuple(scopes)
    if isinstance(error, InsufficientScopeError) and error.required_scopes:
        needed = error.required_scopes
    return build_bearer_challenge(
        resource_metadata=resource_metadata,
        scopes=needed,
        error=error.error,
        error_description=error.description,
    )


@dataclass(frozen=True, slots=True)
class Challenge:
    """One parsed challenge of any scheme (RFC 9110 §11.6.1).

    Attributes:
        scheme: The auth-scheme as sent (compare case-insensitively).
        params: Parameters with lower-cased names and unescaped values.
        token68: The token68 form, when the challenge used it instead of parameters.
    """

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None


class _Reader:
    """A cursor over a header value; every method advances past what it consumed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_ows(self) -> None:
        while self.peek() in (" ", "\t") and not self.at_end():
            self.pos += 1

    def skip_separators(self) -> None:
        while self.peek() in (" ", "\t", ",") and not self.at_end():
            self.pos += 1

    def token(self) -> str:
        start = self.pos
        while not self.at_end() and self.text[self.pos] in _TCHAR:
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        # Caller checked the opening quote.
        self.pos += 1
        out: list[str] = []
        while not self.at_end():
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                return "".join(out)
            if char == "\\":
                if self.at_end():
                    break
                char = self.text[self.pos]
                self.pos += 1
            out.append(char)
        raise ValueError("unterminated quoted-string in WWW-Authenticate")


def _read_token68(reader: _Reader) -> str | None:
    """Read a token68 if one starts here and is the whole challenge body, else rewind."""
    start = reader.pos
    while not reader.at_end() and reader.text[reader.pos] in _TOKEN68_CHARS:
        reader.pos += 1
    if reader.pos == start:
        return None
    while reader.peek() == "=":
        reader.pos += 1
    end = reader.pos
    reader.skip_ows()
    if reader.at_end() or reader.peek() == ",":
        return reader.text[start:end]
    reader.pos = start
    return None


def _read_param(reader: _Reader) -> tuple[str, str] | None:
    """Read ``name = value`` if one starts here; otherwise rewind and return None."""
    start = reader.pos
    name = reader.token()
    reader.skip_ows()
    if not name or reader.peek() != "=":
        reader.pos = start
        return None
    reader.pos += 1
    reader.skip_ows()
    if reader.peek() == '"':
        return name.lower(), reader.quoted()
    value = reader.token()
    if not value:
        reader.pos = start
        return None
    return name.lower(), value


def _read_challenge(reader: _Reader) -> Challenge:
    scheme = reader.token()
    if not scheme:
        raise ValueError(f"expected an auth-scheme at offset {reader.pos}")
    if reader.at_end() or reader.peek() == ",":
        return Challenge(scheme=scheme)
    if reader.peek() not in (" ", "\t"):
        raise ValueError(f"unexpected character after auth-scheme at offset {reader.pos}")
    reader.skip_ows()
    # token68 can only come straight after the scheme, never after a comma.
    token68 = _read_token68(reader)
    if token68 is not None:
        return Challenge(scheme=scheme, token68=token68)
    params: dict[str, str] = {}
    while not reader.at_end():
        mark = reader.pos
        reader.skip_separators()
        param = _read_param(reader)
        if param is None:
            reader.pos = mark  # the next challenge starts here, after a comma
            reader.skip_ows()
            if not reader.at_end() and reader.peek() != ",":
                raise ValueError(f"unexpected character at offset {reader.pos}")
            break
        name, value = param
        if name in params:
            raise ValueError(f"parameter {name!r} repeated in one challenge (RFC 9110 §11.2)")
        params[name] = value
        reader.skip_ows()
        if not reader.at_end() and reader.peek() != ",":
            raise ValueError(f"unexpected character at offset {reader.pos}")
    return Challenge(scheme=scheme, params=params)


def parse_www_authenticate(value: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value into its challenges (RFC 9110 §11.6.1).

    Raises:
        ValueError: The value is not valid challenge syntax.

    Example:
        >>> [c.scheme for c in parse_www_authenticate('DPoP algs="ES256", Bearer realm="x"')]
        ['DPoP', 'Bearer']
    """
    reader = _Reader(value)
    challenges: list[Challenge] = []
    reader.skip_separators()
    while not reader.at_end():
        challenges.append(_read_challenge(reader))
        reader.skip_separators()
    return challenges


def parse_bearer_challenge(value: str) -> BearerChallenge | None:
    """The first ``Bearer`` challenge in a ``WWW-Authenticate`` value, or None.

    Raises:
        ValueError: The value is not valid challenge syntax.

    Example:
        >>> parse_bearer_challenge('Bearer error="insufficient_scope", scope="a b"').scopes
        ('a', 'b')
    """
    for challenge in parse_www_authenticate(value):
        if challenge.scheme.lower() != "bearer":
            continue
        params = dict(challenge.params)
        scope = params.pop("scope", "")
        return BearerChallenge(
            resource_metadata=params.pop("resource_metadata", None),
            scopes=tuple(dict.fromkeys(s for s in scope.split(" ") if s)),
            error=params.pop("error", None),
            error_description=params.pop("error_description", None),
            realm=params.pop("realm", None),
            extra=params,
        )
    return None
