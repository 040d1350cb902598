"""``/stats``: off for the public; counts only for the operator's ``server.stats_token``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from ostiary.settings import Settings
from tests.integration.conftest import AS, WITH_POSTGRES

STATS_TOKEN = "an-operator-secret-0123456789"


@WITH_POSTGRES
async def test_stats_is_not_served_by_default(auth_server: AS) -> None:
    """Nobody learns how many users, clients, grants and tokens a deployment has."""
    assert auth_server.settings.server.stats_token is None
    for headers in ({}, {"Authorization": f"Bearer {STATS_TOKEN}"}):
        response = await auth_server.http.get("/stats", headers=headers)
        assert response.status_code == 404
        assert "users" not in response.text


@WITH_POSTGRES
@pytest.mark.as_settings(server={"stats_token": STATS_TOKEN})
async def test_stats_answers_the_operator_token(auth_server: AS) -> None:
    await auth_server.register()
    response = await auth_server.http.get(
        "/stats", headers={"Authorization": f"Bearer {STATS_TOKEN}"}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "clients": 1,
        "users": 1,
        "live_grants": 0,
        "live_authorization_codes": 0,
        "live_access_tokens": 0,
        "live_refresh_tokens": 0,
    }


@WITH_POSTGRES
@pytest.mark.as_settings(server={"stats_token": STATS_TOKEN})
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        f"Bearer {STATS_TOKEN}x",
        f"Bearer {STATS_TOKEN[:-1]}",
        f"bearer {STATS_TOKEN}",
        f"Basic {STATS_TOKEN}",
        STATS_TOKEN,
    ],
)
async def test_stats_refuses_anything_else(auth_server: AS, authorization: str | None) -> None:
    records: list[dict[str, Any]] = []
    auth_server.ctx.audit.subscribe(lambda _event, record: records.append(record))
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await auth_server.http.get("/stats", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="stats"'
    assert response.headers["cache-control"] == "no-store"
    assert response.content == b""
    assert [r["event"] for r in records] == ["stats.refused"]
    assert records[0]["presented"] is bool(authorization)


def test_a_short_stats_token_is_refused_at_startup(
    settings_factory: Callable[..., Settings],
) -> None:
    with pytest.raises(ValidationError, match=r"server\.stats_token"):
        settings_factory(server={"stats_token": "too-short"})


def test_the_stats_token_never_shows_in_settings(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(server={"stats_token": STATS_TOKEN})
    assert STATS_TOKEN not in repr(settings)
    assert STATS_TOKEN not in settings.model_dump_json()
