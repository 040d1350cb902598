"""Which hosts are loopback (RFC 8252 §7.3, §8.3; RFC 6761 §6.3): the one rule every layer uses.

Plain ``http`` is tolerated only where traffic never leaves the machine: native-app redirect
URIs (RFC 8252 §7.3), a dev-mode issuer, a local resource, URLs a local server hands its
client, a local MCP server's CORS and ``Host`` allow-lists. All of them ask
:func:`is_loopback_host`, so they cannot disagree about what "local" means.

The rule is deliberately strict. A host is loopback when it is, exactly:

* ``localhost``, in any ASCII case (host names are case-insensitive, RFC 3986 §3.2.2). RFC 8252
  §8.3 prefers IP literals but §7.3 allows ``localhost``, and clients use it;
* an IPv4 address in ``127.0.0.0/8`` (RFC 6890) written as four decimal octets without
  leading zeros, the only form Python's ``ipaddress`` and an exact-match comparison agree on;
* ``::1`` in its RFC 5952 canonical text, bare (as ``urlsplit(...).hostname`` gives it) or in
  brackets (as it appears in an authority or a ``Host`` header).

Refused, and why:

* ``*.localhost`` and ``localhost.``: RFC 6761 §6.3 only says resolvers *SHOULD* answer
  loopback for these names; common stub resolvers send them to DNS, where anyone may own
  them. ``localhost`` itself is answered from the hosts file everywhere we run;
* shorthand or non-decimal IPv4 (``127.1``, ``0x7f.0.0.1``, ``0177.0.0.1``): ``inet_aton`` and
  browsers read them as 127.0.0.1, other parsers as names; a rule must not depend on which;
* IPv4-mapped (``::ffff:127.0.0.1``), non-canonical (``0:0:0:0:0:0:0:1``) and zoned
  (``::1%lo``) IPv6: only ``[::1]`` is named by RFC 8252 §7.3, and an exact-match redirect
  comparison would otherwise see several spellings of one address;
* names that merely start or end like one (``127.0.0.1.nip.io``, ``localhost.evil.com``):
  public DNS names that resolve wherever their owner likes.
"""

from __future__ import annotations

import ipaddress
from typing import Final

__all__ = ["LOOPBACK_HOSTS", "is_loopback_host"]

#: How a local server is reached, as written in an authority: the three spellings to allow
#: when one of them is (CORS origins, ``Host`` values). Each satisfies :func:`is_loopback_host`.
LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface (RFC 8252 §7.3, §8.3).

    Args:
        host: A host as ``urlsplit(url).hostname`` returns it, or as written in an authority
            (an IPv6 literal in brackets). No port.

    Returns:
        True only for the spellings listed in this module's docstring.

    Example:
        >>> is_loopback_host("127.0.0.1"), is_loopback_host("[::1]"), is_loopback_host("::1")
        (True, True, True)
        >>> is_loopback_host("127.1"), is_loopback_host("127.0.0.1.nip.io")
        (False, False)
    """
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1] == "::1"
    if host == "::1" or (host.isascii() and host.lower() == "localhost"):
        return True
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        return False
    # str() is the canonical dotted quad: anything else was not written the one accepted way.
    return address.is_loopback and str(address) == host
