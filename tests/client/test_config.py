"""The mcp_config.json servers file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ostiary.client.config import ServersFileError, load_servers_file


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "mcp_config.json"
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


def test_guide_shaped_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "servers": [
                {
                    "name": "oauth-protected",
                    "transport": "http",
                    "url": "http://localhost:8000/mcp",
                    "auth": {
                        "type": "oauth",
                        "authorization_url": "http://localhost:9000/oauth/authorize",
                        "token_url": "http://localhost:9000/oauth/token",
                        "client_id": "mcp-test-client",
                        "client_secret": "mcp-test-secret",
                        "scope": "mcp:read mcp:write",
                        "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
                    },
                },
                {"name": "local", "transport": "stdio", "command": ["python", "server.py"]},
            ]
        },
    )
    servers = load_servers_file(path)
    entry = servers.find("oauth-protected")
    assert entry is not None
    config = entry.client_config()
    assert (config.client_id, config.client_secret, config.scope) == (
        "mcp-test-client",
        "mcp-test-secret",
        "mcp:read mcp:write",
    )
    assert config.redirect_uris == ("urn:ietf:wg:oauth:2.0:oob",)
    assert servers.find("missing") is None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            "{not json",
            "not valid JSON (Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1))",
        ),
        (
            {"servers": [{"name": "a", "transport": "http"}]},
            "servers[0]: a http server needs a 'url'",
        ),
        (
            {"servers": [{"name": "a", "url": "ftp://x/y"}]},
            "servers[0].url: must be an http(s) URL",
        ),
        (
            {"servers": [{"name": "a", "transport": "stdio"}]},
            "servers[0]: a stdio server needs a non-empty 'command' list",
        ),
        (
            {"servers": [{"name": "a", "url": "http://h/mcp", "auth": {"type": "basic"}}]},
            "servers[0].auth.type: Input should be 'oauth'",
        ),
        (
            {"servers": [{"name": "a", "url": "http://h/mcp", "extra": 1}]},
            "servers[0].extra: Extra inputs are not permitted",
        ),
        (
            {"servers": [{"name": "a", "url": "http://h/1"}, {"name": "a", "url": "http://h/2"}]},
            "file: server name 'a' is used twice",
        ),
        (
            {"servers": [{"name": "a", "url": "http://h/mcp", "auth": {"client_secret": "s"}}]},
            "servers[0]: auth.client_secret is set but auth.client_id is not",
        ),
        (
            {
                "servers": [
                    {
                        "name": "a",
                        "url": "http://h/mcp",
                        "auth": {"client_metadata_url": "http://c/x"},
                    }
                ]
            },
            "servers[0].auth.client_metadata_url: must be an https URL with a path",
        ),
    ],
)
def test_bad_files_name_the_problem_and_where(
    tmp_path: Path, document: object, message: str
) -> None:
    path = write(tmp_path, document)
    with pytest.raises(ServersFileError) as caught:
        load_servers_file(path)
    assert str(caught.value) == f"{path}: {message}"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ServersFileError) as caught:
        load_servers_file(tmp_path / "nope.json")
    assert str(caught.value) == f"{tmp_path / 'nope.json'}: no such file"
