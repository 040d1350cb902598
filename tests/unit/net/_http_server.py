"""A tiny real HTTP/1.1 server on 127.0.0.1 for fetcher tests (no mocks)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Route:
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    body: bytes = b"{}"
    delay: float = 0.0
    chunks: int = 1
    content_length: bool = True


@dataclass
class Server:
    port: int
    routes: dict[str, Route]
    requests: list[dict[str, str]] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    scheme: str = "http"

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


async def _handle(
    server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    request = {"method": method, "target": target}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            request[name.strip().lower()] = value.strip()
    server.requests.append(request)
    route = server.routes.get(target, Route(status=404, body=b"{}"))
    if route.delay:
        await asyncio.sleep(route.delay)
    headers = dict(route.headers)
    if route.content_length:
        headers["Content-Length"] = str(len(route.body))
    headers["Connection"] = "close"
    status_line = f"HTTP/1.1 {route.status} X\r\n"
    head_out = status_line + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head_out.encode("latin-1"))
    size = max(1, len(route.body) // route.chunks)
    try:
        for start in range(0, len(route.body), size):
            writer.write(route.body[start : start + size])
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


@asynccontextmanager
async def http_server(
    routes: dict[str, Route], *, tls: ssl.SSLContext | None = None
) -> AsyncIterator[Server]:
    state = Server(port=0, routes=routes, scheme="https" if tls else "http")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        state.tasks.add(task)
        try:
            await _handle(state, reader, writer)
        except asyncio.CancelledError:
            writer.close()
            raise
        finally:
            state.tasks.discard(task)

    srv = await asyncio.start_server(handle, host="127.0.0.1", port=0, ssl=tls)
    state.port = srv.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        srv.close()
        for task in list(state.tasks):
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)
        await srv.wait_closed()
