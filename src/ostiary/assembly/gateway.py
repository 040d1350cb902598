"""The gateway with the authorization server embedded: ``ostiary gateway`` without ``--issuer``.

One port serves both: the authorization server's pages and endpoints, and the gateway at
``{issuer}/mcp`` in front of the upstream MCP server (:mod:`ostiary.gateway.app`). They share
the storage and the key ring; the gateway verifies tokens against the ring in-process and
checks the AS's revocation record (:mod:`ostiary.assembly.in_process`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ostiary.assembly.in_process import (
    CombinedApp,
    RevocationCheckingVerifier,
    local_jwt_verifier,
)
from ostiary.gateway.app import DEFAULT_GATEWAY_POLICY, GatewayOptions, create_gateway_app
from ostiary.resource.policy import ProtectionPolicy
from ostiary.server.app import create_authorization_server
from ostiary.settings import Settings

__all__ = ["create_embedded_gateway"]


def create_embedded_gateway(
    settings: Settings,
    *,
    upstream_url: str | None = None,
    command: Sequence[str] | None = None,
    policy: ProtectionPolicy | None = None,
    options: GatewayOptions | None = None,
) -> CombinedApp:
    """The gateway at ``{issuer}/mcp`` with the authorization server on the same port.

    Tokens are verified against the embedded AS's key ring in-process. A policy without
    ``cors_origins`` takes the server's (``OSTIARY_SERVER__CORS_ORIGINS``).
    """
    authorization_server = create_authorization_server(settings)
    ctx = authorization_server.state.ctx
    resource = f"{settings.issuer}/mcp"
    policy = policy or DEFAULT_GATEWAY_POLICY
    if not policy.cors_origins and settings.server.cors_origins:
        policy = replace(policy, cors_origins=settings.server.cors_origins)
    gateway = create_gateway_app(
        resource=resource,
        issuer=settings.issuer,
        verifier=RevocationCheckingVerifier(ctx, local_jwt_verifier(ctx, resource)),
        upstream_url=upstream_url,
        command=command,
        policy=policy,
        options=options,
    )
    return CombinedApp(authorization_server, gateway)
