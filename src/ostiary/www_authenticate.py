"""``WWW-Authenticate`` grammar (RFC 9110 §11.6.1, §11.2, §5.6.4): the one parser every layer uses.

The resource server parses its own challenges back in tests and round-trip checks; the MCP
client reads the challenges of servers it has never seen. Both read the same grammar::

    WWW-Authenticate = #challenge
    challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    auth-param       = token BWS "=" BWS ( token / quoted-string )

Several challenges may share one header value, and a response may repeat the header; scheme
and parameter names compare case-insensitively, so parameter names come out lower-cased.
A quoted-string's ``\\`` escapes the next character.

The parser has two modes, one grammar:

* **strict** (the default) raises :class:`ValueError` on anything outside the grammar,
  including a parameter repeated within one challenge (§11.2: "MUST NOT");
* **lenient** never raises, for a client facing sloppy servers: unquoted values may hold any
  character up to a comma or space (URLs arrive unquoted although ``:`` and ``/`` are not
  token characters), an unterminated quoted-string runs to the end, a repeated parameter
  keeps its first value, a missing comma between parameters is tolerated, and an
  unreadable fragment is skipped up to the next comma.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "Challenge",
    "find_challenge",
    "parse_challenges",
    "parse_www_authenticate",
    "quote_string",
]

# RFC 9110 §5.6.2 tchar; RFC 9110 §11.2 token68 characters (before its trailing "=").
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN68_CHARS = frozenset("-._~+/0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# RFC 9110 §5.6.4 qdtext / quoted-pair: HTAB, SP, VCHAR and obs-text; no other controls.
_QUOTABLE = re.compile(r"^[\t\x20-\x7E\x80-\xFF]*$")
_ESCAPE = re.compile(r'(["\\])')


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


def quote_string(value: str) -> str:
    """Render ``value`` as an RFC 9110 §5.6.4 quoted-string (what the parser unquotes).

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


class _Reader:
    """A cursor over one header value; every method advances past what it consumed."""

    def __init__(self, text: str, *, lenient: bool) -> None:
        self.text = text
        self.pos = 0
        self.lenient = lenient

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_ows(self) -> None:
        while not self.at_end() and self.text[self.pos] in " \t":
            self.pos += 1

    def skip_separators(self) -> None:
        while not self.at_end() and self.text[self.pos] in " \t,":
            self.pos += 1

    def token(self) -> str:
        start = self.pos
        while not self.at_end() and self.text[self.pos] in _TCHAR:
            self.pos += 1
        return self.text[start : self.pos]

    def unquoted(self) -> str:
        if not self.lenient:
            return self.token()
        start = self.pos
        while not self.at_end() and self.text[self.pos] not in ", \t":
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        # The caller checked the opening quote.
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
        if self.lenient:
            return "".join(out)
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
    value = reader.unquoted()
    if not value:
        reader.pos = start
        return None
    return name.lower(), value


def _unexpected(reader: _Reader, what: str = "unexpected character") -> ValueError:
    return ValueError(f"{what} at offset {reader.pos}")


def _read_params(reader: _Reader) -> dict[str, str]:
    """The ``#auth-param`` list of one challenge; stops before the next challenge."""
    params: dict[str, str] = {}
    while not reader.at_end():
        mark = reader.pos
        reader.skip_separators()
        param = _read_param(reader)
        if param is None:
            reader.pos = mark  # the next challenge starts here, after a comma
            reader.skip_ows()
            if not reader.lenient and not reader.at_end() and reader.peek() != ",":
                raise _unexpected(reader)
            return params
        name, value = param
        if name in params:
            if not reader.lenient:
                raise ValueError(f"parameter {name!r} repeated in one challenge (RFC 9110 §11.2)")
            continue  # lenient: the first value wins
        params[name] = value
        reader.skip_ows()
        if not reader.lenient and not reader.at_end() and reader.peek() != ",":
            raise _unexpected(reader)
    return params


def _read_challenge(reader: _Reader) -> Challenge | None:
    """One challenge; None (lenient only) when no auth-scheme starts here."""
    scheme = reader.token()
    if not scheme:
        if not reader.lenient:
            raise _unexpected(reader, "expected an auth-scheme")
        comma = reader.text.find(",", reader.pos)
        reader.pos = len(reader.text) if comma == -1 else comma
        return None
    if reader.at_end() or reader.peek() == ",":
        return Challenge(scheme=scheme)
    if reader.peek() not in (" ", "\t"):
        if not reader.lenient:
            raise _unexpected(reader, "unexpected character after auth-scheme")
        return Challenge(scheme=scheme)
    reader.skip_ows()
    # token68 can only come straight after the scheme, never after a comma.
    token68 = _read_token68(reader)
    if token68 is not None:
        return Challenge(scheme=scheme, token68=token68)
    return Challenge(scheme=scheme, params=_read_params(reader))


def parse_challenges(headers: Iterable[str], *, lenient: bool = False) -> list[Challenge]:
    """Every challenge in one or more ``WWW-Authenticate`` values, in order (RFC 9110 §11.6.1).

    Args:
        headers: The header values (a response may repeat the header).
        lenient: Read what sloppy servers send instead of raising (see the module docstring).

    Returns:
        The challenges, in header order then in order within each header.

    Raises:
        ValueError: Strict mode only: a value is not valid challenge syntax.

    Example:
        >>> parse_challenges(['Bearer realm="x", scope="a b"', "Negotiate abc=="])[1].token68
        'abc=='
        >>> parse_challenges(["Bearer resource_metadata=https://rs/x"], lenient=True)[0].params
        {'resource_metadata': 'https://rs/x'}
    """
    challenges: list[Challenge] = []
    for header in headers:
        reader = _Reader(header, lenient=lenient)
        reader.skip_separators()
        while not reader.at_end():
            challenge = _read_challenge(reader)
            if challenge is not None:
                challenges.append(challenge)
            reader.skip_separators()
    return challenges


def parse_www_authenticate(value: str) -> list[Challenge]:
    """Parse one ``WWW-Authenticate`` value strictly (RFC 9110 §11.6.1).

    Raises:
        ValueError: The value is not valid challenge syntax.

    Example:
        >>> [c.scheme for c in parse_www_authenticate('DPoP algs="ES256", Bearer realm="x"')]
        ['DPoP', 'Bearer']
    """
    return parse_challenges([value])


def find_challenge(challenges: Iterable[Challenge], *schemes: str) -> Challenge | None:
    """The first challenge of the first of ``schemes`` present (compared case-insensitively).

    Example:
        >>> found = find_challenge(parse_www_authenticate("DPoP, Bearer"), "bearer", "dpop")
        >>> found.scheme if found else None
        'Bearer'
    """
    listed = list(challenges)
    for wanted in schemes:
        for challenge in listed:
            if challenge.scheme.lower() == wanted.lower():
                return challenge
    return None
