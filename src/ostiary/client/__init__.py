"""The MCP OAuth client (MCP authorization, revision 2026-07-28): public API.

Use :class:`OAuthClientAuth` as the ``auth`` of an ``httpx.AsyncClient`` (or, through
:meth:`OAuthClientAuth.for_httpx2`, of the ``mcp`` SDK's ``httpx2`` client; see
:func:`open_mcp_client`). Pick a callback for the interactive step
(:class:`LoopbackCallback`, :class:`PasteCallback` or your own) and a
:class:`TokenStore` (:class:`FileTokenStore` keeps tokens across runs).
"""

from __future__ import annotations

from ostiary.client.auth import OAuthClientAuth, OAuthClientAuthHttpx2
from ostiary.client.authorization import (
    AuthorizationCallback,
    CallbackResult,
    callback_result_from_url,
)
from ostiary.client.callback import LoopbackCallback, PasteCallback
from ostiary.client.config import ServerEntry, ServersFile, ServersFileError, load_servers_file
from ostiary.client.enterprise import IdJagAssertionProvider
from ostiary.client.flow import AssertionProvider, OAuthFlow, ServerContext
from ostiary.client.registration import ClientConfig, ClientRegistration
from ostiary.client.session import open_mcp_client
from ostiary.client.token_store import FileTokenStore, MemoryTokenStore, StoredGrant, TokenStore
from ostiary.client.tokens import TokenSet

__all__ = [
    "AssertionProvider",
    "AuthorizationCallback",
    "CallbackResult",
    "ClientConfig",
    "ClientRegistration",
    "FileTokenStore",
    "IdJagAssertionProvider",
    "LoopbackCallback",
    "MemoryTokenStore",
    "OAuthClientAuth",
    "OAuthClientAuthHttpx2",
    "OAuthFlow",
    "PasteCallback",
    "ServerContext",
    "ServerEntry",
    "ServersFile",
    "ServersFileError",
    "StoredGrant",
    "TokenSet",
    "TokenStore",
    "callback_result_from_url",
    "load_servers_file",
    "open_mcp_client",
]
