"""A machine client: the client-credentials grant (MCP OAuth client-credentials extension).

Usage::

    OSTIARY_CLIENT_ID=svc OSTIARY_CLIENT_SECRET=... python examples/client_credentials.py URL
    OSTIARY_CLIENT_ID=svc OSTIARY_PRIVATE_KEY_FILE=key.pem python examples/client_credentials.py URL

With a private key the client authenticates with ``private_key_jwt`` (RFC 7523), otherwise
with its secret (``client_secret_basic`` or ``_post``, whichever the server lists).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio

from ostiary.client import ClientConfig, OAuthClientAuth, open_mcp_client


async def main(url: str) -> None:
    key_file = os.environ.get("OSTIARY_PRIVATE_KEY_FILE")
    config = ClientConfig(
        client_name="example-service",
        client_id=os.environ["OSTIARY_CLIENT_ID"],
        client_secret=os.environ.get("OSTIARY_CLIENT_SECRET"),
        private_key_pem=Path(key_file).read_text() if key_file else None,
        grant_types=("client_credentials",),
    )
    auth = OAuthClientAuth(config, grant="client_credentials")
    async with open_mcp_client(url, auth) as client:
        tools = await client.list_tools()
    print("tools:", ", ".join(tool.name for tool in tools.tools))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    anyio.run(main, sys.argv[1])
