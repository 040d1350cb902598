"""ostiary: OAuth 2.1 in front of MCP servers (MCP authorization, revision 2026-07-28)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
