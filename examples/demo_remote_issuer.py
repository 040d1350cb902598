"""The demo MCP server on its own port, trusting a remote ostiary authorization server.

``ostiary serve`` already runs the demo next to the AS (same port, keys read in-process). This
is the other deployment: the MCP server somewhere else, verifying the AS's JWTs against its
JWKS (found through its RFC 8414 metadata). Start the AS so that it issues tokens for this
resource, then this server:

    OSTIARY_DEV__ENABLED=true OSTIARY_RESOURCES__ALLOWED='["http://127.0.0.1:8000/mcp",
        "http://127.0.0.1:8002/mcp"]' ostiary serve
    python examples/demo_remote_issuer.py      # MCP endpoint: http://127.0.0.1:8002/mcp

Notes and usage counters go to ``DEMO_STORAGE`` (default: an in-memory store).
"""

from __future__ import annotations

import asyncio
import os

import uvicorn

from ostiary.core.context import system_clock
from ostiary.demo import DemoScopes, create_demo_app
from ostiary.resource.verifiers import JWTVerifier
from ostiary.storage.memory import MemoryStorage
from ostiary.storage.sql import SqlStorage

ISSUER = os.environ.get("OSTIARY_ISSUER", "http://127.0.0.1:8000")
PORT = int(os.environ.get("MCP_PORT", "8002"))
RESOURCE = os.environ.get("MCP_RESOURCE", f"http://127.0.0.1:{PORT}/mcp")
STORAGE = os.environ.get("DEMO_STORAGE", "memory://")

storage = MemoryStorage() if STORAGE == "memory://" else SqlStorage(STORAGE)
asyncio.run(storage.initialize())
app = create_demo_app(
    storage,
    "default",
    resource=RESOURCE,
    issuer=ISSUER,
    verifier=JWTVerifier(ISSUER, RESOURCE),  # jwks_uri discovered from the AS metadata
    clock=system_clock,
    scopes=DemoScopes(read="mcp:read", write="mcp:write"),
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT)
