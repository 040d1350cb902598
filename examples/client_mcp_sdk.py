"""List and call tools on an OAuth-protected MCP server with the official ``mcp`` SDK.

Usage::

    python examples/client_mcp_sdk.py https://mcp.example.com/mcp [tool] [key=value ...]

The first run opens the browser (loopback redirect on a free port) and keeps the tokens in
``~/.config/ostiary/tokens``; later runs reuse or refresh them without a browser.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio

from ostiary.client import (
    ClientConfig,
    FileTokenStore,
    LoopbackCallback,
    OAuthClientAuth,
    open_mcp_client,
)


async def main(url: str, tool: str | None, pairs: list[str]) -> None:
    store = FileTokenStore(Path.home() / ".config" / "ostiary" / "tokens")
    async with LoopbackCallback(announce=lambda u: print(f"Log in at: {u}")) as callback:
        config = ClientConfig(client_name="example", redirect_uris=(callback.redirect_uri,))
        auth = OAuthClientAuth(config, callback=callback, store=store)
        async with open_mcp_client(url, auth) as client:
            tools = await client.list_tools()
            print("tools:", ", ".join(t.name for t in tools.tools))
            if tool:
                arguments = dict(pair.split("=", 1) for pair in pairs)
                result = await client.call_tool(tool, arguments)
                print(json.dumps(result.model_dump(mode="json", exclude_none=True), indent=2))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    anyio.run(main, sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None, sys.argv[3:])
