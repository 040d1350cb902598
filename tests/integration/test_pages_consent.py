"""What the consent page shows about the client: name, logo, host, warnings.

The user's browser loads a logo as soon as the page opens, so only a logo nothing
registrant-chosen can aim is rendered: an operator-registered client's, or a metadata-document
client's on its own origin; never a dynamically registered client's (its initial instead).
"""

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


async def _as_operator_registered(
    server: AS, client_id: str, *, logo_uri: str | None = None, client_uri: str | None = None
) -> None:
    """Turn a registered client into one an operator added (``ostiary clients add``)."""
    tenant = server.settings.storage.tenant
    stored = await server.ctx.storage.get_client(tenant, client_id)
    assert stored is not None
    operator = replace(
        stored,
        source="static",
        logo_uri=logo_uri or stored.logo_uri,
        client_uri=client_uri or stored.client_uri,
    )
    await server.ctx.storage.save_client(operator)


def _main(page: str) -> str:
    return page.split('<main id="main"')[1]


async def test_dynamically_registered_logo_is_not_loaded(server: AS) -> None:
    """A DCR registrant chose logo_uri: rendering it would make every user's browser request
    an address of its choosing (perhaps inside the user's network). Its initial is shown."""
    client = await server.register(
        client_name="Notebook",
        logo_uri="https://192.168.1.1/notebook.png",
        client_uri="https://notebook.example.com/about",
    )
    page = await _consent(server, client["client_id"])
    assert "<img" not in _main(page)
    assert "192.168.1.1" not in page
    assert '<span class="client-initial">N</span>' in page
    assert '<p class="muted">notebook.example.com</p>' in page
    stored = await server.ctx.storage.get_client(
        server.settings.storage.tenant, client["client_id"]
    )
    assert stored is not None
    assert stored.logo_uri == "https://192.168.1.1/notebook.png"  # kept, just not rendered


async def test_operator_registered_logo_and_home_page_host_are_shown(server: AS) -> None:
    client = await server.register(
        client_name="Notebook",
        logo_uri="https://cdn.example.com/notebook.png",
        client_uri="https://notebook.example.com/about",
    )
    await _as_operator_registered(server, client["client_id"])
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
    await _as_operator_registered(
        server, client["client_id"], logo_uri="http://cdn.example.com/l.png"
    )
    page = await _consent(server, client["client_id"])
    assert "<img" not in _main(page)
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


async def test_metadata_document_client_shows_its_host_and_own_logo(world: CimdWorld) -> None:  # noqa: F811
    """The logo lives on the host that published the document (and that the page names)."""
    server, documents = world.server, world.documents
    client_id = documents.url("/oauth/app.json")
    logo = documents.url("/oauth/logo.png")
    documents.serve_json(
        "/oauth/app.json", _document(client_id, client_name="Doc App", logo_uri=logo)
    )
    page = await _consent(server, client_id)
    assert f'<p class="muted">{urlsplit(client_id).hostname}</p>' in page
    assert f'src="{logo}"' in page


async def test_metadata_document_logo_on_another_host_is_not_loaded(world: CimdWorld) -> None:  # noqa: F811
    server, documents = world.server, world.documents
    client_id = documents.url("/oauth/app.json")
    documents.serve_json(
        "/oauth/app.json",
        _document(client_id, client_name="Doc App", logo_uri="https://10.0.0.1/doc.png"),
    )
    page = await _consent(server, client_id)
    assert f'<p class="muted">{urlsplit(client_id).hostname}</p>' in page
    assert "<img" not in _main(page)
    assert "10.0.0.1" not in page
    assert '<span class="client-initial">D</span>' in page
