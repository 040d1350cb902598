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
from mcp.client.client import Client
from mcp.client.session import ClientRequestContext
from mcp_types import ElicitRequestParams, ElicitResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from ostiary.client.auth import OAuthClientAuth
from ostiary.client.authorization import CallbackResult, callback_result_from_url
from ostiary.client.enterprise import IdJagAssertionProvider
from ostiary.client.flow import ServerContext
from ostiary.client.registration import ClientConfig
from ostiary.client.session import open_mcp_client
from ostiary.client.tokens import JWT_BEARER_GRANT_TYPE
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


def _auth_for(scenario: str, context: dict[str, Any], server_url: str) -> OAuthClientAuth:
    """The OAuth client a scenario calls for, built from the public API only."""
    base: dict[str, Any] = {
        "client_name": "ostiary-conformance",
        "redirect_uris": (REDIRECT_URI,),
        "client_metadata_url": CIMD_URL,
    }
    if scenario == "auth/pre-registration":
        config = ClientConfig(
            **base,
            client_id=context["client_id"],
            client_secret=context["client_secret"],
            pre_registered_issuer=context.get("issuer"),
        )
        return OAuthClientAuth(config, callback=follow_redirect_callback, server_url=server_url)
    machine = {**base, "client_metadata_url": None, "client_id": context.get("client_id")}
    if scenario.startswith("auth/client-credentials"):
        config = ClientConfig(
            **machine,
            client_secret=context.get("client_secret"),
            private_key_pem=context.get("private_key_pem"),
            signing_algorithm=context.get("signing_algorithm") or "ES256",
            grant_types=("client_credentials",),
        )
        return OAuthClientAuth(config, server_url=server_url, grant="client_credentials")
    if scenario == "auth/wif-jwt-bearer":
        jwt = context["valid_jwt"]

        async def workload_jwt(_: ServerContext) -> str:
            return str(jwt)

        config = ClientConfig(**machine, grant_types=(JWT_BEARER_GRANT_TYPE,))
        return OAuthClientAuth(
            config, server_url=server_url, grant="jwt_bearer", assertion_provider=workload_jwt
        )
    if scenario == "auth/enterprise-managed-authorization":
        provider = IdJagAssertionProvider(
            token_endpoint=context["idp_token_endpoint"],
            client_id=context["idp_client_id"],
            id_token=context["idp_id_token"],
        )
        config = ClientConfig(
            **machine, client_secret=context["client_secret"], grant_types=(JWT_BEARER_GRANT_TYPE,)
        )
        return OAuthClientAuth(
            config, server_url=server_url, grant="jwt_bearer", assertion_provider=provider
        )
    return OAuthClientAuth(
        ClientConfig(**base), callback=follow_redirect_callback, server_url=server_url
    )


LIST_ONLY = ("auth/client-credentials", "auth/wif-jwt-bearer")


async def accept_with_defaults(
    context: ClientRequestContext, params: ElicitRequestParams
) -> ElicitResult:
    """Elicitation answer: accept, with every default the requested schema declares."""
    schema = getattr(params, "requested_schema", None) or {}
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    content = {
        name: spec["default"]
        for name, spec in properties.items()
        if isinstance(spec, dict) and "default" in spec
    }
    if "confirmed" in properties and "confirmed" not in content:
        content["confirmed"] = True
    return ElicitResult(action="accept", content=content)


async def _call_tools(client: Client, scenario: str, context: dict[str, Any]) -> None:
    tools = await client.list_tools()
    names = [tool.name for tool in tools.tools]
    if scenario.startswith(LIST_ONLY) or scenario == "json-schema-ref-no-deref":
        return
    if scenario.startswith("auth/") or scenario in ("tools_call", "initialize"):
        if names:
            # tools_call checks add_numbers(2, 3); auth mocks accept any arguments.
            await client.call_tool(names[0], {"a": 2, "b": 3})
        return
    if scenario == "json-schema-2020-12-preservation":
        # Round-trip the advertised schema untouched (SEP-1613): the server diffs it.
        focal = next(tool for tool in tools.tools if tool.name == "json_schema_2020_12_tool")
        await client.call_tool("json_schema_echo", {"schema": focal.input_schema})
        return
    planned = context.get("toolCalls")
    calls: list[tuple[str, dict[str, Any]]] = (
        [(call["name"], call.get("arguments") or {}) for call in planned]
        if isinstance(planned, list)  # the scenario says exactly what to call
        else [(name, {}) for name in names]  # otherwise exercise every tool offered
    )
    for name, arguments in calls:
        # Protocol scenarios judge what the client sent; a tool result the SDK cannot
        # parse is reported and the next call still made.
        try:
            await client.call_tool(name, arguments)
        except Exception as exc:  # keep exercising the remaining tools
            print(f"tool {name}: {type(exc).__name__}: {exc}", file=sys.stderr)


async def run(server_url: str, scenario: str, context: dict[str, Any], version: str | None) -> None:
    """Connect to the MCP server, list tools and call them, authorizing as needed."""
    auth = _auth_for(scenario, context, server_url)
    mode = version if version in MODERN_PROTOCOL_VERSIONS else "legacy"
    if scenario == "request-metadata":
        mode = "auto"  # the scenario rejects the first version: let the SDK negotiate
    async with open_mcp_client(
        server_url, auth, mode=mode, elicitation_callback=accept_with_defaults
    ) as client:
        await _call_tools(client, scenario, context)


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
