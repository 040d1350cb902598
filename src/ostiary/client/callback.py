"""Receiving the authorization response in a native app (RFC 8252 §7.3 loopback redirect).

Two :data:`~ostiary.client.authorization.AuthorizationCallback` implementations:

* :class:`LoopbackCallback` listens on ``http://127.0.0.1:<free port>/callback``, opens the
  system browser on the authorization URL and waits for the redirect.
* :class:`PasteCallback` prints the URL and reads the redirect URL (or the bare code) the
  user pastes, for machines without a browser or a usable loopback interface.

Both give up after a timeout with a clear :class:`~ostiary.errors.AuthorizationFlowError`.
URLs are opened with :mod:`webbrowser` (no shell) and only when they are ``http(s)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import webbrowser
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.to_thread

from ostiary.client.authorization import CallbackResult, callback_result_from_url
from ostiary.errors import AuthorizationFlowError

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "LoopbackCallback", "PasteCallback", "open_in_browser"]

DEFAULT_TIMEOUT_SECONDS = 300.0
MAX_REQUEST_BYTES = 16384
_DONE_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>ostiary</title>"
    b"<p>Authorization received. You can close this window and return to the terminal.</p>"
)


def open_in_browser(url: str) -> bool:
    """Open ``url`` in the system browser; refuse anything but http(s) (MCP security BCP)."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise AuthorizationFlowError(f"refusing to open a non-http(s) URL: {url!r}")
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


class LoopbackCallback:
    """Receive the redirect on a loopback listener (RFC 8252 §7.3).

    Use as an async context manager; :attr:`redirect_uri` is known once entered.

    Args:
        host: Loopback address to bind (``127.0.0.1``; RFC 8252 §8.3 prefers the IP).
        port: ``0`` picks a free port.
        path: The redirect path.
        timeout_seconds: How long to wait for the browser.
        opener: Opens the URL; returns False when no browser could be started.
        announce: Told the URL before waiting (the CLI prints it as a fallback).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/callback",
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        opener: Callable[[str], bool] = open_in_browser,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.path = path
        self.timeout_seconds = timeout_seconds
        self.opener = opener
        self.announce = announce
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[CallbackResult] | None = None

    @property
    def redirect_uri(self) -> str:
        """``http://127.0.0.1:<port>/callback`` (only valid once started)."""
        if self._server is None:
            raise RuntimeError("LoopbackCallback is not started")
        return f"http://{self.host}:{self.port}{self.path}"

    async def __aenter__(self) -> LoopbackCallback:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        request_line = head[:MAX_REQUEST_BYTES].split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        target = parts[1] if len(parts) == 3 else ""
        split = urlsplit(target)
        if parts[0] != "GET" or split.path != self.path:
            writer.write(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        else:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                b"Cache-Control: no-store\r\nConnection: close\r\n"
                + f"Content-Length: {len(_DONE_PAGE)}\r\n\r\n".encode()
                + _DONE_PAGE
            )
            if self._result is not None and not self._result.done():
                self._result.set_result(callback_result_from_url(target))
        with contextlib.suppress(Exception):
            await writer.drain()
        writer.close()

    async def __call__(self, authorization_url: str) -> CallbackResult:
        """Open the browser on ``authorization_url`` and wait for the redirect."""
        if self._server is None:
            raise RuntimeError("LoopbackCallback is not started")
        self._result = asyncio.get_running_loop().create_future()
        if self.announce is not None:
            self.announce(authorization_url)
        self.opener(authorization_url)
        try:
            return await asyncio.wait_for(self._result, timeout=self.timeout_seconds)
        except TimeoutError:
            raise AuthorizationFlowError(
                f"no authorization response within {int(self.timeout_seconds)} s; "
                "run the command again to retry"
            ) from None


class PasteCallback:
    """Print the authorization URL and read the redirect URL (or code) the user pastes.

    Args:
        timeout_seconds: How long to wait for input.
        read_line: Reads one line (blocking; run in a worker thread).
        write: Prints the instructions.
    """

    def __init__(
        self,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        read_line: Callable[[], str] | None = None,
        write: Callable[[str], object] = print,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.read_line = read_line or (lambda: sys.stdin.readline())
        self.write = write

    async def __call__(self, authorization_url: str) -> CallbackResult:
        """Show the URL; parse what the user pastes back."""
        self.write(f"Open this URL in a browser and approve access:\n\n  {authorization_url}\n")
        self.write("Then paste the full URL you were redirected to (or the code):")
        with anyio.move_on_after(self.timeout_seconds) as scope:
            line = await anyio.to_thread.run_sync(self.read_line, abandon_on_cancel=True)
        if scope.cancelled_caught:
            raise AuthorizationFlowError(
                f"no authorization code pasted within {int(self.timeout_seconds)} s"
            )
        return parse_pasted(line, authorization_url)


def parse_pasted(text: str, authorization_url: str) -> CallbackResult:
    """Read a pasted redirect URL, query string or bare code.

    A bare code carries no ``state``; the one from the authorization URL is assumed (the
    user copied it from the page they just approved). It carries no ``iss`` either, so an
    AS that advertises RFC 9207 needs the full redirect URL.

    Raises:
        AuthorizationFlowError: Nothing was pasted.
    """
    value = text.strip()
    if not value:
        raise AuthorizationFlowError("nothing was pasted")
    if "code=" in value or "error=" in value:
        return callback_result_from_url(value)
    sent = parse_qs(urlsplit(authorization_url).query)
    state = sent.get("state", [None])[0]
    return CallbackResult(code=value, state=state, iss=None, full_query={"code": value})
