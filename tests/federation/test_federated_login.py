"""Logging in through a real upstream OpenID provider: consent first, then upstream, then back.

MCP security best practices (confused deputy): the consent page for the MCP client comes
before anything is sent upstream, and the upstream ``state`` is random, single-use, bound to
the browser and short-lived.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from ostiary.federation.service import callback_url
from tests.federation._flow import approve, federated_login, provider_button
from tests.federation._idp import CALLBACK, CLIENT_ID, ISSUER
from tests.federation.conftest import Fed, jwt_claims, pkce_pair


async def test_login_page_offers_the_provider(fed: Fed) -> None:
    browser = fed.browser()
    _verifier, challenge = pkce_pair()
    page = await fed.login_page(browser, challenge)
    interaction = str(page.url).rsplit("/", 1)[1]
    assert provider_button(page.text) == f"{ISSUER}/interaction/{interaction}/federation/idp"
    assert "Continue with Test IdP" in page.text


async def test_consent_is_shown_before_anything_goes_upstream(fed: Fed) -> None:
    browser = fed.browser()
    _verifier, challenge = pkce_pair()
    page = await fed.login_page(browser, challenge)
    start = await browser.get(provider_button(page.text))
    assert start.status_code == 200
    assert "Federated MCP Client" in start.text
    label = fed.ctx.settings.federation.providers[0].label or "idp"
    assert (
        '<p class="account-line">You are not signed in yet: after you approve, you sign in '
        f"with <strong>{label}</strong>.</p>"
    ) in start.text
    assert "Signed in as" not in start.text
    assert "Not you?" not in start.text
    assert not any(url.startswith(fed.idp.issuer) for url in browser.visited)
    assert start.headers["content-security-policy"] == (
        "default-src 'none'; style-src 'self'; img-src 'self' https: data:; "
        f"form-action 'self' http://127.0.0.1:9999 {fed.idp.issuer}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    approved = await approve(browser, start)
    assert approved.status_code == 303
    upstream = urlsplit(approved.headers["location"])
    assert f"{upstream.scheme}://{upstream.netloc}{upstream.path}" == f"{fed.idp.issuer}/auth"
    query = {k: v[0] for k, v in parse_qs(upstream.query).items()}
    assert set(query) == {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    }
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == CALLBACK == callback_url(fed.ctx, "idp")
    assert query["scope"] == "openid email profile"
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) == 43
    assert len(query["nonce"]) == 43
    assert query["state"] != query["nonce"]


async def test_login_ends_in_a_token_for_the_linked_local_subject(fed_any_storage: Fed) -> None:
    fed = fed_any_storage
    browser = fed.browser()
    verifier, challenge = pkce_pair()
    location, consent_shown = await federated_login(fed, browser, challenge)
    assert consent_shown
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["client-state"]
    assert query["iss"] == [ISSUER]
    tokens = await fed.redeem(location, verifier)
    subject = jwt_claims(tokens["access_token"])["sub"]
    linked = await fed.ctx.storage.get_linked_identity(fed.ctx.tenant, "idp", "alice")
    assert linked is not None
    assert linked.subject == subject
    assert linked.email == "alice@idp.example"
    assert linked.display_name == "Alice Upstream"
    user = await fed.ctx.storage.get_user(fed.ctx.tenant, subject)
    assert user is not None
    assert user.username == "idp.alice@idp.example"
    assert user.display_name == "Alice Upstream"

    # A second login, in a fresh ostiary browser (no session, no hint), reaches the same
    # local subject.
    second = fed.browser(idp_jar=browser)
    verifier2, challenge2 = pkce_pair()
    location2, _shown = await federated_login(fed, second, challenge2)
    tokens2 = await fed.redeem(location2, verifier2)
    assert jwt_claims(tokens2["access_token"])["sub"] == subject


async def test_signing_in_to_connected_apps_needs_no_consent(fed: Fed) -> None:
    """No client is involved, so the provider login starts at once and ends on the page."""
    browser = fed.browser()
    page = await browser.follow(await browser.get(f"{ISSUER}/account"))
    assert page.status_code == 200
    start = await browser.get(provider_button(page.text))
    assert start.status_code == 303
    assert start.headers["location"].startswith(f"{fed.idp.issuer}/auth?")
    done = await browser.idp_login(await browser.follow(start), "alice")
    assert done.status_code == 200
    assert str(done.url) == f"{ISSUER}/account"
    linked = await fed.ctx.storage.get_linked_identity(fed.ctx.tenant, "idp", "alice")
    assert linked is not None
    user = await fed.ctx.storage.get_user(fed.ctx.tenant, linked.subject)
    assert user is not None
    assert user.display_name == "Alice Upstream"
    assert '<p class="lead">Signed in as <strong>Alice Upstream</strong></p>' in done.text
