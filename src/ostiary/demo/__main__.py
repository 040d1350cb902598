"""Run the demo MCP server over stdio: ``python -m ostiary.demo [--storage URL] [--subject S]``.

MCP authorization does not apply to stdio ("SHOULD NOT"; credentials come from the
environment): the caller acts as ``--subject`` (or ``OSTIARY_DEMO_SUBJECT``, default
``local``). Notes and counters go to ``--storage`` (or ``OSTIARY_STORAGE__URL``; default
``memory://``): name the same SQLite file as ``ostiary serve`` to share them. Logs go to
stderr; stdout carries only MCP messages.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from ostiary.core.context import system_clock
from ostiary.core.storage import Storage
from ostiary.demo.server import build_demo_server
from ostiary.storage.memory import MemoryStorage
from ostiary.storage.sql import SqlStorage


def _storage(url: str) -> Storage:
    return MemoryStorage() if url == "memory://" else SqlStorage(url)


async def _main(storage_url: str, subject: str, tenant: str) -> None:
    storage = _storage(storage_url)
    await storage.initialize()
    try:
        server = build_demo_server(storage, tenant, clock=system_clock, local_subject=subject)
        await server.run_stdio_async()
    finally:
        await storage.close()


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m ostiary.demo", description=__doc__)
    parser.add_argument("--storage", default=os.environ.get("OSTIARY_STORAGE__URL", "memory://"))
    parser.add_argument("--subject", default=os.environ.get("OSTIARY_DEMO_SUBJECT", "local"))
    parser.add_argument("--tenant", default=os.environ.get("OSTIARY_STORAGE__TENANT", "default"))
    args = parser.parse_args()
    asyncio.run(_main(args.storage, args.subject, args.tenant))


if __name__ == "__main__":
    main()
