"""Tests for the MCP OAuth client."""
