"""The client the official MCP conformance suite drives (MCP conformance, client auth scenarios).

Run as ``python -m ostiary.client.conformance <server-url>``. The suite sets
``MCP_CONFORMANCE_SCENARIO`` (which scenario), ``MCP_CONFORMANCE_CONTEXT`` (JSON with
pre-registered credentials or keys) and ``MCP_CONFORMANCE_PROTOCOL_VERSION``. The mock
authorization server approves at once and redirects, so the interactive step here is a
headless one: fetch the authorization URL without following the redirect and read the
``Location``. Everything else goes through the public :mod:`ostiary.client` API and the
``mcp`` SDK client, as a real application would.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio
import httpx
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from ostiary.client.auth import OAuthClientAuth
from ostiary.client.authorization import CallbackResult, callback_result_from_url
from ostiary.client.registration import ClientConfig
from ostiary.client.session import open_mcp_client
from ostiary.errors import ClientError

__all__ = ["follow_redirect_callback", "main", "run"]

REDIRECT_URI = "http://localhost:3000/callback"
CIMD_URL = "https://conformance-test.local/client-metadata.json"


async def follow_redirect_callback(authorization_url: str) -> CallbackResult:
    """Visit the authorization URL headlessly and return the redirect's parameters.

    Raises:
        ClientError: The authorization endpoint did not redirect.
    """
    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as http:
        response = await http.get(authorization_url)
    location = response.headers.get("location")
    if response.status_code not in (301, 302, 303, 307, 308) or not location:
        raise ClientError(f"authorization endpoint answered {response.status_code}, not a redirect")
    return callback_result_from_url(location)


def _client_config(scenario: str, context: dict[str, Any]) -> tuple[ClientConfig, bool]:
    """The client configuration for a scenario, and whether it is a machine client."""
    base: dict[str, Any] = {
        "client_name": "ostiary-conformance",
        "redirect_uris": (REDIRECT_URI,),
        "client_metadata_url": CIMD_URL,
    }
    if scenario == "auth/pre-registration":
        base.update(
            client_id=context["client_id"],
            client_secret=context["client_secret"],
            pre_registered_issuer=context.get("issuer"),
        )
        return ClientConfig(**base), False
    if scenario.startswith("auth/client-credentials"):
        base.update(
            client_id=context["client_id"],
            client_secret=context.get("client_secret"),
            private_key_pem=context.get("private_key_pem"),
            signing_algorithm=context.get("signing_algorithm") or "ES256",
            grant_types=("client_credentials",),
            client_metadata_url=None,
        )
        return ClientConfig(**base), True
    return ClientConfig(**base), False


async def run(server_url: str, scenario: str, context: dict[str, Any], version: str | None) -> None:
    """Connect to the MCP server, list tools and call the first one, authorizing as needed."""
    config, machine = _client_config(scenario, context)
    auth = OAuthClientAuth(
        config,
        callback=follow_redirect_callback,
        server_url=server_url,
        grant="client_credentials" if machine else "authorization_code",
    )
    mode = version if version in MODERN_PROTOCOL_VERSIONS else "legacy"
    async with open_mcp_client(server_url, auth, mode=mode) as client:
        tools = await client.list_tools()
        if scenario.startswith("auth/client-credentials"):
            return
        if tools.tools:
            # The non-auth "tools_call" scenario checks add_numbers(2, 3); auth mocks
            # accept any arguments for their test tool.
            await client.call_tool(tools.tools[0].name, {"a": 2, "b": 3})


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ostiary.client.conformance <server-url>", file=sys.stderr)
        return 2
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    version = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION")
    try:
        anyio.run(run, args[0], scenario, context, version)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
