"""Put OAuth in front of an MCP server that has none, from Python (what ``ostiary gateway`` does).

    OSTIARY_DEV__ENABLED=true python examples/demo_gateway.py http://127.0.0.1:9000/mcp
    OSTIARY_DEV__ENABLED=true python examples/demo_gateway.py -- python -m ostiary.demo

The authorization server is embedded (same port, settings from ``OSTIARY_…``); the gateway
serves MCP at ``{issuer}/mcp``. An HTTP upstream gets the verified subject in ``x-user`` and
never the client's token; a stdio upstream gets nothing (stdio takes its credentials from its
environment).
"""

from __future__ import annotations

import sys

import uvicorn

from ostiary.gateway.app import GatewayOptions, create_embedded_gateway
from ostiary.resource.policy import ProtectionPolicy
from ostiary.settings import load_settings

settings = load_settings()
policy = ProtectionPolicy(required_scopes=["mcp:read"], public_tools=["echo"], mixed_auth=True)
options = GatewayOptions(subject_header="x-user")
if len(sys.argv) > 2 and sys.argv[1] == "--":
    app = create_embedded_gateway(settings, command=sys.argv[2:], policy=policy, options=options)
elif len(sys.argv) == 2:
    app = create_embedded_gateway(
        settings, upstream_url=sys.argv[1], policy=policy, options=options
    )
else:
    sys.exit(__doc__)

if __name__ == "__main__":
    uvicorn.run(app, host=settings.server.host, port=settings.server.port)
