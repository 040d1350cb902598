"""The MCP servers file, ``mcp_config.json`` (the shape the MCP-client guide uses; RFC 8259 JSON).

Example::

    {
      "servers": [
        {"name": "notes", "transport": "http", "url": "https://mcp.example.com/mcp",
         "auth": {"type": "oauth", "client_id": "my-app", "scope": "mcp:read",
                  "redirect_uri": "http://127.0.0.1/callback"}},
        {"name": "local", "transport": "stdio", "command": ["python", "server.py"]}
      ]
    }

The guide's ``authorization_url`` and ``token_url`` are accepted but only used as hints:
endpoints come from discovery, as the MCP spec requires. Every problem is reported with
its location (``servers[1].url: ...``) through :class:`ServersFileError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ostiary.client.registration import ClientConfig
from ostiary.errors import ClientError

__all__ = ["AuthBlock", "ServerEntry", "ServersFile", "ServersFileError", "load_servers_file"]


class ServersFileError(ClientError):
    """The servers file is missing, not JSON, or does not have the expected shape."""


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    return value


class AuthBlock(BaseModel):
    """The optional ``auth`` block of a server entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["oauth"] = "oauth"
    client_id: str | None = None
    client_secret: str | None = None
    client_metadata_url: str | None = None
    scope: str | None = None
    redirect_uri: str | None = None
    authorization_url: str | None = None
    token_url: str | None = None
    issuer: str | None = None

    @field_validator("client_metadata_url")
    @classmethod
    def _cimd_is_https(cls, value: str | None) -> str | None:
        parts = urlsplit(value or "")
        if value is not None and (parts.scheme != "https" or parts.path in ("", "/")):
            raise ValueError("must be an https URL with a path")
        return value


class ServerEntry(BaseModel):
    """One configured MCP server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    transport: Literal["http", "streamable-http", "streamable_http", "stdio"] = "http"
    url: str | None = None
    command: list[str] | None = None
    auth: AuthBlock | None = None

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str | None) -> str | None:
        return _http_url(value) if value is not None else None

    @model_validator(mode="after")
    def _transport_fields(self) -> ServerEntry:
        if self.transport == "stdio":
            if not self.command:
                raise ValueError("a stdio server needs a non-empty 'command' list")
        elif self.url is None:
            raise ValueError(f"a {self.transport} server needs a 'url'")
        if self.auth and self.auth.client_secret and not self.auth.client_id:
            raise ValueError("auth.client_secret is set but auth.client_id is not")
        return self

    def client_config(self, redirect_uri: str | None = None) -> ClientConfig:
        """The :class:`ClientConfig` for this server's OAuth client."""
        auth = self.auth or AuthBlock()
        redirect = redirect_uri or auth.redirect_uri or "http://127.0.0.1/callback"
        return ClientConfig(
            client_name="ostiary",
            redirect_uris=(redirect,),
            client_id=auth.client_id,
            client_secret=auth.client_secret,
            client_metadata_url=auth.client_metadata_url,
            pre_registered_issuer=auth.issuer,
            scope=auth.scope,
        )


class ServersFile(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    servers: list[ServerEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> ServersFile:
        seen: set[str] = set()
        for entry in self.servers:
            if entry.name in seen:
                raise ValueError(f"server name {entry.name!r} is used twice")
            seen.add(entry.name)
        return self

    def find(self, name: str) -> ServerEntry | None:
        """The entry called ``name``, if any."""
        return next((entry for entry in self.servers if entry.name == name), None)


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-after", "function-before")):
            continue
        else:
            out += f".{part}" if out else part
    return out or "file"


def load_servers_file(path: str | Path) -> ServersFile:
    """Read and validate a servers file.

    Raises:
        ServersFileError: With ``<path>: <location>: <problem>`` for the first problem.
    """
    file = Path(path)
    try:
        raw = json.loads(file.read_text("utf-8"))
    except FileNotFoundError:
        raise ServersFileError(f"{file}: no such file") from None
    except OSError as exc:
        raise ServersFileError(f"{file}: cannot be read ({exc.strerror})") from None
    except ValueError as exc:
        raise ServersFileError(f"{file}: not valid JSON ({exc})") from None
    try:
        return ServersFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = err["msg"].removeprefix("Value error, ")
        raise ServersFileError(f"{file}: {_location(err['loc'])}: {message}") from None
