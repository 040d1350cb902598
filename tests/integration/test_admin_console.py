"""The operator console at /admin over HTTP, in-process: who gets in, and what each action stores.

Every action is checked by its exact status and by the stored state after it; a form without
the console's CSRF token changes nothing; a signed-in user who is not an administrator gets
403, one without a second factor is told how to enroll, and a visitor is sent to sign in.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from ostiary.core import totp
from ostiary.core.models import Client, User
from ostiary.core.passwords import INSECURE_TEST
from ostiary.core.users import authenticate_user, new_user, with_totp_secret
from tests.helpers.browserless import authorize
from tests.integration.conftest import AS, ISSUER, USERNAME

ADMIN = "root"
ADMIN_PASSWORD = "operator password 1"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CIMD_ID = "https://apps.example.com/client.json"
_ACTION_CSRF = re.compile(
    r'<form method="post" action="' + re.escape(ISSUER) + r'/admin/[a-z-]+/[a-z-]+"[^>]*>\s*'
    r'<input type="hidden" name="csrf_token" value="([^"]+)">'
)


class Console:
    """An administrator's browser: its own cookies, signed in with password and TOTP."""

    def __init__(self, server: AS, http: httpx.AsyncClient) -> None:
        self.server = server
        self.http = http
        self.csrf = ""

    async def sign_in(self, username: str = ADMIN, password: str = ADMIN_PASSWORD) -> str:
        self.server.clock.now += 30  # each TOTP step's code is accepted once
        return await authorize(
            self.http,
            f"{ISSUER}/admin",
            username=username,
            password=password,
            otp=lambda: totp.totp(TOTP_SECRET, self.server.clock()),
        )

    async def page(self, path: str, status: int = 200) -> str:
        response = await self.http.get(f"{ISSUER}/admin{path}")
        assert response.status_code == status, response.text[:500]
        found = _ACTION_CSRF.search(response.text)
        if found:
            self.csrf = html.unescape(found.group(1))
        return response.text

    async def post(self, path: str, **data: str) -> httpx.Response:
        if not self.csrf:
            await self.page("/users")
        return await self.http.post(
            f"{ISSUER}/admin/{path}", data={"csrf_token": self.csrf, **data}
        )

    async def done(self, path: str, location: str, **data: str) -> None:
        response = await self.post(path, **data)
        assert response.status_code == 303, response.text[:500]
        assert response.headers["location"] == f"{ISSUER}/admin/{location}"


async def _save_admin(server: AS, *, second_factor: bool = True, admin: bool = True) -> User:
    tenant = server.settings.storage.tenant
    user = await new_user(
        tenant, ADMIN, ADMIN_PASSWORD, server.clock(), "Rosa Root", hashing=INSECURE_TEST
    )
    user = replace(user, admin=admin)
    if second_factor:
        user = with_totp_secret(user, TOTP_SECRET, server.ctx.cipher)
    await server.ctx.storage.save_user(user)
    return user


@pytest.fixture
async def console(auth_server: AS) -> AsyncIterator[Console]:
    await _save_admin(auth_server)
    transport = auth_server.http._transport
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        console = Console(auth_server, http)
        assert await console.sign_in() == f"{ISSUER}/admin"
        yield console


async def _user(server: AS, username: str = USERNAME) -> User:
    user = await server.ctx.storage.get_user_by_username(server.settings.storage.tenant, username)
    assert user is not None
    return user


async def _refresh(server: AS, client_id: str, refresh_token: str) -> httpx.Response:
    return await server.http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
        },
    )


# -- who gets in -------------------------------------------------------------------------------


async def test_a_visitor_signs_in_with_totp_and_lands_on_the_dashboard(auth_server: AS) -> None:
    await _save_admin(auth_server)
    start = await auth_server.http.get("/admin")
    assert start.status_code == 303
    interaction = start.headers["location"]
    assert interaction.startswith(f"{ISSUER}/interaction/")
    login = await auth_server.http.get(interaction)
    assert '<p class="lead">to open the operator console</p>' in login.text
    transport = auth_server.http._transport
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        console = Console(auth_server, http)
        assert await console.sign_in() == f"{ISSUER}/admin"
        dashboard = await http.get("/admin")
    assert dashboard.status_code == 200
    assert dashboard.headers["cache-control"] == "no-store"
    assert dashboard.headers["x-frame-options"] == "DENY"
    assert dashboard.headers["content-security-policy"] == (
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
        "img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    assert '<script src="/static/admin-charts.js" defer></script>' in dashboard.text
    assert 'data-src="http://127.0.0.1:8000/admin/api/series"' in dashboard.text
    assert "<script>" not in dashboard.text
    assert "Operator console · signed in as <strong>Rosa Root</strong>" in dashboard.text


async def test_other_console_pages_run_no_script(console: Console) -> None:
    response = await console.http.get("/admin/users")
    assert "script-src" not in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_anonymous_api_and_action_are_refused(auth_server: AS) -> None:
    series = await auth_server.http.get("/admin/api/series")
    assert (series.status_code, series.json()) == (401, {"error": "login_required"})
    assert series.headers["cache-control"] == "no-store"
    # No CSRF token (no console page was ever shown): refused before anything else.
    action = await auth_server.http.post("/admin/keys/rotate", data={"csrf_token": "x"})
    assert action.status_code == 400


async def test_a_signed_in_user_who_is_not_an_administrator_gets_403(auth_server: AS) -> None:
    await _save_admin(auth_server, admin=False)
    client = await auth_server.register()
    await auth_server.tokens(client["client_id"])  # alice is signed in on auth_server.http
    page = await auth_server.http.get("/admin")
    assert page.status_code == 403
    assert '<h1 id="page-title">Administrators only</h1>' in page.text
    assert "You are signed in as alice, who cannot use the operator console." in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    for path in ("/admin/users", "/admin/clients", "/admin/grants?user=alice", "/admin/keys"):
        assert (await auth_server.http.get(path)).status_code == 403, path
    series = await auth_server.http.get("/admin/api/series")
    assert (series.status_code, series.json()) == (403, {"error": "forbidden"})

    # A valid console token (the page token is per browser) does not make alice an admin.
    from ostiary.server import sessions

    browser = auth_server.http.cookies["ostiary_browser"]
    csrf = sessions.page_csrf_token(browser, "admin")
    root = await _user(auth_server, ADMIN)
    refused = await auth_server.http.post(
        "/admin/users/disable", data={"csrf_token": csrf, "user_id": root.user_id}
    )
    assert refused.status_code == 403
    assert (await _user(auth_server, ADMIN)).disabled is False


async def test_an_administrator_without_a_second_factor_is_told_to_enroll(auth_server: AS) -> None:
    await _save_admin(auth_server, second_factor=False)
    transport = auth_server.http._transport
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        assert await authorize(
            http, f"{ISSUER}/admin", username=ADMIN, password=ADMIN_PASSWORD
        ) == (f"{ISSUER}/admin")
        page = await http.get("/admin")
    assert page.status_code == 403
    assert '<h1 id="page-title">Enroll a second factor</h1>' in page.text
    assert "`ostiary users totp enable root`" in page.text


@pytest.mark.as_settings(security={"admin_requires_totp": False})
async def test_no_second_factor_needed_when_the_setting_is_off(auth_server: AS) -> None:
    await _save_admin(auth_server, second_factor=False)
    transport = auth_server.http._transport
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        await authorize(http, f"{ISSUER}/admin", username=ADMIN, password=ADMIN_PASSWORD)
        assert (await http.get("/admin")).status_code == 200


async def test_forms_without_the_console_csrf_token_change_nothing(console: Console) -> None:
    alice = await _user(console.server)
    for data in ({"user_id": alice.user_id}, {"user_id": alice.user_id, "csrf_token": "f" * 64}):
        response = await console.http.post("/admin/users/disable", data=data)
        assert response.status_code == 400
        assert (
            "<code>invalid_request</code>: The form expired or did not come from this site. "
            "Reload it.</p>"
        ) in response.text
    assert (await _user(console.server)).disabled is False
    keys = await console.server.ctx.storage.list_signing_keys(
        console.server.settings.storage.tenant
    )
    rotate = await console.http.post("/admin/keys/rotate", data={})
    assert rotate.status_code == 400
    tenant = console.server.settings.storage.tenant
    assert await console.server.ctx.storage.list_signing_keys(tenant) == keys


async def test_an_unknown_action_is_404(console: Console) -> None:
    response = await console.post("users/explode")
    assert response.status_code == 404


# -- users -------------------------------------------------------------------------------------


async def test_users_list_search_and_add(console: Console) -> None:
    page = await console.page("/users")
    assert '<th scope="row">alice</th>' in page
    assert '<th scope="row">root</th>' in page
    assert "2 users." in page
    found = await console.page("/users?q=ROS")
    assert '<th scope="row">root</th>' in found
    assert '<th scope="row">alice</th>' not in found

    await console.done(
        "users/add", "users?done=user-added", username="grace", password="compiler 1952"
    )
    tenant = console.server.settings.storage.tenant
    added = await authenticate_user(console.server.ctx.storage, tenant, "grace", "compiler 1952")
    assert added is not None
    assert (added.admin, added.disabled, added.totp_secret) == (False, False, None)
    after = await console.page("/users?done=user-added")
    assert '<div class="alert alert-success" role="status">User added.</div>' in after

    taken = await console.post("users/add", username="grace", password="compiler 1952")
    assert taken.status_code == 409
    short = await console.post("users/add", username="ada", password="short")
    assert short.status_code == 400
    assert "Password must be 8 to 1024 characters." in short.text
    assert await console.server.ctx.storage.get_user_by_username(tenant, "ada") is None


async def test_disable_revokes_every_grant_and_enable_lets_them_back(console: Console) -> None:
    server = console.server
    client = await server.register()
    tokens = await server.tokens(client["client_id"])
    alice = await _user(server)
    await console.page("/users?q=ali")
    await console.done(
        "users/disable", "users?q=ali&done=user-disabled", user_id=alice.user_id, q="ali"
    )
    assert (await _user(server)).disabled is True
    assert await server.ctx.storage.list_grants(server.settings.storage.tenant, alice.user_id) == []
    refreshed = await _refresh(server, client["client_id"], tokens["refresh_token"])
    assert (refreshed.status_code, refreshed.json()["error"]) == (400, "invalid_grant")
    assert (await server.http.get("/account")).status_code == 303  # her session stopped counting

    await console.done("users/enable", "users?done=user-enabled", user_id=alice.user_id)
    assert (await _user(server)).disabled is False


async def test_an_administrator_cannot_disable_themselves(console: Console) -> None:
    root = await _user(console.server, ADMIN)
    response = await console.post("users/disable", user_id=root.user_id)
    assert response.status_code == 409
    assert (await _user(console.server, ADMIN)).disabled is False


async def test_reset_totp_and_revoke_grants(console: Console) -> None:
    server = console.server
    tenant = server.settings.storage.tenant
    alice = await _user(server)
    await server.ctx.storage.save_user(with_totp_secret(alice, TOTP_SECRET, server.ctx.cipher))
    await console.done("users/reset-totp", "users?done=totp-reset", user_id=alice.user_id)
    assert (await _user(server)).totp_secret is None

    client = await server.register()
    await server.tokens(client["client_id"])
    assert len(await server.ctx.storage.list_grants(tenant, alice.user_id)) == 1
    await console.done(
        "users/revoke-grants", "users?done=user-grants-revoked", user_id=alice.user_id
    )
    assert await server.ctx.storage.list_grants(tenant, alice.user_id) == []
    assert (
        await server.ctx.storage.get_consent(
            tenant, alice.user_id, client["client_id"], f"{ISSUER}/mcp"
        )
        is None
    )
    unknown = await console.post("users/reset-totp", user_id="nobody")
    assert unknown.status_code == 404


# -- clients and grants ------------------------------------------------------------------------


async def test_clients_list_details_disable_and_enable(console: Console) -> None:
    server = console.server
    tenant = server.settings.storage.tenant
    registered = await server.register(client_name="Notebook")
    await server.ctx.storage.save_client(
        Client(tenant, "static-1", ("http://127.0.0.1:9999/callback",), source="static",
               client_name="Build Bot")
    )  # fmt: skip
    tokens = await server.tokens(registered["client_id"])
    await console.done(
        "clients/disable", "clients?done=client-disabled", client_id=CIMD_ID, back="clients"
    )
    block = await server.ctx.storage.get_client(tenant, CIMD_ID)
    assert block is not None
    assert (block.source, block.redirect_uris, block.disabled) == ("cimd", (), True)

    page = await console.page("/clients")
    assert "<td>Registered</td>" in page
    assert "<td>Pre-registered</td>" in page
    assert "<td>Metadata document (block entry)</td>" in page
    assert ">Build Bot</a>" in page

    client_id = registered["client_id"]
    details = await console.page(f"/client?id={client_id}")
    assert '<h2 class="client-title">Notebook</h2>' in details
    assert '<th scope="row">alice</th>' in details
    assert "mcp:read" in details

    back = f"client?id={client_id}"
    await console.done(
        "clients/disable", f"{back}&done=client-disabled", client_id=client_id, back=back
    )
    stored = await server.ctx.storage.get_client(tenant, client_id)
    assert stored is not None
    assert stored.disabled is True
    refreshed = await _refresh(server, client_id, tokens["refresh_token"])
    assert refreshed.status_code == 401  # refused at once: this process forgot its copy
    assert refreshed.json()["error"] == "invalid_client"

    await console.done(
        "clients/enable", f"{back}&done=client-enabled", client_id=client_id, back=back
    )
    stored = await server.ctx.storage.get_client(tenant, client_id)
    assert stored is not None
    assert stored.disabled is False
    assert (await _refresh(server, client_id, tokens["refresh_token"])).status_code == 200

    assert (await console.post("clients/enable", client_id="nope")).status_code == 404
    assert (await console.http.get("/admin/client?id=nope")).status_code == 404


async def test_grants_by_user_and_by_client_and_revoke(console: Console) -> None:
    server = console.server
    tenant = server.settings.storage.tenant
    one = await server.register(client_name="One")
    two = await server.register(client_name="Two")
    tokens_one = await server.tokens(one["client_id"])
    await server.tokens(two["client_id"])
    alice = await _user(server)

    by_user = await console.page("/grants?user=alice")
    assert by_user.count('<th scope="row">alice</th>') == 2
    by_client = await console.page(f"/grants?client={one['client_id']}")
    assert by_client.count('<th scope="row">alice</th>') == 1
    both = await console.page(f"/grants?user=alice&client={two['client_id']}")
    assert both.count('<th scope="row">alice</th>') == 1
    nobody = await console.page("/grants?user=nobody")
    assert '<div class="alert alert-error" role="alert">There is no user nobody.</div>' in nobody

    [grant] = await server.ctx.storage.list_client_grants(tenant, one["client_id"])
    back = "grants?user=alice"
    await console.done(
        "grants/revoke", f"{back}&done=grant-revoked", grant_id=grant.grant_id, back=back
    )
    stored = await server.ctx.storage.get_grant(tenant, grant.grant_id)
    assert stored is not None
    assert stored.revoked_at == server.clock()
    assert [g.client_id for g in await server.ctx.storage.list_grants(tenant, alice.user_id)] == [
        two["client_id"]
    ]
    refreshed = await _refresh(server, one["client_id"], tokens_one["refresh_token"])
    assert (refreshed.status_code, refreshed.json()["error"]) == (400, "invalid_grant")
    again = await console.post("grants/revoke", grant_id=grant.grant_id, back=back)
    assert again.status_code == 404
    # Only the console's own pages are places to go back to.
    [other] = await server.ctx.storage.list_client_grants(tenant, two["client_id"])
    await console.done(
        "grants/revoke", "clients?done=grant-revoked", grant_id=other.grant_id,
        back="//evil.example/x",
    )  # fmt: skip


# -- keys, audit, charts -----------------------------------------------------------------------


async def test_keys_list_and_rotate(console: Console) -> None:
    server = console.server
    tenant = server.settings.storage.tenant
    [before] = await server.ctx.storage.list_signing_keys(tenant)
    page = await console.page("/keys")
    assert f'<th scope="row"><code class="small">{before.kid}</code></th>' in page
    await console.done("keys/rotate", "keys?done=keys-rotated")
    keys = await server.ctx.storage.list_signing_keys(tenant)
    assert len(keys) == 2
    new = next(k for k in keys if k.kid != before.kid)
    old = next(k for k in keys if k.kid == before.kid)
    assert (new.retired_at, old.retired_at) == (None, server.clock())
    jwks = (await server.http.get("/jwks")).json()
    assert sorted(k["kid"] for k in jwks["keys"]) == sorted((new.kid, old.kid))


async def test_audit_page_filters_by_type_user_and_client(console: Console) -> None:
    server = console.server
    client = await server.register(client_name="Audited")
    await server.tokens(client["client_id"])
    page = await console.page("/audit")
    assert '<code class="small">token.issued</code>' in page
    assert '<code class="small">admin.refused</code>' not in page
    only = await console.page("/audit?type=token.issued")
    assert '<code class="small">login.succeeded</code>' not in only
    assert '<code class="small">token.issued</code>' in only
    alice = await _user(server)
    by_user = await console.page("/audit?user=alice")
    assert by_user.count('<code class="small">login.succeeded</code>') == 1
    assert alice.user_id in by_user
    by_client = await console.page(f"/audit?client={client['client_id']}")
    assert '<code class="small">token.issued</code>' in by_client
    assert '<code class="small">login.succeeded</code>' not in by_client


async def test_series_counts_tokens_logins_and_errors_in_the_current_minute(
    console: Console,
) -> None:
    server = console.server
    client = await server.register()
    tokens = await server.tokens(client["client_id"])
    assert (await _refresh(server, client["client_id"], tokens["refresh_token"])).status_code == 200
    bad = await server.http.post("/token", data={"grant_type": "refresh_token"})
    assert bad.status_code == 400

    response = await console.http.get("/admin/api/series?window=hour")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    data = response.json()
    assert (data["window"], data["step"], data["end"]) == (
        "hour",
        60,
        (server.clock() // 60 + 1) * 60,
    )
    series = data["series"]
    assert sorted(series) == [
        "logins:failed", "logins:succeeded", "reuse", "tokens:issued", "tokens:refreshed",
    ]  # fmt: skip
    assert all(len(values) == 60 for values in series.values())
    # root signed in twice (fixture, then none here) and alice once: all in the last minute.
    assert series["tokens:issued"][-1] == 1
    assert series["tokens:refreshed"][-1] == 1
    assert series["logins:succeeded"][-1] >= 1
    assert data["errors"]["/token"][-1] == 1

    day = (await console.http.get("/admin/api/series?window=day")).json()
    assert (day["step"], len(day["series"]["tokens:issued"])) == (900, 96)
    assert day["series"]["tokens:issued"][-1] == 1
    wrong = await console.http.get("/admin/api/series?window=week")
    assert wrong.status_code == 400
    assert wrong.json()["error_description"] == "window must be hour or day"
