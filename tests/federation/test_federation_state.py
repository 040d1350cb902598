"""The upstream state, the consent decision and the callback's checks (RFC 9700 §4.7; MCP BCP).

The state is random, stored only as a hash, bound to the browser that approved, single-use
and valid for ten minutes; the callback refuses anything else before it contacts the IdP.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from tests.federation._flow import approve, choose_provider, federated_login, to_callback
from tests.federation._idp import CALLBACK, ISSUER
from tests.federation.conftest import REDIRECT, Fed, error_of, jwt_claims, pkce_pair

EXPIRED_OR_USED = "This sign-in response expired or was already used."


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def test_unknown_state_is_refused(fed: Fed) -> None:
    browser = fed.browser()
    response = await browser.get(f"{CALLBACK}?code=whatever&state=forged-state")
    assert error_of(response) == (400, "invalid_request", EXPIRED_OR_USED)


async def test_missing_state_is_refused(fed: Fed) -> None:
    response = await fed.browser().get(f"{CALLBACK}?code=whatever")
    assert error_of(response) == (
        400,
        "invalid_request",
        "The sign-in response has no valid state.",
    )


async def test_replayed_callback_is_refused(fed: Fed) -> None:
    """The state is single use: the same callback URL works once."""
    browser = fed.browser()
    _verifier, challenge = pkce_pair()
    callback = await to_callback(fed, browser, challenge)
    first = await browser.get(callback)
    assert first.status_code == 303
    assert first.headers["location"].startswith(REDIRECT)
    again = await browser.get(callback)
    assert error_of(again) == (400, "invalid_request", EXPIRED_OR_USED)


async def test_callback_in_another_browser_is_refused_and_does_not_burn_the_state(
    fed: Fed,
) -> None:
    browser = fed.browser()
    verifier, challenge = pkce_pair()
    callback = await to_callback(fed, browser, challenge)
    thief = fed.browser()
    stolen = await thief.get(callback)
    assert error_of(stolen) == (
        400,
        "invalid_request",
        "This sign-in response belongs to another browser.",
    )
    own = await browser.get(callback)
    assert own.status_code == 303
    await fed.redeem(own.headers["location"], verifier)


async def test_state_expires_after_ten_minutes(fed: Fed) -> None:
    browser = fed.browser()
    _verifier, challenge = pkce_pair()
    callback = await to_callback(fed, browser, challenge)
    fed.clock.offset += 601
    response = await browser.get(callback)
    assert error_of(response) == (400, "invalid_request", EXPIRED_OR_USED)


async def test_response_from_another_issuer_is_refused(fed: Fed) -> None:
    """RFC 9207 §2.4: the provider announces ``iss``; a different one is a mix-up."""
    browser = fed.browser()
    _verifier, challenge = pkce_pair()
    callback = await to_callback(fed, browser, challenge)
    response = await browser.get(_with_query(callback, iss="https://evil.example"))
    assert error_of(response) == (
        403,
        "access_denied",
        "Signing in with Test IdP failed: "
        "the sign-in response came from another issuer (RFC 9207).",
    )


async def test_id_token_with_another_nonce_is_refused(fed: Fed) -> None:
    """OIDC Core §3.1.3.7 rule 11: the nonce must be the one this browser's login sent."""
    browser = fed.browser()
    _verifier, challenge = pkce_pair()
    start = await approve(browser, await choose_provider(fed, browser, challenge))
    upstream = _with_query(start.headers["location"], nonce="attacker-chosen-nonce")
    done = await browser.idp_login(
        await browser.follow(await browser.get(upstream), stop_at=CALLBACK),
        "alice",
        stop_at=CALLBACK,
    )
    callback = done.headers["location"]
    assert callback.startswith(CALLBACK)
    response = await browser.get(callback)
    assert error_of(response) == (
        403,
        "access_denied",
        "Signing in with Test IdP failed: the ID token's nonce does not match this login.",
    )
    assert await fed.ctx.storage.get_linked_identity(fed.ctx.tenant, "idp", "alice") is None


async def test_code_issued_to_another_client_is_refused(fed: Fed) -> None:
    """A code the IdP issued to another client (another audience) is not redeemed."""
    browser = fed.browser()
    _verifier, challenge = pkce_pair()
    start = await approve(browser, await choose_provider(fed, browser, challenge))
    upstream = _with_query(start.headers["location"], client_id="other-app")
    done = await browser.idp_login(
        await browser.follow(await browser.get(upstream), stop_at=CALLBACK),
        "alice",
        stop_at=CALLBACK,
    )
    response = await browser.get(done.headers["location"])
    assert error_of(response) == (
        403,
        "access_denied",
        "Signing in with Test IdP failed: 127.0.0.1 refused the token request (invalid_grant).",
    )


async def test_deny_on_the_consent_page_never_goes_upstream(fed: Fed) -> None:
    browser = fed.browser()
    _verifier, challenge = pkce_pair()
    consent = await choose_provider(fed, browser, challenge)
    form = {"csrf_token": consent.text.split('name="csrf_token" value="')[1].split('"')[0]}
    denied = await browser.post(str(consent.url), {**form, "decision": "deny"})
    assert denied.status_code == 303
    query = parse_qs(urlsplit(denied.headers["location"]).query)
    assert query == {
        "error": ["access_denied"],
        "error_description": ["The user denied the request."],
        "state": ["client-state"],
        "iss": [ISSUER],
    }
    assert not any(url.startswith(fed.idp.issuer) for url in browser.visited)


async def test_consent_without_csrf_token_is_refused(fed: Fed) -> None:
    browser = fed.browser()
    _verifier, challenge = pkce_pair()
    consent = await choose_provider(fed, browser, challenge)
    response = await browser.post(str(consent.url), {"decision": "approve"})
    assert error_of(response) == (
        400,
        "invalid_request",
        "The form expired or did not come from this site. Reload it.",
    )
    assert not any(url.startswith(fed.idp.issuer) for url in browser.visited)


# The fixture's client is public with a loopback redirect: its consent is remembered only when
# the deployment opts in (RFC 8252 §8.6).
@pytest.mark.as_settings(security={"remember_consent_for_unverified_clients": True})
async def test_remembered_consent_goes_upstream_at_once(fed: Fed) -> None:
    browser = fed.browser()
    verifier, challenge = pkce_pair()
    first, shown = await federated_login(fed, browser, challenge)
    assert shown
    subject = jwt_claims((await fed.redeem(first, verifier))["access_token"])["sub"]
    browser.ostiary.cookies.delete("ostiary_session")  # signed out of ostiary only
    verifier2, challenge2 = pkce_pair()
    second, shown2 = await federated_login(fed, browser, challenge2)
    assert not shown2
    assert jwt_claims((await fed.redeem(second, verifier2))["access_token"])["sub"] == subject


async def test_another_upstream_account_than_remembered_must_consent(fed: Fed) -> None:
    """A remembered consent belongs to a subject, never to whoever signs in next."""
    browser = fed.browser()
    verifier, challenge = pkce_pair()
    first, _shown = await federated_login(fed, browser, challenge)
    alice = jwt_claims((await fed.redeem(first, verifier))["access_token"])["sub"]
    browser.ostiary.cookies.delete("ostiary_session")
    other = fed.browser()  # a new IdP cookie jar: bob signs in upstream
    other.ostiary = browser.ostiary
    verifier2, challenge2 = pkce_pair()
    second, shown = await federated_login(fed, other, challenge2, account="bob")
    assert shown
    bob = jwt_claims((await fed.redeem(second, verifier2))["access_token"])["sub"]
    assert bob != alice
    linked = await fed.ctx.storage.get_linked_identity(fed.ctx.tenant, "idp", "bob")
    assert linked is not None
    assert linked.subject == bob


async def test_concurrent_callbacks_with_one_state_complete_once(fed: Fed) -> None:
    """Single use holds under concurrency: exactly one of two racing callbacks wins."""
    browser = fed.browser()
    _verifier, challenge = pkce_pair()
    callback = await to_callback(fed, browser, challenge)
    first, second = await asyncio.gather(browser.get(callback), browser.get(callback))
    outcomes = sorted([first.status_code, second.status_code])
    assert outcomes == [303, 400]
    loser = first if first.status_code == 400 else second
    assert error_of(loser) == (400, "invalid_request", EXPIRED_OR_USED)
