"""Splitting untrusted URLs without exceptions (RFC 3986 §3).

``urllib.parse.urlsplit`` raises ``ValueError`` for some malformed input (an unbalanced or
bogus ``[...]`` host) and ``SplitResult.port`` raises for a non-numeric or out-of-range port.
Every parser of client-supplied URLs goes through :func:`split_url`, so such input becomes a
protocol error at the caller instead of an unexpected exception.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit


def split_url(value: str) -> SplitResult | None:
    """The URL's components, or None when Python's parser refuses it (host or port)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None
    return parts
