"""Run the demo MCP server over stdio: ``python -m ostiary.demo``.

MCP authorization does not apply to stdio ("SHOULD NOT"; credentials come from the
environment): the caller acts as ``OSTIARY_DEMO_SUBJECT`` (default ``local``). Storage is the
one the ``OSTIARY_`` settings name (``OSTIARY_STORAGE__URL``), so notes are the same as over
HTTP. Logs go to stderr; stdout carries only MCP messages.
"""

from __future__ import annotations

import asyncio
import os

from ostiary.core.context import system_clock
from ostiary.demo.server import build_demo_server
from ostiary.settings import load_settings
from ostiary.storage import open_storage


async def _main() -> None:
    settings = load_settings()
    storage = open_storage(settings)
    await storage.initialize()
    try:
        server = build_demo_server(
            storage,
            settings.storage.tenant,
            clock=system_clock,
            local_subject=os.environ.get("OSTIARY_DEMO_SUBJECT", "local"),
        )
        await server.run_stdio_async()
    finally:
        await storage.close()


def main() -> None:
    """Entry point."""
    asyncio.run(_main())


if __name__ == "__main__":
    main()
