"""A server process killed with SIGKILL after a refresh rotation commits, before it answers.

Usage: ``python refresh_kill_worker.py CLIENT_ID REFRESH_TOKEN NOW`` with the settings in
``OSTIARY_*`` environment variables. Builds the real authorization server on that storage
(its clock fixed at NOW), wraps ``refresh_grant`` so that, once the rotation has
returned (committed), the process prints ``<status> <successor hash>`` and kills itself with
SIGKILL, then posts the refresh request to ``/token``. The response is never sent: the
client's view is a lost response, the database's a committed rotation.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx

from ostiary.core.context import ServerContext
from ostiary.core.models import Grant, IssuedTokens, RefreshToken, RotateResult, RotationPlan
from ostiary.server.app import create_authorization_server, startup
from ostiary.settings import Settings
from ostiary.storage import open_storage
from ostiary.storage_key import storage_cipher


async def main(client_id: str, refresh_token: str, now: int) -> None:
    settings = Settings(_env_file=None)
    ctx = ServerContext.build(
        settings, open_storage(settings), cipher=storage_cipher(settings), clock=lambda: now
    )
    refresh = ctx.storage.refresh_grant

    async def refresh_then_die(
        tenant_id: str, token_hash: str, now: int, grace_seconds: int, plan: RotationPlan
    ) -> RotateResult:
        planned: list[IssuedTokens] = []

        def noting(token: RefreshToken, grant: Grant | None) -> IssuedTokens:
            planned.append(plan(token, grant))
            return planned[-1]

        result = await refresh(tenant_id, token_hash, now, grace_seconds, noting)
        successor = planned[-1].refresh_token
        assert successor is not None
        print(result.status.value, successor.token_hash, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        return result  # never reached

    ctx.storage.refresh_grant = refresh_then_die  # type: ignore[method-assign]
    app = create_authorization_server(settings, context=ctx)
    await startup(ctx)
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=settings.issuer
    ) as http:
        response = await http.post("/token", data=form)
    print("answered", response.status_code, flush=True)  # must not happen


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
