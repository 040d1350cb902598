"""An ID-JAG spent on one node is refused on another sharing PostgreSQL (and Redis): its jti
goes to the storage's replay cache, not a process-local one (RFC 7523 §3 item 7)."""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from ostiary.assembly.demo import create_combined_app
from ostiary.settings import Settings
from tests._services import postgres_url, redis_url
from tests.demo._support import USERNAME
from tests.integration._enterprise_idp import EnterpriseIdp
from tests.integration.test_dpop_two_nodes import _node
from tests.integration.test_enterprise_id_jag import (
    ISSUER,
    JWT_BEARER,
    MCP,
    enterprise_settings,
    exchange,
    idp,
    invalid_grant,
    refused,
    register,
)

pytestmark = pytest.mark.postgres

__all__ = ["idp"]  # the fixture, imported for this module's tests


@pytest.fixture(params=["postgres", pytest.param("postgres+redis", marks=pytest.mark.redis)])
async def nodes(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings], idp: EnterpriseIdp
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    storage = {
        "url": postgres_url(),
        "tenant": f"t-{uuid.uuid4().hex}",
        "encryption_key": base64.b64encode(bytes(range(32))).decode(),
    }
    if request.param == "postgres+redis":
        storage["redis_url"] = redis_url()
    settings = enterprise_settings(settings_factory, idp, storage)
    async with contextlib.AsyncExitStack() as stack:
        one = _node(create_combined_app(settings), with_user=True)
        stack.push_async_callback(one.aclose)
        a = await one.__anext__()
        two = _node(create_combined_app(settings), with_user=False)
        stack.push_async_callback(two.aclose)
        b = await two.__anext__()
        yield a, b


async def test_an_id_jag_spent_on_one_node_is_refused_on_the_other(
    nodes: tuple[httpx.AsyncClient, httpx.AsyncClient], idp: EnterpriseIdp
) -> None:
    a, b = nodes
    client = await register(a, [JWT_BEARER])
    assertion = idp.id_jag(sub=USERNAME, aud=ISSUER, client_id=client[0], resource=MCP)
    first = await exchange(a, client, assertion)
    assert first.status_code == 200, first.text
    assert refused(await exchange(b, client, assertion)) == invalid_grant(
        "the ID-JAG was already used"
    )
