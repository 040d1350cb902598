"""Drive the real login and consent forms without a browser (used by tests and conformance).

Follows the same HTTP exchange a browser makes: GET /authorize, follow to the interaction
page, submit the login form with its CSRF token, then submit the consent form. Works with any
httpx.AsyncClient: in-process (ASGITransport) or against a running server.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

import httpx

_FORM = re.compile(r'<form method="post" action="([^"]+)"')
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Page:
    action: str
    csrf_token: str


def parse_form(body: str) -> Page:
    action = _FORM.search(body)
    csrf = _CSRF.search(body)
    assert action is not None, f"no form on page: {body[:400]}"
    assert csrf is not None, f"no CSRF token on page: {body[:400]}"
    return Page(html.unescape(action.group(1)), html.unescape(csrf.group(1)))


async def authorize(
    client: httpx.AsyncClient,
    authorize_url: str,
    *,
    username: str,
    password: str,
    decision: str = "approve",
    otp: Callable[[], str] | None = None,
) -> str:
    """Run one authorization through the pages; returns the final redirect Location.

    ``otp`` supplies the TOTP code when the user has a second factor.
    """
    response = await client.get(authorize_url)
    while response.status_code in (302, 303):
        location = response.headers["location"]
        if "/interaction/" not in location:
            return location
        response = await client.get(location)
        if response.status_code in (302, 303):
            continue  # a remembered consent completes the interaction at once
        body = response.text
        if 'name="password"' in body:
            page = parse_form(body)
            response = await client.post(
                page.action,
                data={"csrf_token": page.csrf_token, "username": username, "password": password},
            )
            if response.status_code not in (302, 303):
                raise AssertionError(f"login failed: {response.status_code} {response.text[:300]}")
            continue
        if 'autocomplete="one-time-code"' in body and otp is not None:
            page = parse_form(body)
            response = await client.post(
                page.action, data={"csrf_token": page.csrf_token, "code": otp()}
            )
            if response.status_code not in (302, 303):
                raise AssertionError(f"code refused: {response.status_code} {response.text[:300]}")
            continue
        if 'name="decision"' in body:
            page = parse_form(body)
            response = await client.post(
                page.action, data={"csrf_token": page.csrf_token, "decision": decision}
            )
            continue
        raise AssertionError(f"unexpected page {response.status_code}: {body[:400]}")
    raise AssertionError(f"authorization ended without a redirect: {response.status_code}")
