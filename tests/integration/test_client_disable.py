"""An operator-disabled client (``ostiary clients disable``) is refused as if unknown.

No authorization page, no token, no refresh, no introspection or revocation for it; nothing
it holds is spent or lost meanwhile, so enabling it again lets its refresh token work.
"""

from __future__ import annotations

from dataclasses import replace

from ostiary.core.models import Client
from tests.integration.conftest import AS, REDIRECT, pkce_pair
from tests.integration.test_hostile_helpers import assert_error_page, snapshot


async def _set_disabled(server: AS, client_id: str, disabled: bool) -> Client:
    """What ``ostiary clients disable|enable`` does from another process: a storage write.

    A serving process reuses a client record for ``security.client_cache_seconds``; the
    change reaches it once that much time has passed, which the test clock then lets pass.
    """
    tenant = server.settings.storage.tenant
    client = await server.ctx.storage.get_client(tenant, client_id)
    assert client is not None
    changed = replace(client, disabled=disabled)
    await server.ctx.storage.save_client(changed)
    server.clock.now += server.settings.security.client_cache_seconds
    return changed


async def test_a_disable_reaches_a_serving_process_within_the_client_cache_time(
    auth_server: AS,
) -> None:
    client_id = (await auth_server.register())["client_id"]
    tokens = await auth_server.tokens(client_id)  # the process now holds the client record
    tenant = auth_server.settings.storage.tenant
    client = await auth_server.ctx.storage.get_client(tenant, client_id)
    assert client is not None
    await auth_server.ctx.storage.save_client(replace(client, disabled=True))
    auth_server.clock.now += auth_server.settings.security.client_cache_seconds - 1
    cached = await auth_server.http.post(
        "/token", data=_refresh(client_id, tokens["refresh_token"])
    )
    auth_server.clock.now += 1
    refused = await auth_server.http.post(
        "/token", data=_refresh(client_id, cached.json()["refresh_token"])
    )
    assert auth_server.settings.security.client_cache_seconds == 5
    assert cached.status_code == 200  # still within the documented bound
    assert refused.status_code == 401
    assert refused.json() == {"error": "invalid_client", "error_description": "unknown client"}


def _refresh(client_id: str, refresh_token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}


async def test_a_disabled_client_gets_no_page_and_no_token_until_enabled(auth_server: AS) -> None:
    client_id = (await auth_server.register())["client_id"]
    tokens = await auth_server.tokens(client_id)
    await _set_disabled(auth_server, client_id, True)
    before = await snapshot(auth_server)

    _verifier, challenge = pkce_pair()
    page = await auth_server.http.get(auth_server.authorize_url(client_id, challenge))
    refused = await auth_server.http.post(
        "/token", data=_refresh(client_id, tokens["refresh_token"])
    )

    assert_error_page(page, "invalid_request", "unknown client_id")
    assert refused.status_code == 401
    assert refused.json() == {"error": "invalid_client", "error_description": "unknown client"}
    assert await snapshot(auth_server) == before  # the refresh token was not spent
    await _set_disabled(auth_server, client_id, False)
    again = await auth_server.http.post("/token", data=_refresh(client_id, tokens["refresh_token"]))
    assert again.status_code == 200, again.text
    assert again.json()["refresh_token"] != tokens["refresh_token"]


async def test_a_disabled_confidential_client_cannot_introspect_or_revoke(auth_server: AS) -> None:
    registered = await auth_server.register(token_endpoint_auth_method="client_secret_basic")
    basic = (registered["client_id"], registered["client_secret"])
    tokens = await auth_server.tokens(registered["client_id"], auth=basic)
    await _set_disabled(auth_server, registered["client_id"], True)

    introspected = await auth_server.http.post(
        "/introspect", data={"token": tokens["access_token"]}, auth=basic
    )
    revoked = await auth_server.http.post(
        "/revoke", data={"token": tokens["refresh_token"]}, auth=basic
    )

    for response in (introspected, revoked):
        assert response.status_code == 401
        assert response.json() == {"error": "invalid_client", "error_description": "unknown client"}
        assert response.headers["www-authenticate"].startswith("Basic")
    await _set_disabled(auth_server, registered["client_id"], False)
    live = await auth_server.http.post(
        "/introspect", data={"token": tokens["access_token"]}, auth=basic
    )
    assert live.status_code == 200
    assert live.json()["active"] is True


async def test_a_disabled_client_cannot_read_change_or_delete_its_registration(
    auth_server: AS,
) -> None:
    """RFC 7592 with its own registration access token: as if unknown, and the flag stays."""
    registered = await auth_server.register()
    disabled = await _set_disabled(auth_server, registered["client_id"], True)
    uri = registered["registration_client_uri"]
    bearer = {"authorization": f"Bearer {registered['registration_access_token']}"}
    body = {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}

    responses = [
        await auth_server.http.get(uri, headers=bearer),
        await auth_server.http.put(
            uri, headers=bearer, json={**body, "client_id": disabled.client_id}
        ),
        await auth_server.http.delete(uri, headers=bearer),
    ]

    for response in responses:
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert response.json() == {
            "error": "invalid_token",
            "error_description": "the registration access token is invalid",
        }
    tenant = auth_server.settings.storage.tenant
    assert await auth_server.ctx.storage.get_client(tenant, disabled.client_id) == disabled
