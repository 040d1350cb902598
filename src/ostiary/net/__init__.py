"""Outbound network access behind an SSRF guard (MCP security best practices, SSRF).

The only package that fetches URLs supplied by clients: Client ID Metadata Documents and
``jwks_uri`` key sets. The sans-IO core never imports it.
"""
