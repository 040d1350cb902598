"""The connected-apps page and disconnecting an app, in-process (RFC 7009 §2 semantics)."""

from __future__ import annotations

import re

import httpx
import pytest

from ostiary.core.models import User
from ostiary.core.passwords import INSECURE_TEST
from ostiary.core.users import new_user
from ostiary.server.endpoints.account import connected_apps
from tests.helpers.browserless import authorize, parse_form
from tests.integration.conftest import AS, ISSUER, PASSWORD, RESOURCE, USERNAME, pkce_pair
from tests.integration.test_hostile_helpers import guard


@pytest.fixture
def server(auth_server: AS) -> AS:
    return guard(auth_server)


_REVOKE_FORM = re.compile(
    r'<form method="post" action="([^"]+/account/revoke)" class="app-action">\s*'
    r'<input type="hidden" name="csrf_token" value="([^"]+)">\s*'
    r'<input type="hidden" name="client_id" value="([^"]+)">'
)


async def test_signed_out_visitor_signs_in_then_lands_on_the_account_page(server: AS) -> None:
    start = await server.http.get("/account")
    assert start.status_code == 303
    interaction = start.headers["location"]
    assert interaction.startswith(f"{ISSUER}/interaction/")
    page = await server.http.get(interaction)
    assert page.status_code == 200
    assert "to manage the apps connected to your account" in page.text
    form = parse_form(page.text)
    login = await server.http.post(
        form.action,
        data={"csrf_token": form.csrf_token, "username": USERNAME, "password": PASSWORD},
    )
    assert login.status_code == 303
    done = await server.http.get(interaction)
    assert done.status_code == 303
    assert done.headers["location"] == f"{ISSUER}/account"
    account = await server.http.get("/account")
    assert account.status_code == 200
    assert account.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in account.headers["content-security-policy"]
    assert "<strong>No connected apps.</strong>" in account.text
    # The interaction is spent.
    again = await server.http.get(interaction)
    assert again.status_code == 400


async def test_apps_are_grouped_per_client_with_scopes_and_resource(server: AS) -> None:
    client = await server.register(client_name="Notebook")
    await server.tokens(client["client_id"])
    server.clock.now += 60
    await server.tokens(client["client_id"], scope="mcp:read mcp:write")
    apps = await connected_apps(server.ctx, (await _alice(server)).user_id)
    assert len(apps) == 1
    app = apps[0]
    assert (app.client_id, app.name, app.resources) == (client["client_id"], "Notebook", [RESOURCE])
    assert [s["name"] for s in app.scopes] == ["mcp:read", "mcp:write"]
    assert app.connected_at == 1_900_000_000
    assert app.last_used_at is None
    page = await server.http.get("/account")
    assert '<h2 id="app-1">Notebook</h2>' in page.text
    assert '<li title="Create and change data through the MCP server&#39;s tools.">mcp:write' in (
        page.text
    )


async def test_a_dynamically_registered_logo_is_not_loaded(server: AS) -> None:
    """As on the consent page: the registrant's logo_uri would be fetched by every browser."""
    client = await server.register(client_name="Notebook", logo_uri="https://10.0.0.7/n.png")
    await server.tokens(client["client_id"])
    apps = await connected_apps(server.ctx, (await _alice(server)).user_id)
    assert [app.logo for app in apps] == [None]
    page = await server.http.get("/account")
    assert page.status_code == 200
    assert '<h2 id="app-1">Notebook</h2>' in page.text
    assert "<img" not in page.text.split('<main id="main"')[1]
    assert "10.0.0.7" not in page.text


async def _alice(server: AS) -> User:
    user = await server.ctx.storage.get_user_by_username(server.settings.storage.tenant, USERNAME)
    assert user is not None
    return user


async def test_disconnect_revokes_refresh_and_introspection_at_once(server: AS) -> None:
    client = await server.register(client_name="Notebook")
    tokens = await server.tokens(client["client_id"])
    page = await server.http.get("/account")
    match = _REVOKE_FORM.search(page.text)
    assert match is not None, page.text
    action, csrf, client_id = match.groups()
    assert (action, client_id) == (f"{ISSUER}/account/revoke", client["client_id"])
    revoked = await server.http.post(action, data={"csrf_token": csrf, "client_id": client_id})
    assert revoked.status_code == 303
    assert revoked.headers["location"] == f"{ISSUER}/account?disconnected={client_id}"
    after = await server.http.get(revoked.headers["location"])
    assert '<div class="alert alert-success" role="status">' in after.text
    assert "Notebook was disconnected and its tokens were revoked." in after.text
    assert "<strong>No connected apps.</strong>" in after.text

    refreshed = await server.http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client["client_id"],
        },
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    record = await server.ctx.storage.get_consent(
        server.settings.storage.tenant, (await _alice(server)).user_id, client_id, RESOURCE
    )
    assert record is None


async def test_disconnect_refuses_a_missing_or_forged_csrf_token(server: AS) -> None:
    client = await server.register()
    await server.tokens(client["client_id"])
    for data in (
        {"client_id": client["client_id"]},
        {"client_id": client["client_id"], "csrf_token": "x" * 64},
    ):
        response = await server.http.post("/account/revoke", data=data)
        assert response.status_code == 400
        assert (
            "<code>invalid_request</code>: The form expired or did not come from this site. "
            "Reload it.</p>"
        ) in response.text
    assert len(await connected_apps(server.ctx, (await _alice(server)).user_id)) == 1


async def test_disconnect_touches_only_the_signed_in_users_grants(server: AS) -> None:
    client = await server.register()
    await server.tokens(client["client_id"])
    other = await new_user(
        server.settings.storage.tenant, "bob", "bob's long password", 0, hashing=INSECURE_TEST
    )
    await server.ctx.storage.save_user(other)
    async with httpx.AsyncClient(transport=server.http._transport, base_url=ISSUER) as bob_http:
        location = await authorize(
            bob_http,
            server.authorize_url(client["client_id"], pkce_pair()[1]),
            username="bob",
            password="bob's long password",
        )
        assert "code=" in location
        page = await bob_http.get("/account")
        match = _REVOKE_FORM.search(page.text)
        assert match is not None
        action, csrf, client_id = match.groups()
        revoked = await bob_http.post(action, data={"csrf_token": csrf, "client_id": client_id})
        assert revoked.status_code == 303
    assert await connected_apps(server.ctx, other.user_id) == []
    assert len(await connected_apps(server.ctx, (await _alice(server)).user_id)) == 1


async def test_revoke_without_a_session_is_refused(server: AS) -> None:
    client = await server.register()
    await server.tokens(client["client_id"])
    page = await server.http.get("/account")
    match = _REVOKE_FORM.search(page.text)
    assert match is not None
    action, csrf, client_id = match.groups()
    server.http.cookies.delete("ostiary_session")
    response = await server.http.post(action, data={"csrf_token": csrf, "client_id": client_id})
    assert response.status_code == 400
    assert "<code>invalid_request</code>: Your session ended. Sign in again.</p>" in response.text
