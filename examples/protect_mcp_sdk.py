"""Protect an official-SDK MCP server with ostiary in a few lines.

Run an ostiary authorization server first (``ostiary serve``, issuer http://127.0.0.1:8000),
then:

    python examples/protect_mcp_sdk.py            # MCP endpoint: http://127.0.0.1:8001/mcp

Environment overrides: ``OSTIARY_ISSUER``, ``MCP_RESOURCE`` (the canonical MCP URL, which is
also the token audience), ``MCP_PORT``. Any MCP client that speaks the MCP authorization spec
(the SDK's ``OAuthClientProvider``, ``ostiary login``) discovers the AS from the 401 challenge.
"""

from __future__ import annotations

import os

import uvicorn
from mcp.server.mcpserver import MCPServer

from ostiary.resource.mcp_sdk import protect_mcp_app, require_scopes
from ostiary.resource.middleware import require_principal
from ostiary.resource.policy import ProtectionPolicy

ISSUER = os.environ.get("OSTIARY_ISSUER", "http://127.0.0.1:8000")
PORT = int(os.environ.get("MCP_PORT", "8001"))
RESOURCE = os.environ.get("MCP_RESOURCE", f"http://127.0.0.1:{PORT}/mcp")

mcp = MCPServer("protected-demo")
notes: dict[str, list[str]] = {}


@mcp.tool()
def whoami() -> dict[str, object]:
    """The authenticated principal, as the tool sees it."""
    principal = require_principal()
    return {"sub": principal.subject, "client_id": principal.client_id, "scopes": principal.scopes}


@mcp.tool()
def add_note(text: str) -> str:
    """Store a note for the caller (needs mcp:write, enforced before the call arrives)."""
    notes.setdefault(require_principal().subject, []).append(text)
    return "saved"


@mcp.tool()
def list_notes() -> list[str]:
    """The caller's notes."""
    return notes.get(require_principal().subject, [])


@mcp.tool()
def clear_notes() -> str:
    """Checks a finer scope in code; a failure carries _meta["mcp/www_authenticate"]."""
    subject = require_scopes("notes:admin").subject
    notes.pop(subject, None)
    return "cleared"


# Tokens are the AS's JWTs (keys from the jwks_uri of its metadata), audience RESOURCE.
app = protect_mcp_app(
    mcp,
    resource=RESOURCE,
    issuer=ISSUER,
    policy=ProtectionPolicy(
        required_scopes=["mcp:read"],
        tool_scopes={"add_note": ["mcp:write"]},  # a name that is no tool stops the start
        scope_hierarchy={"mcp:write": ["mcp:read"]},
        hide_unauthorized_tools=True,
        resource_name="ostiary protected demo",
    ),
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT)
