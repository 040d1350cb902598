"""Transport-neutral HTTP messages for the sans-IO client flow (RFC 9110 §9, §15).

The OAuth flow is written against these two records so that the same code drives an
``httpx`` client, an ``httpx2`` client (the official ``mcp`` SDK) or a test harness.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

__all__ = ["HttpRequest", "HttpResponse"]

FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class HttpRequest:
    """A request the flow wants sent."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def get_json(cls, url: str) -> HttpRequest:
        """A metadata GET that asks for JSON."""
        return cls("GET", url, {"Accept": "application/json"})

    @classmethod
    def post_form(
        cls, url: str, form: dict[str, str], headers: dict[str, str] | None = None
    ) -> HttpRequest:
        """A form POST (token endpoint, RFC 6749 §3.2)."""
        all_headers = {"Content-Type": FORM, "Accept": "application/json", **(headers or {})}
        return cls("POST", url, all_headers, urlencode(form).encode("ascii"))

    @classmethod
    def post_json(cls, url: str, document: dict[str, Any]) -> HttpRequest:
        """A JSON POST (dynamic registration, RFC 7591 §3.1)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        return cls("POST", url, headers, json.dumps(document).encode("utf-8"))


@dataclass(frozen=True)
class HttpResponse:
    """What came back, read in full."""

    status_code: int
    headers: dict[str, str]
    body: bytes = b""
    www_authenticate: tuple[str, ...] = ()

    def json(self) -> Any:
        """The body decoded as JSON, or ``None`` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def is_json(self) -> bool:
        """True when the content type says JSON (``application/json`` or ``+json``)."""
        ctype = self.headers.get("content-type", "").split(";")[0].strip().lower()
        return ctype == "application/json" or ctype.endswith("+json")
