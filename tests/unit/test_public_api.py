"""The public surface of ``ostiary``, ``ostiary.resource`` and ``ostiary.client`` (STYLE §B).

Each package's ``__all__`` is spelled out here, sorted: adding, renaming or removing a public
name needs a deliberate edit of this file, and so a line in the changelog. Every listed name
must resolve, and nothing else public may leak from the package namespace (a helper imported
into ``__init__`` without a leading underscore would become API by accident); submodules and
``from __future__`` features are not exports.
"""

from __future__ import annotations
import __future__

import importlib
import types

import pytest

PUBLIC_API: dict[str, list[str]] = {
    "ostiary": ["__version__"],
    "ostiary.resource": [
        "BearerAuthMiddleware",
        "BearerChallenge",
        "DPoPOptions",
        "IdentityHeaders",
        "IdentityHeadersMiddleware",
        "IntrospectionVerifier",
        "JWTVerifier",
        "McpPublicAccess",
        "McpToolScopeGuard",
        "OriginGuardMiddleware",
        "Principal",
        "ProtectionPolicy",
        "ResourcePolicy",
        "ScopePolicy",
        "TokenVerifier",
        "ToolPolicy",
        "build_bearer_challenge",
        "build_protected_resource_metadata",
        "challenge_for_error",
        "current_principal",
        "mcp_cors",
        "parse_bearer_challenge",
        "parse_www_authenticate",
        "protected_resource_metadata_routes",
        "protected_resource_metadata_url",
        "require_principal",
    ],
    "ostiary.client": [
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
    ],
}

PACKAGES = sorted(PUBLIC_API)


def test_the_expected_lists_are_sorted() -> None:
    assert all(names == sorted(names) for names in PUBLIC_API.values())


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_exactly_the_public_api(package: str) -> None:
    module = importlib.import_module(package)
    assert list(module.__all__) == PUBLIC_API[package]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_listed_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert missing == []


@pytest.mark.parametrize("package", PACKAGES)
def test_nothing_else_public_leaks(package: str) -> None:
    module = importlib.import_module(package)
    leaked = [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and name not in module.__all__
        and not isinstance(value, types.ModuleType)  # a submodule, imported or not
        and not isinstance(value, __future__._Feature)  # from __future__ import annotations
    ]
    assert leaked == []


def test_the_resource_package_does_not_load_the_mcp_sdk_server() -> None:
    """Protecting a plain ASGI app must not import the SDK's server (its docstring says so)."""
    import subprocess
    import sys

    code = (
        "import sys, ostiary.resource; "
        "print('mcp.server.mcpserver' in sys.modules or 'fastmcp' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
