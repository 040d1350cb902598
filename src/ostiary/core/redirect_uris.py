"""Redirect URI registration rules and exact matching (RFC 9700 §2.1, §4.1; RFC 8252 §7.1-§7.3).

Registration (RFC 7591 §2 ``redirect_uris`` with OpenID Connect Registration's
``application_type``) decides which URIs a client may register:

* every URI is absolute, has no fragment (RFC 6749 §3.1.2) and no userinfo;
* ``web`` clients use ``https`` only, and never a loopback host;
* ``native`` clients use an ``http`` loopback URI (RFC 8252 §7.3; ``localhost`` is accepted
  for interoperability although §8.3 prefers IP literals), an ``https`` URI (§7.2), or a
  private-use scheme in reverse-domain form, i.e. containing a ``.`` (§7.1).

Matching at the authorization and token endpoints is exact string comparison (RFC 9700 §2.1,
OAuth 2.1 §2.3). The single exception is RFC 8252 §7.3: for an ``http`` loopback URI the port
may differ, because native apps bind an ephemeral port. No other normalisation ever happens:
no case folding, no percent-decoding, no trailing-slash tolerance.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlsplit

from ostiary.core.urls import split_url
from ostiary.errors import InvalidRedirectUriError
from ostiary.loopback import is_loopback_host

# RFC 3986 §3.1 scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Visible ASCII except characters that browsers or parsers treat inconsistently.
_SAFE_CHARS = re.compile(r"^[\x21-\x7E]+$")
_PORT = re.compile(r"^[0-9]{1,5}$")
#: Schemes that are never acceptable redirect targets, whatever the application type.
FORBIDDEN_SCHEMES = frozenset(
    {"javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "ftp", "ws", "wss"}
)
MAX_REDIRECT_URI_LENGTH = 2048


def _reject(message: str, uri: str) -> InvalidRedirectUriError:
    return InvalidRedirectUriError(message, detail=f"redirect_uri {uri[:200]!r}")


def _check_common(uri: str) -> str:
    """Syntax rules shared by every application type; returns the lowercased scheme."""
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        raise _reject("redirect_uri is too long", uri)
    if not _SAFE_CHARS.match(uri) or "\\" in uri:
        raise _reject("redirect_uri contains spaces, control or non-ASCII characters", uri)
    m = _SCHEME.match(uri)
    if m is None:
        raise _reject("redirect_uri must be an absolute URI", uri)
    scheme = m.group(1).lower()
    if scheme in FORBIDDEN_SCHEMES:
        raise _reject(f"redirect_uri scheme {scheme} is not allowed", uri)
    if "#" in uri:
        # RFC 6749 §3.1.2: the endpoint URI MUST NOT include a fragment component.
        raise _reject("redirect_uri must not contain a fragment", uri)
    parts = split_url(uri)
    if parts is None:
        raise _reject("redirect_uri has an invalid host or port", uri)
    if "@" in parts.netloc:
        raise _reject("redirect_uri must not contain userinfo", uri)
    if scheme in ("http", "https") and not parts.hostname:
        raise _reject("redirect_uri must include a host", uri)
    return scheme


def validate_registered_redirect_uri(uri: str, application_type: Literal["native", "web"]) -> None:
    """Check that a client may register ``uri`` (RFC 7591 §2; RFC 8252 §7-§8; OIDC Registration).

    Args:
        uri: One entry of the ``redirect_uris`` metadata.
        application_type: ``native`` or ``web``.

    Raises:
        InvalidRedirectUriError: With a description naming the rule that failed.

    Example:
        >>> validate_registered_redirect_uri("http://127.0.0.1/callback", "native")
        >>> validate_registered_redirect_uri("https://app.example.com/cb", "web")
    """
    scheme = _check_common(uri)
    host = (split_url(uri) or urlsplit("")).hostname or ""
    if application_type == "web":
        if scheme != "https":
            raise _reject("web clients must use https redirect URIs", uri)
        if is_loopback_host(host):
            raise _reject("web clients must not use a loopback redirect URI", uri)
        return
    if scheme == "https":
        return  # RFC 8252 §7.2 claimed https scheme redirect.
    if scheme == "http":
        if not is_loopback_host(host):
            # RFC 8252 §8.3: plain http is only acceptable on the loopback interface.
            raise _reject("http redirect URIs must use a loopback host", uri)
        return
    if "." not in scheme:
        # RFC 8252 §7.1: private-use schemes are reverse domain names, e.g. com.example.app.
        raise _reject("private-use redirect URI schemes must be reverse domain names", uri)


def _split_loopback(uri: str) -> tuple[str, str, str, str] | None:
    """Split an http loopback URI into (scheme text, raw host, raw port, rest) or None.

    Works on the raw string so matching compares exactly what the client sent.
    """
    m = _SCHEME.match(uri)
    if m is None or m.group(1).lower() != "http" or not uri[m.end() :].startswith("//"):
        return None
    if not _SAFE_CHARS.match(uri) or "\\" in uri or "#" in uri:
        return None
    after = uri[m.end() + 2 :]
    end = len(after)
    for sep in "/?":
        idx = after.find(sep)
        if idx != -1:
            end = min(end, idx)
    authority, rest = after[:end], after[end:]
    if "@" in authority:
        return None
    if authority.startswith("["):
        close = authority.find("]")
        if close == -1:
            return None
        host, port_part = authority[: close + 1], authority[close + 1 :]
    else:
        host, colon, port = authority.partition(":")
        port_part = colon + port
    if port_part and not (port_part[0] == ":" and _PORT.match(port_part[1:])):
        return None
    if port_part and not 0 < int(port_part[1:]) <= 65535:
        return None
    if not host or not is_loopback_host(host):
        return None
    return m.group(0), host, port_part, rest


def is_loopback_redirect(uri: str) -> bool:
    """True for an ``http`` redirect URI whose host is a loopback address or localhost.

    Example:
        >>> is_loopback_redirect("http://127.0.0.1:8080/cb")
        True
        >>> is_loopback_redirect("https://127.0.0.1/cb")
        False
    """
    return _split_loopback(uri) is not None


def match_redirect_uri(requested: str, registered: Sequence[str]) -> bool:
    """Whether ``requested`` is one of the ``registered`` redirect URIs (RFC 9700 §2.1).

    Exact string comparison, except that an ``http`` loopback URI may use any port (RFC 8252
    §7.3), including a registered URI without a port. Scheme, host, path and query must still
    be identical character for character.

    Args:
        requested: The ``redirect_uri`` of the request.
        registered: The client's registered redirect URIs.

    Returns:
        True when the request may use ``requested``.

    Example:
        >>> match_redirect_uri("http://127.0.0.1:53122/cb", ["http://127.0.0.1/cb"])
        True
        >>> match_redirect_uri("https://app.example.com/cb/", ["https://app.example.com/cb"])
        False
    """
    if requested in registered:
        return True
    wanted = _split_loopback(requested)
    if wanted is None:
        return False
    for candidate in registered:
        have = _split_loopback(candidate)
        if have is not None and (have[0], have[1], have[3]) == (wanted[0], wanted[1], wanted[3]):
            return True
    return False
