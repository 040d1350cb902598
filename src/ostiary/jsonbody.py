"""The one bounded reader for JSON request bodies (RFC 8259 §2, §4, §7, §8.1, §9).

Every endpoint that takes JSON from a client (registration, the MCP endpoint's scope guards)
parses it here and nowhere else, so one set of limits holds everywhere:

* the body is at most ``max_bytes`` long (413 beyond);
* it is UTF-8 (RFC 8259 §8.1), and no string or member name holds an unpaired UTF-16
  surrogate (``"\\ud800"``: RFC 8259 §8.2 leaves it "unpredictable"; here it would fail
  later, when the value is encoded for storage or a response);
* it nests at most ``max_depth`` arrays and objects (RFC 8259 §9 lets a parser set the
  limit; Python's own parser would raise ``RecursionError`` at about a thousand), checked
  *before* parsing with a scan in C-speed byte operations, so no input can recurse deeply;
* no object repeats a member name (RFC 8259 §4 "SHOULD be unique"; two readers taking the
  first and the last of a repeated ``name`` would authorize one tool and run another);
* ``NaN`` and ``Infinity`` are refused (not JSON), and NUL too where the caller asks.

Failures are :class:`~ostiary.errors.InvalidRequestError` with a plain description; the
caller turns them into its surface's error (an OAuth error body, a JSON-RPC parse error).
Sans-IO: bytes in, Python values out.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from ostiary.errors import InvalidRequestError

__all__ = ["MAX_DEPTH", "loads", "loads_object"]

#: Deepest nesting of arrays and objects accepted (MCP and OAuth messages need a handful).
MAX_DEPTH: Final = 64

#: A JSON string, as the parser tokenizes it (exact for every prefix of a valid document).
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_PARENS: Final = bytes.maketrans(b"[]{}", b"()()")
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
#: An escape that can produce a surrogate code point (``\uD800``-``\uDFFF``).
_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_SURROGATE_OR_NUL: Final = re.compile("[\x00\ud800-\udfff]")

NOT_JSON: Final = "request body is not valid JSON"
TOO_LARGE: Final = "request body is too large"
NOT_OBJECT: Final = "request body must be a JSON object"
DUPLICATE: Final = "request body repeats a member name in one object"
SURROGATE: Final = "request body contains an unpaired UTF-16 surrogate"
NUL: Final = "request body contains a NUL character"


class _DuplicateKeyError(Exception):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKeyError
    return result


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant)


def loads(
    body: bytes,
    *,
    max_bytes: int | None = None,
    max_depth: int = MAX_DEPTH,
    allow_nul: bool = True,
) -> Any:
    """Parse a JSON request body within the limits above.

    Args:
        body: The raw body.
        max_bytes: Largest body accepted (None: the caller already bounded it).
        max_depth: Deepest nesting of arrays and objects accepted.
        allow_nul: Whether strings may hold U+0000 (not where PostgreSQL text stores them).

    Raises:
        InvalidRequestError: The body breaks a limit or is not JSON (413 when too large).

    Example:
        >>> loads(b'{"jsonrpc": "2.0", "method": "ping", "id": 1}')["method"]
        'ping'
    """
    if max_bytes is not None and len(body) > max_bytes:
        raise InvalidRequestError(TOO_LARGE, status_code=413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError(NOT_JSON, detail="body is not UTF-8") from None
    _check_depth(body, max_depth)
    try:
        value, end = _DECODER.raw_decode(text, _skip_space(text, 0))
    except _DuplicateKeyError:
        raise InvalidRequestError(DUPLICATE) from None
    except (ValueError, RecursionError) as exc:
        # RecursionError cannot happen after _check_depth; kept so that no parser limit
        # ever surfaces as a 500.
        raise InvalidRequestError(NOT_JSON, detail=str(exc)[:200]) from None
    if _skip_space(text, end) != len(text):
        raise InvalidRequestError(NOT_JSON, detail="data after the JSON value")
    _check_strings(body, value, allow_nul=allow_nul)
    return value


def loads_object(
    body: bytes,
    *,
    max_bytes: int | None = None,
    max_depth: int = MAX_DEPTH,
    allow_nul: bool = True,
) -> dict[str, Any]:
    """:func:`loads` for endpoints that take one JSON object (RFC 7591 §3.1)."""
    value = loads(body, max_bytes=max_bytes, max_depth=max_depth, allow_nul=allow_nul)
    if not isinstance(value, dict):
        raise InvalidRequestError(NOT_OBJECT)
    return value


_SPACE: Final = re.compile(r"[ \t\n\r]*")


def _skip_space(text: str, start: int) -> int:
    """RFC 8259 §2 whitespace only (``str.strip`` would also take Unicode spaces)."""
    match = _SPACE.match(text, start)
    return match.end() if match else start


def _check_depth(body: bytes, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth`` without recursing (RFC 8259 §9).

    Strings are cut out, every bracket becomes ``(`` or ``)``, and innermost ``()`` pairs are
    removed once per level (a run of more opening brackets than the limit ends it early). A
    balanced document no deeper than the limit vanishes within ``max_depth`` rounds; a pair
    still there is deeper. Leftovers with no pair are unbalanced
    brackets, which no JSON document has. For every prefix the parser can read, the cut
    strings are the parser's own, so the parser never goes deeper than this scan allows.
    """
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return  # cannot nest deeper than it has brackets
    brackets = _STRING.sub(b"", body).translate(_PARENS, _NOT_BRACKETS)
    run = b"(" * (max_depth + 1)  # that many opens in a row: deeper than the limit already
    for _ in range(max_depth):
        if run in brackets:
            break
        reduced = brackets.replace(b"()", b"")
        if len(reduced) == len(brackets):
            break
        brackets = reduced
    if run in brackets or b"()" in brackets:
        raise InvalidRequestError(
            f"request body nests arrays and objects more than {max_depth} levels deep"
        )
    if brackets:
        raise InvalidRequestError(NOT_JSON, detail="unbalanced brackets")


def _check_strings(body: bytes, value: Any, *, allow_nul: bool) -> None:
    """Refuse unpaired surrogates (and NUL unless allowed) in any string or member name.

    Both can only come from ``\\u`` escapes (raw bytes of either fail UTF-8 or JSON), so the
    walk runs only when the body has such an escape.
    """
    surrogates = _SURROGATE_ESCAPE.search(body) is not None
    nul = not allow_nul and b"\\u0000" in body
    if not surrogates and not nul:
        return
    pattern = _SURROGATE_OR_NUL if nul else _SURROGATE
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found = pattern.search(item)
            if found is not None:
                raise InvalidRequestError(NUL if found.group() == "\x00" else SURROGATE)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
