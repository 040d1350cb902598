"""Reading HTTP requests safely: bounded bodies, strict content types, client addresses.

OAuth endpoints take ``application/x-www-form-urlencoded`` bodies (RFC 6749 §3.2); duplicate
parameters are refused by :class:`ostiary.core.requests.Params`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request

from ostiary import jsonbody
from ostiary.core.context import ServerContext
from ostiary.core.requests import Params
from ostiary.errors import InvalidRequestError, SlowDownError
from ostiary.resource.concurrency import client_address as address_of

FORM_TYPE = "application/x-www-form-urlencoded"


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes (413) without buffering it all.

    A client that goes away mid-body is an :class:`InvalidRequestError` (logged at INFO),
    not an unexpected error (logged at ERROR with a traceback for anyone to provoke).
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise InvalidRequestError("request body is too large", status_code=413)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise InvalidRequestError("request body is too large", status_code=413)
            chunks.append(chunk)
    except ClientDisconnect:
        # Not an error of ours: logged at INFO by the endpoint (no traceback); the 400 goes
        # nowhere, since no one is listening.
        raise InvalidRequestError(
            "the client disconnected before the request body was complete",
            detail="client disconnected mid-body",
        ) from None
    return b"".join(chunks)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_form(request: Request, limit: int) -> Params:
    """Parse a urlencoded form body into Params (duplicates refused)."""
    if _media_type(request) != FORM_TYPE:
        raise InvalidRequestError(f"content type must be {FORM_TYPE}")
    body = await read_body(request, limit)
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequestError("request body is not a valid urlencoded form") from None
    return Params.parse(pairs)


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """Parse a JSON object body (RFC 7591 §3.1) with the one bounded reader.

    NUL is refused too: no metadata value needs it, and PostgreSQL text cannot hold it.
    """
    if _media_type(request) != "application/json":
        raise InvalidRequestError("content type must be application/json")
    return jsonbody.loads_object(await read_body(request, limit), allow_nul=False)


def query_params(request: Request) -> Params:
    return Params.parse(parse_qsl(request.url.query, keep_blank_values=True))


def client_address(request: Request, trust_forwarded: bool) -> str:
    return address_of(request.scope, trust_forwarded)


async def rate_limit(ctx: ServerContext, request: Request, bucket: str) -> None:
    """Count a request per address and bucket; 429 past the configured per-minute limit."""
    address = client_address(request, ctx.settings.server.trust_forwarded_for)
    counters = ctx.request_counters or ctx.storage  # security.rate_limit_scope
    count = await counters.hit(ctx.tenant, f"{bucket}:{address}", 60, ctx.clock())
    if count > ctx.settings.security.rate_limit_per_minute:
        ctx.audit("rate_limit.exceeded", bucket=bucket, address=address)
        raise SlowDownError(retry_after_seconds=60)
