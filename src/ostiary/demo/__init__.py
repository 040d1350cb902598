"""The demo MCP server (echo, time, search, user info, secure notes, API usage) and its app.

``create_demo_app`` protects it with ostiary's resource-server toolkit; ``python -m
ostiary.demo`` runs it over stdio (no OAuth there: MCP says stdio takes its credentials from
the environment, here ``OSTIARY_DEMO_SUBJECT``).
"""

from __future__ import annotations

from ostiary.demo.app import STREAMABLE_HTTP_OPTIONS, create_demo_app
from ostiary.demo.server import ANONYMOUS, PUBLIC_TOOLS, Caller, DemoScopes, build_demo_server

__all__ = [
    "ANONYMOUS",
    "PUBLIC_TOOLS",
    "STREAMABLE_HTTP_OPTIONS",
    "Caller",
    "DemoScopes",
    "build_demo_server",
    "create_demo_app",
]
