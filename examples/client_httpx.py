"""Call an OAuth-protected MCP server with plain ``httpx`` (no MCP SDK).

Usage::

    python examples/client_httpx.py https://mcp.example.com/mcp

Sends one JSON-RPC ``tools/list`` request (2026-07-28 stateless envelope). A ``401`` runs
discovery, registration and a browser login; the request is then retried with the token.
Without a browser, the URL is printed and the redirect URL is pasted back.
"""

from __future__ import annotations

import sys

import anyio
import httpx

from ostiary.client import ClientConfig, MemoryTokenStore, OAuthClientAuth, PasteCallback

PROTOCOL_VERSION = "2026-07-28"


async def main(url: str) -> None:
    config = ClientConfig(client_name="example", redirect_uris=("http://127.0.0.1/callback",))
    auth = OAuthClientAuth(config, callback=PasteCallback(), store=MemoryTokenStore())
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/list",
        "params": {
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": PROTOCOL_VERSION,
                "io.modelcontextprotocol/clientCapabilities": {},
            }
        },
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": PROTOCOL_VERSION,
        "Mcp-Method": "tools/list",
    }
    async with httpx.AsyncClient(auth=auth, timeout=30) as http:
        response = await http.post(url, json=message, headers=headers)
    print(response.status_code, response.text)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    anyio.run(main, sys.argv[1])
