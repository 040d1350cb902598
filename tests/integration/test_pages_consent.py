"""What the consent page shows about the client: name, logo (https only), host, warnings."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

import pytest

from tests.helpers.browserless import parse_form
from tests.integration.conftest import AS, PASSWORD, USERNAME, pkce_pair
from tests.integration.test_cimd import World as CimdWorld
from tests.integration.test_cimd import _document, world  # noqa: F401  (fixture)
from tests.integration.test_hostile_helpers import guard


@pytest.fixture
def server(auth_server: AS) -> AS:
    return guard(auth_server)


async def _consent(server: AS, client_id: str, **extra: str) -> str:
    start = await server.http.get(server.authorize_url(client_id, pkce_pair()[1], **extra))
    assert start.status_code == 303, start.text
    interaction = start.headers["location"]
    page = await server.http.get(interaction)
    if 'name="password"' in page.text:
        form = parse_form(page.text)
        login = await server.http.post(
            form.action,
            data={"csrf_token": form.csrf_token, "username": USERNAME, "password": PASSWORD},
        )
        assert login.status_code == 303
        page = await server.http.get(interaction)
    assert 'name="decision"' in page.text, page.text
    return page.text


async def test_registered_logo_and_home_page_host_are_shown(server: AS) -> None:
    client = await server.register(
        client_name="Notebook",
        logo_uri="https://cdn.example.com/notebook.png",
        client_uri="https://notebook.example.com/about",
    )
    page = await _consent(server, client["client_id"])
    assert (
        '<img src="https://cdn.example.com/notebook.png" alt="" data-initial="N" width="56" '
        'height="56" referrerpolicy="no-referrer">'
    ) in page
    assert '<p class="muted">notebook.example.com</p>' in page
    assert '<span class="client-initial">N</span>' in page


async def test_a_plain_http_logo_is_not_shown(server: AS) -> None:
    """Registration refuses it; a record stored some other way is still not rendered."""
    client = await server.register(client_name="Plain")
    tenant = server.settings.storage.tenant
    stored = await server.ctx.storage.get_client(tenant, client["client_id"])
    assert stored is not None
    await server.ctx.storage.save_client(replace(stored, logo_uri="http://cdn.example.com/l.png"))
    page = await _consent(server, client["client_id"])
    assert "<img" not in page.split('<main id="main"')[1]
    assert '<span class="client-initial">P</span>' in page


async def test_scopes_are_listed_with_their_descriptions(server: AS) -> None:
    client = await server.register(client_name="Notebook")
    page = await _consent(server, client["client_id"], scope="mcp:read offline_access")
    assert (
        '<span><span class="scope-description">Read your data through the MCP server&#39;s tools '
        'and resources.</span> <code class="scope-name">mcp:read</code></span>'
    ) in page
    assert (
        '<span class="scope-description">Stay connected when you are away (issue refresh '
        'tokens).</span> <code class="scope-name">offline_access</code>'
    ) in page


async def test_native_client_with_a_remote_redirect_is_flagged(server: AS) -> None:
    remote = "https://app.example.net/cb"
    client = await server.register(
        client_name="Native", application_type="native", redirect_uris=[remote]
    )
    page = await _consent(server, client["client_id"], redirect_uri=remote)
    assert (
        '<div class="alert alert-warning" role="alert"><strong>Check the address.</strong> This '
        "app says it runs on your device, but it will send your authorization to app.example.net, "
        "a remote server. Approve only if you expected that.</div>"
    ) in page
    assert '<strong class="host">app.example.net</strong></dd>' in page


async def test_loopback_redirect_is_not_flagged(server: AS) -> None:
    client = await server.register(client_name="Native", application_type="native")
    page = await _consent(server, client["client_id"])
    assert "alert-warning" not in page
    assert (
        '<strong class="host">127.0.0.1</strong> <span class="host-note">(this device)</span>'
    ) in page


async def test_metadata_document_client_shows_its_host_and_logo(world: CimdWorld) -> None:  # noqa: F811
    server, documents = world.server, world.documents
    client_id = documents.url("/oauth/app.json")
    documents.serve_json(
        "/oauth/app.json",
        _document(client_id, client_name="Doc App", logo_uri="https://cdn.example.com/doc.png"),
    )
    page = await _consent(server, client_id)
    assert f'<p class="muted">{urlsplit(client_id).hostname}</p>' in page
    assert 'src="https://cdn.example.com/doc.png"' in page
