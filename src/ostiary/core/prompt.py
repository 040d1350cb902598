"""The ``prompt`` parameter of the authorization endpoint (OpenID Connect Core 1.0 §3.1.2.1).

MCP clients send it (``consent`` to be sure the user sees what is granted, ``login`` to switch
accounts, ``none`` to try a silent authorization first), so the authorization server honours
it for OAuth requests too:

* ``none``: no page at all. A signed-in user whose remembered consent covers the request gets
  the code; otherwise the client gets ``login_required`` or ``consent_required`` through the
  redirect (with ``state`` and ``iss``, as any redirected error). ``none`` with any other value
  is ``invalid_request``.
* ``login`` (and ``select_account``, which with one account per browser means the same): the
  user signs in again even when a session exists; the session present when the request came
  in does not count.
* ``consent``: the consent page is shown even when a remembered consent covers the request.

Values this server does not know are ignored, as §3.1.2.1 allows, so a client sending a newer
value still gets a working authorization.
"""

from __future__ import annotations

from typing import Final

from ostiary.errors import InvalidRequestError

__all__ = ["SUPPORTED", "parse_prompt"]

#: ``prompt_values_supported`` (OpenID Connect Discovery 1.0 §3, Prompt Create extension).
SUPPORTED: Final = ("none", "login", "consent", "select_account")


def parse_prompt(value: str | None) -> tuple[str, ...]:
    """The known prompt values of a request, in order, without repeats.

    Raises:
        InvalidRequestError: ``none`` together with another value (§3.1.2.1).

    Example:
        >>> parse_prompt("login consent")
        ('login', 'consent')
        >>> parse_prompt(None)
        ()
    """
    if not value:
        return ()
    given = tuple(dict.fromkeys(value.split(" ")))
    known = tuple(v for v in given if v in SUPPORTED)
    if "none" in known and len([v for v in given if v]) > 1:
        raise InvalidRequestError("prompt=none cannot be combined with other prompt values")
    return known
