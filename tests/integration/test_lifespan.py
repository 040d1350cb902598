"""The app lifespan: migrations and the first key on start, expired records purged while up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from ostiary.core.models import Interaction
from ostiary.server.app import create_authorization_server
from ostiary.settings import Settings
from ostiary.storage import open_storage


async def test_lifespan_creates_a_key_and_purges_expired_records(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory(storage={"url": f"sqlite:///{tmp_path}/as.db"})
    seed = open_storage(settings)
    await seed.initialize()
    tenant = settings.storage.tenant
    await seed.save_interaction(Interaction(tenant, "stale", {}, expires_at=1))
    await seed.save_interaction(Interaction(tenant, "live", {}, expires_at=4_000_000_000))
    await seed.close()

    app = create_authorization_server(settings)
    ctx = app.state.ctx
    async with app.router.lifespan_context(app):
        for _ in range(50):
            stats_gone = await ctx.storage.get_interaction(tenant, "stale", 0) is None
            if stats_gone:
                break
            await asyncio.sleep(0.05)
        assert await ctx.storage.get_interaction(tenant, "stale", 0) is None
        assert await ctx.storage.get_interaction(tenant, "live", 0) is not None
        keys = await ctx.storage.list_signing_keys(tenant)
        assert [k.alg for k in keys] == ["ES256"]
