"""Driving the federated login like a user would, step by step."""

from __future__ import annotations

import html
import re

import httpx

from tests.federation._idp import CALLBACK
from tests.federation.conftest import REDIRECT, Browser, Fed, csrf, form_action


def provider_button(body: str) -> str:
    found = re.search(r'href="([^"]+)" data-provider="idp"', body)
    assert found is not None, body[:800]
    return html.unescape(found.group(1))


async def choose_provider(
    fed: Fed, browser: Browser, challenge: str, **extra: str
) -> httpx.Response:
    """Start an authorization and click the provider button on the login page."""
    page = await fed.login_page(browser, challenge, **extra)
    assert page.status_code == 200, page.text[:500]
    return await browser.get(provider_button(page.text))


async def approve(browser: Browser, consent: httpx.Response) -> httpx.Response:
    assert 'name="decision"' in consent.text, consent.text[:500]
    return await browser.post(
        form_action(consent.text), {"csrf_token": csrf(consent.text), "decision": "approve"}
    )


async def to_callback(fed: Fed, browser: Browser, challenge: str, *, account: str = "alice") -> str:
    """Consent, go upstream, sign in there; return the callback URL without visiting it."""
    start = await choose_provider(fed, browser, challenge)
    if start.status_code == 200:
        start = await approve(browser, start)
    assert start.status_code == 303, start.text[:500]
    done = await browser.idp_login(
        await browser.follow(start, stop_at=CALLBACK), account, stop_at=CALLBACK
    )
    assert done.status_code == 303, done.text[:500]
    location = done.headers["location"]
    assert location.startswith(CALLBACK), location
    return location


async def federated_login(
    fed: Fed, browser: Browser, challenge: str, *, account: str = "alice", **extra: str
) -> tuple[str, bool]:
    """Authorize through the provider button; returns the client redirect and whether the
    ostiary consent page was shown. ``extra`` adds authorization request parameters."""
    start = await choose_provider(fed, browser, challenge, **extra)
    consent_shown = start.status_code == 200
    if consent_shown:
        start = await approve(browser, start)
    assert start.status_code == 303, start.text[:500]
    done = await browser.idp_login(await browser.follow(start), account)
    if done.status_code == 200 and 'name="decision"' in done.text:
        # Sent back to consent (another subject than remembered): approve, sign in again.
        consent_shown = True
        done = await browser.idp_login(await browser.follow(await approve(browser, done)), account)
    assert done.status_code == 303, done.text[:500]
    location = done.headers["location"]
    assert location.startswith(REDIRECT), location
    return location, consent_shown
