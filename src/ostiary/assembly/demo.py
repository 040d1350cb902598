"""The demo deployment: the authorization server plus the demo MCP server at ``{issuer}/mcp``.

What ``ostiary serve`` runs by default. The two share the storage, the key ring and one
lifespan (:class:`~ostiary.assembly.in_process.CombinedApp`); the demo verifies tokens against
the in-process key ring and the AS's revocation record.
"""

from __future__ import annotations

from typing import Any

from ostiary.assembly.in_process import (
    CombinedApp,
    RevocationCheckingVerifier,
    local_jwt_verifier,
)
from ostiary.core.context import ServerContext
from ostiary.core.dpop_token import proof_window
from ostiary.core.storage import Storage
from ostiary.demo.app import create_demo_app
from ostiary.demo.server import DemoScopes
from ostiary.errors import ConfigurationError
from ostiary.resource.dpop import DPoPOptions
from ostiary.server.app import create_authorization_server
from ostiary.settings import Settings

__all__ = ["create_combined_app"]


def create_combined_app(
    settings: Settings,
    storage: Storage | None = None,
    *,
    scopes: DemoScopes | None = None,
    hide_unauthorized_tools: bool | None = None,
    mixed_auth: bool | None = None,
    count_usage: bool = True,
    **as_options: Any,
) -> CombinedApp:
    """The AS and the demo MCP server at ``{issuer}/mcp``, sharing storage and lifespan.

    ``app.state.ctx`` is the AS's :class:`ServerContext`. ``scopes``,
    ``hide_unauthorized_tools`` and ``mixed_auth`` default to ``settings.demo``.

    Raises:
        ConfigurationError: A demo scope is not one the authorization server supports, so
            no token could ever carry it.

    Example:
        >>> import uvicorn
        >>> from ostiary.settings import load_settings
        >>> uvicorn.run(create_combined_app(load_settings()), port=8000)  # doctest: +SKIP
    """
    demo = settings.demo
    scopes = scopes or DemoScopes(read=demo.read_scope, write=demo.write_scope)
    unknown = [s for s in (scopes.read, scopes.write) if s not in settings.scopes.supported]
    if unknown:
        raise ConfigurationError(
            f"demo scope(s) {', '.join(unknown)} not in scopes.supported "
            f"({', '.join(settings.scopes.supported)}): add them there (OSTIARY_SCOPES__SUPPORTED)"
        )
    if hide_unauthorized_tools is None:
        hide_unauthorized_tools = demo.hide_unauthorized_tools
    if mixed_auth is None:
        mixed_auth = demo.mixed_auth
    authorization_server = create_authorization_server(settings, storage, **as_options)
    ctx: ServerContext = authorization_server.state.ctx
    resource = f"{settings.issuer}/mcp"
    mcp_app = create_demo_app(
        ctx.storage,
        ctx.tenant,
        resource=resource,
        issuer=settings.issuer,
        verifier=RevocationCheckingVerifier(ctx, local_jwt_verifier(ctx, resource)),
        clock=ctx.clock,
        scopes=scopes,
        hide_unauthorized_tools=hide_unauthorized_tools,
        mixed_auth=mixed_auth,
        cors_origins=settings.server.cors_origins,
        count_usage=count_usage,
        # RFC 9449: proofs spent in the AS's storage, so a replay to another node is refused.
        dpop=DPoPOptions(
            resource,
            replay=ctx.storage,
            tenant=ctx.tenant,
            window=proof_window(ctx),
            advertise=False,
            clock=ctx.clock,
        ),
    )
    return CombinedApp(authorization_server, mcp_app)
