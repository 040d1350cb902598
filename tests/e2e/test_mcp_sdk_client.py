"""The official ``mcp`` Python SDK client against a running ``ostiary serve`` (issue 3, Must show).

Nothing here was written by us on the client side: the SDK's ``OAuthClientProvider`` gets the
401 from the demo MCP server, reads ``resource_metadata``, fetches the PRM and the AS
metadata, registers by DCR, sends the user through the real login and consent pages (submitted
headlessly by its redirect handler), exchanges the code, calls the tools, and steps up to the
union of scopes on the 403 ``insufficient_scope`` of ``create_secure_note``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.shared.auth import OAuthClientInformationFull
from mcp.types import TextResourceContents

from tests.demo._support import (
    PASSWORD,
    REDIRECT_URI,
    USERNAME,
    FormLogin,
    MemoryTokenStorage,
    sdk_provider,
    sdk_session,
)
from tests.e2e.server import RunningServer, running_server

pytestmark = pytest.mark.e2e

ALL_SCOPES = "mcp:read mcp:write offline_access"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path / "srv") as running:
        yield running


def add_user(server: RunningServer, username: str = USERNAME) -> str:
    out = server.cli("users", "add", username, "--password", PASSWORD)
    match = re.search(r"subject (\S+)\)", out)
    assert match is not None, out
    return match.group(1)


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    data: dict[str, Any] = result.structured_content
    return data


async def test_sdk_client_discovers_registers_logs_in_and_calls_tools(
    server: RunningServer,
) -> None:
    subject = add_user(server)
    resource = f"{server.issuer}/mcp"
    storage, login = MemoryTokenStorage(), FormLogin()
    async with sdk_session(resource, auth=sdk_provider(resource, storage, login)) as session:
        # Challenge at connect: initialize got the 401, so the client logged in right away.
        assert len(login.authorize_urls) == 1
        listing = await session.list_tools()
        info = structured(await session.call_tool("get_user_info", {}))
        notes = structured(await session.call_tool("list_secure_notes", {}))
        profile = await session.read_resource("user://profile")
        usage = structured(await session.call_tool("get_api_usage", {}))
    assert storage.client is not None  # registered by DCR, from the AS found through the PRM
    client_id = storage.client.client_id
    assert [t.name for t in listing.tools] == [
        "echo",
        "get_time",
        "public_search",
        "get_user_info",
        "create_secure_note",
        "list_secure_notes",
        "get_api_usage",
    ]
    # The scope of our 401 challenge, plus offline_access (the AS advertises it).
    assert login.requested_scopes() == ["mcp:read offline_access"]
    assert info == {
        "sub": subject,
        "username": USERNAME,
        "client_id": client_id,
        "scopes": ["mcp:read"],
    }
    assert notes == {"count": 0, "notes": []}
    text = profile.contents[0]
    assert isinstance(text, TextResourceContents)
    document = json.loads(text.text)
    assert document == {
        "sub": subject,
        "username": USERNAME,
        "created_at": document["created_at"],
        "client_id": client_id,
        "scopes": ["mcp:read"],
        "notes": 0,
    }
    assert len(login.authorize_urls) == 1
    assert usage == {
        "sub": subject,
        "total_calls": 3,
        "calls": {"get_user_info": 1, "list_secure_notes": 1, "get_api_usage": 1},
    }


async def _register(issuer: str, scope: str) -> OAuthClientInformationFull:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{issuer}/register",
            json={
                "client_name": "mcp-sdk-e2e",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
                "scope": scope,
            },
        )
    assert response.status_code == 201, response.text
    return OAuthClientInformationFull.model_validate(response.json())


async def test_sdk_client_steps_up_to_the_scope_union_on_403(server: RunningServer) -> None:
    """create_secure_note needs mcp:write: 403 insufficient_scope, re-authorize, retry."""
    subject = add_user(server)
    resource = f"{server.issuer}/mcp"
    storage, login = MemoryTokenStorage(), FormLogin()
    storage.client = await _register(server.issuer, ALL_SCOPES)
    async with sdk_session(resource, auth=sdk_provider(resource, storage, login)) as session:
        info = structured(await session.call_tool("get_user_info", {}))
        note = structured(
            await session.call_tool("create_secure_note", {"content": "hello", "title": "First"})
        )
        notes = structured(await session.call_tool("list_secure_notes", {}))
        read = await session.read_resource(note["uri"])
        usage = structured(await session.call_tool("get_api_usage", {}))
    assert info["scopes"] == ["mcp:read"]  # offline_access is not an access-token scope
    # First token from the 401's scope, then the union after the 403 (SEP-2350).
    assert login.requested_scopes() == [
        "mcp:read offline_access",
        "mcp:read offline_access mcp:write",
    ]
    assert storage.scopes_seen == login.requested_scopes()
    assert re.fullmatch(r"note_[0-9a-f]{16}", note["note_id"])
    assert (note["title"], note["content"]) == ("First", "hello")
    assert notes == {
        "count": 1,
        "notes": [
            {
                "note_id": note["note_id"],
                "title": "First",
                "created_at": note["created_at"],
                "uri": f"user://notes/{note['note_id']}",
                "preview": "hello",
            }
        ],
    }
    contents = read.contents[0]
    assert isinstance(contents, TextResourceContents)
    assert json.loads(contents.text) == note
    # The 403 happened in front of the SDK: create_secure_note counts once.
    assert usage == {
        "sub": subject,
        "total_calls": 4,
        "calls": {
            "get_user_info": 1,
            "create_secure_note": 1,
            "list_secure_notes": 1,
            "get_api_usage": 1,
        },
    }


async def test_sdk_client_registered_by_dcr_can_step_up(server: RunningServer) -> None:
    add_user(server)
    resource = f"{server.issuer}/mcp"
    storage, login = MemoryTokenStorage(), FormLogin()
    async with sdk_session(resource, auth=sdk_provider(resource, storage, login)) as session:
        await session.call_tool("get_user_info", {})
        note = structured(await session.call_tool("create_secure_note", {"content": "x"}))
    assert note["content"] == "x"


async def test_in_mixed_auth_public_tools_work_without_any_login(tmp_path: Path) -> None:
    with running_server(tmp_path / "srv", OSTIARY_DEMO__MIXED_AUTH="true") as server:
        add_user(server)
        resource = f"{server.issuer}/mcp"
        async with sdk_session(resource) as session:
            echoed = await session.call_tool("echo", {"text": "hi"})
            found = structured(await session.call_tool("public_search", {"query": "pkce"}))
            clock = structured(await session.call_tool("get_time", {}))
        storage, login = MemoryTokenStorage(), FormLogin()
        provider = sdk_provider(resource, storage, login)
        async with sdk_session(resource, auth=provider) as session:
            listing = await session.list_tools()  # public listing: no login yet
            logged_out = len(login.authorize_urls)
            info = structured(await session.call_tool("get_user_info", {}))  # 401: logs in
    assert logged_out == 0
    assert len(login.authorize_urls) == 1
    assert info["username"] == USERNAME
    schemes = {t.name: (t.meta or {})["securitySchemes"] for t in listing.tools}
    assert schemes["echo"] == [{"type": "noauth"}, {"type": "oauth2", "scopes": ["mcp:read"]}]
    assert schemes["get_user_info"] == [{"type": "oauth2", "scopes": ["mcp:read"]}]
    assert echoed.structured_content == {"result": "hi"}
    assert found == {
        "query": "pkce",
        "results": [
            {
                "title": "PKCE",
                "summary": "Proof Key for Code Exchange, RFC 7636: binds a code to the client "
                "that asked.",
            }
        ],
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", clock["utc"])


async def test_notes_are_per_user(server: RunningServer) -> None:
    add_user(server, "alice")
    add_user(server, "bob")
    resource = f"{server.issuer}/mcp"
    sessions: dict[str, list[Any]] = {}
    for username in ("alice", "bob"):
        storage = MemoryTokenStorage()
        storage.client = await _register(server.issuer, ALL_SCOPES)
        provider = sdk_provider(resource, storage, FormLogin(username=username))
        async with sdk_session(resource, auth=provider) as session:
            await session.call_tool("get_user_info", {})  # 401: signs in with mcp:read
            # 403: steps up (the SDK re-authorizes once per request, so not on the first call)
            await session.call_tool("create_secure_note", {"content": f"{username}'s secret"})
            listed = structured(await session.call_tool("list_secure_notes", {}))
            sessions[username] = listed["notes"]
    assert [n["preview"] for n in sessions["alice"]] == ["alice's secret"]
    assert [n["preview"] for n in sessions["bob"]] == ["bob's secret"]
