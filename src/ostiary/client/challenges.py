"""WWW-Authenticate challenge parsing (RFC 9110 §11.6.1; RFC 6750 §3; RFC 9728 §5.1).

A resource server tells the client what it needs through the challenge: the protected
resource metadata URL (``resource_metadata``), the scopes the operation needs (``scope``)
and why it refused (``error``). Real servers are sloppy (unquoted values, several
challenges in one header, several headers, odd spacing, commas inside quoted strings), so
the parser here is a small tokenizer over the RFC 9110 grammar that never raises: anything
it cannot read is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["BearerChallenge", "Challenge", "parse_bearer_challenge", "parse_challenges"]

# RFC 9110 §5.6.2 tchar; token68 (§11.2) adds "-._~+/" and trailing "=".
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SPACE = re.compile(r"[ \t]*")


@dataclass(frozen=True)
class Challenge:
    """One challenge: an auth scheme and its parameters (names lower-cased)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None


@dataclass(frozen=True)
class BearerChallenge:
    """The parts of a ``Bearer`` (or ``DPoP``) challenge an MCP client acts on."""

    scheme: str
    error: str | None = None
    error_description: str | None = None
    scope: str | None = None
    resource_metadata: str | None = None

    @property
    def scopes(self) -> tuple[str, ...]:
        """The challenged scopes, split on spaces (RFC 6749 §3.3), in order, no repeats."""
        return tuple(dict.fromkeys((self.scope or "").split()))


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip(self, pattern: re.Pattern[str] = _SPACE) -> None:
        match = pattern.match(self.text, self.pos)
        if match:
            self.pos = match.end()

    def skip_separators(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t,":
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def token(self, pattern: re.Pattern[str] = _TOKEN) -> str | None:
        match = pattern.match(self.text, self.pos)
        if not match:
            return None
        self.pos = match.end()
        return match.group(0)

    def quoted(self) -> str:
        """Read a quoted-string (RFC 9110 §5.6.4) starting at the opening quote."""
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\" and self.pos < len(self.text):
                out.append(self.text[self.pos])
                self.pos += 1
            elif char == '"':
                break
            else:
                out.append(char)
        return "".join(out)

    def value(self) -> str:
        if self.peek() == '"':
            return self.quoted()
        # Lenient: accept any run up to the next comma for unquoted values (servers
        # send URLs unquoted even though ':' and '/' are not tchars).
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ", \t":
            self.pos += 1
        return self.text[start : self.pos]


def _looks_like_param(reader: _Reader) -> bool:
    """True when the reader is at ``name =`` (an auth-param), not at a new scheme."""
    match = _TOKEN.match(reader.text, reader.pos)
    if not match:
        return False
    rest = reader.text[match.end() :].lstrip(" \t")
    return rest.startswith("=") and not _TOKEN68_ONLY.match(reader.text, reader.pos)


# A token68 such as "abc==" ends in '=' with nothing meaningful after it.
_TOKEN68_ONLY = re.compile(r"[A-Za-z0-9\-._~+/]+=+[ \t]*(,|$)")


def _read_params(reader: _Reader) -> tuple[dict[str, str], str | None]:
    params: dict[str, str] = {}
    token68: str | None = None
    reader.skip()
    if reader.peek() and not _looks_like_param(reader):
        candidate = _TOKEN68_ONLY.match(reader.text, reader.pos)
        if candidate:
            token68 = reader.token(_TOKEN68)
    while True:
        reader.skip_separators()
        if not _looks_like_param(reader):
            return params, token68
        name = reader.token()
        assert name is not None  # guaranteed by _looks_like_param
        reader.skip()
        reader.pos += 1  # the '='
        reader.skip()
        # RFC 9110 §11.2: parameter names are case-insensitive; first occurrence wins.
        params.setdefault(name.lower(), reader.value())


def parse_challenges(headers: Iterable[str]) -> list[Challenge]:
    """Parse every challenge in one or more ``WWW-Authenticate`` header values.

    Args:
        headers: The header values (a response may repeat the header).

    Returns:
        The challenges in order. Unreadable fragments are skipped, never raised on.

    Example:
        >>> parse_challenges(['Bearer realm="x", scope="a b"'])[0].params["scope"]
        'a b'
    """
    challenges: list[Challenge] = []
    for header in headers:
        reader = _Reader(header)
        while True:
            reader.skip_separators()
            if reader.pos >= len(reader.text):
                break
            scheme = reader.token()
            if scheme is None:
                reader.pos += 1  # garbage: step over it
                continue
            params, token68 = _read_params(reader)
            challenges.append(Challenge(scheme=scheme, params=params, token68=token68))
    return challenges


def parse_bearer_challenge(headers: Iterable[str]) -> BearerChallenge | None:
    """The first ``Bearer`` (else ``DPoP``) challenge in the headers, or ``None``.

    Args:
        headers: The ``WWW-Authenticate`` header values of a 401 or 403 response.

    Returns:
        The challenge's ``error``, ``error_description``, ``scope`` and
        ``resource_metadata``, or ``None`` when the server sent no such challenge.
    """
    found = parse_challenges(headers)
    for wanted in ("bearer", "dpop"):
        for challenge in found:
            if challenge.scheme.lower() == wanted:
                params = challenge.params
                return BearerChallenge(
                    scheme=challenge.scheme,
                    error=params.get("error"),
                    error_description=params.get("error_description"),
                    scope=params.get("scope"),
                    resource_metadata=params.get("resource_metadata"),
                )
    return None
