"""Protect a FastMCP 4 server with ostiary (``pip install fastmcp==4.0.11``).

Run an ostiary authorization server first (``ostiary serve``, issuer http://127.0.0.1:8000),
then ``python examples/protect_fastmcp.py``: the MCP endpoint is http://127.0.0.1:8002/mcp.
"""

from __future__ import annotations

import os

import uvicorn
from fastmcp import FastMCP

from ostiary.resource.fastmcp_adapter import protect_fastmcp_app
from ostiary.resource.middleware import current_principal
from ostiary.resource.policy import ProtectionPolicy

ISSUER = os.environ.get("OSTIARY_ISSUER", "http://127.0.0.1:8000")
PORT = int(os.environ.get("MCP_PORT", "8002"))
RESOURCE = os.environ.get("MCP_RESOURCE", f"http://127.0.0.1:{PORT}/mcp")

server = FastMCP("fastmcp-protected-demo")


@server.tool
def whoami() -> str:
    """The caller's subject."""
    principal = current_principal()
    return principal.subject if principal else "anonymous"


@server.tool
def search(query: str) -> list[str]:
    """Public: works without a token."""
    return [f"{query} result {n}" for n in range(3)]


@server.tool
def publish(text: str) -> str:
    """Needs mcp:write."""
    return f"published {len(text)} characters"


# Tokens are the AS's JWTs (keys from the jwks_uri of its metadata), audience RESOURCE.
app = protect_fastmcp_app(
    server,
    resource=RESOURCE,
    issuer=ISSUER,
    policy=ProtectionPolicy(
        required_scopes=["mcp:read"],
        tool_scopes={"publish": ["mcp:write"]},
        scope_hierarchy={"mcp:write": ["mcp:read"]},
        public_tools=["search"],
        mixed_auth=True,  # public_tools need it: tokenless clients may connect and search
        hide_unauthorized_tools=True,
    ),
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT)
