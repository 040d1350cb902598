"""Rendering results and errors per surface (RFC 6749 §5.1-§5.2; OAuth 2.1 §3.2.3-§3.2.4).

JSON endpoints always send ``Cache-Control: no-store``. Anything that is not an OAuthError is
logged with its traceback and answered with a generic ``server_error``: no stack trace ever
reaches a client.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ostiary.errors import OAuthError, ServerError, StorageError, TemporarilyUnavailableError

log = logging.getLogger("ostiary.server")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status_code,
        media_type="application/json",
        headers={**NO_STORE, **(headers or {})},
    )


def error_response(error: OAuthError) -> Response:
    return json_response(error.to_dict(), error.status_code, error.headers())


def unexpected(exc: Exception, where: str) -> OAuthError:
    """Map an unexpected exception to a safe wire error, logging the real cause."""
    if isinstance(exc, StorageError):
        log.error("%s: storage failure: %s", where, exc)
        return TemporarilyUnavailableError(detail=str(exc))
    log.exception("%s: unexpected error", where)
    return ServerError()


Endpoint = Callable[[Request], Awaitable[Response]]


def json_endpoint(name: str) -> Callable[[Endpoint], Endpoint]:
    """Wrap a JSON endpoint: OAuthErrors render per RFC 6749 §5.2, anything else as 500."""

    def wrap(fn: Endpoint) -> Endpoint:
        @functools.wraps(fn)
        async def run(request: Request) -> Response:
            try:
                return await fn(request)
            except OAuthError as exc:
                if exc.detail:
                    log.info("%s.error %s: %s", name, exc.error, exc.detail)
                return error_response(exc)
            except Exception as exc:
                return error_response(unexpected(exc, name))

        return run

    return wrap
