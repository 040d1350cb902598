"""What an MCP client reads from a ``WWW-Authenticate`` challenge (RFC 6750 §3; RFC 9728 §5.1).

A resource server tells the client what it needs through the challenge: the protected
resource metadata URL (``resource_metadata``), the scopes the operation needs (``scope``)
and why it refused (``error``). The header is read by :mod:`ostiary.www_authenticate`, the
one RFC 9110 §11.6.1 parser, in its lenient mode: real servers are sloppy (unquoted URLs,
several challenges in one header, several headers, odd spacing), and a client must not fail
on a challenge it could still act on. Anything unreadable is skipped, never raised on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ostiary import www_authenticate
from ostiary.www_authenticate import Challenge, find_challenge

__all__ = ["BearerChallenge", "Challenge", "parse_bearer_challenge", "parse_challenges"]


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


def parse_challenges(headers: Iterable[str]) -> list[Challenge]:
    """Every challenge in one or more ``WWW-Authenticate`` values, read leniently.

    Args:
        headers: The header values (a response may repeat the header).

    Returns:
        The challenges in order. Unreadable fragments are skipped, never raised on.

    Example:
        >>> parse_challenges(['Bearer realm="x", scope="a b"'])[0].params["scope"]
        'a b'
    """
    return www_authenticate.parse_challenges(headers, lenient=True)


def parse_bearer_challenge(headers: Iterable[str]) -> BearerChallenge | None:
    """The first ``Bearer`` (else ``DPoP``) challenge in the headers, or ``None``.

    Args:
        headers: The ``WWW-Authenticate`` header values of a 401 or 403 response.

    Returns:
        The challenge's ``error``, ``error_description``, ``scope`` and
        ``resource_metadata``, or ``None`` when the server sent no such challenge.
    """
    challenge = find_challenge(parse_challenges(headers), "bearer", "dpop")
    if challenge is None:
        return None
    params = challenge.params
    return BearerChallenge(
        scheme=challenge.scheme,
        error=params.get("error"),
        error_description=params.get("error_description"),
        scope=params.get("scope"),
        resource_metadata=params.get("resource_metadata"),
    )
