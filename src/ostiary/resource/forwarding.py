"""Identity headers for an upstream behind a gateway, never the token (MCP "Token Passthrough").

A gateway that protects an existing HTTP MCP server must not hand the client's access token
to it: MCP servers "MUST NOT pass through the token", since the upstream would then accept
tokens issued for someone else (confused deputy). What the upstream may get is the identity
ostiary verified. :class:`IdentityHeadersMiddleware` sits *inside* ``BearerAuthMiddleware``,
in front of the proxying app, and rewrites the request headers:

* ``Authorization`` is removed;
* every incoming header of the identity namespace is removed first, so a client cannot
  forge one: each ``x-ostiary-*`` header (also those of a field that is switched off, such as
  ``x-ostiary-client-id``, which an upstream may still trust) and the configured names;
* the verified subject (and optionally client id and scopes) are added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from ostiary.resource.verifiers import Principal

__all__ = [
    "DEFAULT_SUBJECT_HEADER",
    "IDENTITY_HEADER_PREFIX",
    "IdentityHeaders",
    "IdentityHeadersMiddleware",
]

DEFAULT_SUBJECT_HEADER: Final = "x-ostiary-subject"
#: The namespace of the headers ostiary writes; a client never gets to send one upstream.
IDENTITY_HEADER_PREFIX: Final = b"x-ostiary-"


@dataclass(frozen=True)
class IdentityHeaders:
    """Which headers carry the identity upstream (lower-case names; None leaves one out).

    Example:
        >>> IdentityHeaders(subject="x-user", client_id=None).names()
        (b'x-user', b'x-ostiary-scopes')
    """

    subject: str = DEFAULT_SUBJECT_HEADER
    client_id: str | None = None
    scopes: str | None = "x-ostiary-scopes"

    def names(self) -> tuple[bytes, ...]:
        """Every configured header name, as bytes."""
        return tuple(
            n.lower().encode("latin-1") for n in (self.subject, self.client_id, self.scopes) if n
        )

    def values(self, principal: Principal) -> list[tuple[bytes, bytes]]:
        """The headers to add for ``principal``.

        Raises:
            ValueError: A value cannot be sent in a header (control characters).
        """
        pairs = [(self.subject, principal.subject)]
        if self.client_id:
            pairs.append((self.client_id, principal.client_id))
        if self.scopes:
            pairs.append((self.scopes, " ".join(principal.scopes)))
        out: list[tuple[bytes, bytes]] = []
        for name, value in pairs:
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
                raise ValueError(f"{name} value has control characters")
            out.append((name.lower().encode("latin-1"), value.encode("utf-8")))
        return out


class IdentityHeadersMiddleware:
    """Replace the bearer token with verified identity headers before the upstream app.

    Args:
        app: The upstream-facing app (a reverse proxy).
        headers: Header names; default ``x-ostiary-subject`` and ``x-ostiary-scopes``.
    """

    def __init__(self, app: ASGIApp, headers: IdentityHeaders | None = None) -> None:
        self.app = app
        self.headers = headers or IdentityHeaders()
        # ASGI header names are lower-case bytes; names() lower-cases the configured ones.
        self._drop = frozenset((b"authorization", *self.headers.names()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        kept = [
            (k, v)
            for k, v in scope["headers"]
            if k not in self._drop and not k.lower().startswith(IDENTITY_HEADER_PREFIX)
        ]
        principal = scope.get("state", {}).get("principal")
        if isinstance(principal, Principal):
            kept.extend(self.headers.values(principal))
        await self.app({**scope, "headers": kept}, receive, send)
