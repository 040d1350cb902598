"""Hostile requests at the authorization endpoint and the login/consent pages.

OAuth 2.1 §4.1.2.1 and RFC 9700 §4.11: until the client and its redirect URI are validated an
error is shown on an HTML page and never redirected; afterwards it goes back to the client with
``error``, ``error_description``, ``state`` and ``iss`` (RFC 9207). The pages are
CSRF-protected, bound to the browser that started them and cannot be framed (RFC 9700 §4.7,
§4.16). Every request runs under :func:`guard`: a 5xx fails the test.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.helpers.browserless import parse_form
from tests.integration.conftest import AS, ISSUER, PASSWORD, REDIRECT, RESOURCE, USERNAME, pkce_pair
from tests.integration.test_hostile_helpers import (
    assert_error_page,
    guard,
    redirect_query,
    snapshot,
)

FORM = "application/x-www-form-urlencoded"
CSRF_ERROR = "The form expired or did not come from this site. Reload it."
OTHER_BROWSER = "This sign-in request was started in another browser."
GONE = "This sign-in request expired or was already completed."
WRONG_LOGIN = "Wrong username or password."
S256_ONLY = "code_challenge_method must be S256"


@pytest.fixture
def server(auth_server: AS) -> AS:
    return guard(auth_server)


def _params(client_id: str, **extra: str) -> dict[str, str]:
    _verifier, challenge = pkce_pair()
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st4te",
        "resource": RESOURCE,
        **extra,
    }


def _url(params: dict[str, str] | list[tuple[str, str]]) -> str:
    return f"{ISSUER}/authorize?{urlencode(params)}"


def _without(params: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in params.items() if k != name}


def assert_page_headers(response: httpx.Response) -> None:
    """RFC 9700 §4.16: pages cannot be framed; no scripts, no sniffing, no caching."""
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp.split("; ")
    assert "default-src 'none'" in csp.split("; ")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


# --- phase one: the redirect URI is not trusted yet, so errors are shown, never redirected ----


async def test_missing_client_id(server: AS) -> None:
    client = await server.register()
    response = await server.http.get(_url(_without(_params(client["client_id"]), "client_id")))
    assert_error_page(response, "invalid_request", "client_id is required")
    assert_page_headers(response)


async def test_unknown_client(server: AS) -> None:
    before = await snapshot(server)
    response = await server.http.get(_url(_params("no-such-client")))
    assert_error_page(response, "invalid_request", "unknown client_id")
    assert await snapshot(server) == before


async def test_duplicate_client_id(server: AS) -> None:
    client = await server.register()
    other = await server.register()
    pairs = [*_params(client["client_id"]).items(), ("client_id", other["client_id"])]
    response = await server.http.get(_url(pairs))
    assert_error_page(response, "invalid_request", "parameter client_id is repeated")


async def test_duplicate_state_is_not_redirected(server: AS) -> None:
    """A repeated parameter fails parsing, before the redirect URI could be trusted."""
    client = await server.register()
    pairs = [*_params(client["client_id"]).items(), ("state", "other")]
    response = await server.http.get(_url(pairs))
    assert_error_page(response, "invalid_request", "parameter state is repeated")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:9999/other",
        "http://127.0.0.1:9999/callback/",
        "http://127.0.0.1:9999/callback?x=1",
        "https://evil.example/callback",
        "http://evil.example:9999/callback",
        "javascript:alert(1)",
        "http://127.0.0.1:9999/callback#frag",
        "http://user@127.0.0.1:9999/callback",
    ],
)
async def test_wrong_redirect_uri_shows_an_error_page(server: AS, redirect_uri: str) -> None:
    client = await server.register()
    before = await snapshot(server)
    response = await server.http.get(
        _url(_params(client["client_id"], redirect_uri=redirect_uri, response_type="token"))
    )
    assert_error_page(response, "invalid_request", "redirect_uri is not registered for this client")
    assert_page_headers(response)
    assert await snapshot(server) == before


async def test_loopback_redirect_accepts_any_port(server: AS) -> None:
    """RFC 8252 §7.3: a loopback redirect URI matches on any port."""
    client = await server.register()
    response = await server.http.get(
        _url(_params(client["client_id"], redirect_uri="http://127.0.0.1:1234/callback"))
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{ISSUER}/interaction/")


async def test_missing_redirect_uri_with_a_loopback_registration(server: AS) -> None:
    """OAuth 2.1 §4.1.1: redirect_uri may be omitted only for one non-loopback URI."""
    client = await server.register()
    response = await server.http.get(_url(_without(_params(client["client_id"]), "redirect_uri")))
    assert_error_page(response, "invalid_request", "redirect_uri is required")


async def test_hostile_parameter_names_are_escaped(server: AS) -> None:
    response = await server.http.get(f"{ISSUER}/authorize?<script>=1&<script>=2")
    assert_error_page(response, "invalid_request", "parameter <script> is repeated")
    assert "<script>" not in response.text


async def test_oversized_parameter(server: AS) -> None:
    client = await server.register()
    response = await server.http.get(_url(_params(client["client_id"], state="s" * 9000)))
    assert_error_page(response, "invalid_request", "parameter state is too long")


async def test_post_with_the_wrong_content_type(server: AS) -> None:
    client = await server.register()
    response = await server.http.post("/authorize", json=_params(client["client_id"]))
    assert_error_page(
        response, "invalid_request", "content type must be application/x-www-form-urlencoded"
    )


async def test_oversized_post_body_is_413(server: AS) -> None:
    client = await server.register()
    body = urlencode(_params(client["client_id"])) + "&x=" + "a" * 70_000
    response = await server.http.post("/authorize", content=body, headers={"content-type": FORM})
    assert response.status_code == 413
    assert "location" not in response.headers
    assert "<code>invalid_request</code>: request body is too large</p>" in response.text


async def test_post_form_works_like_get(server: AS) -> None:
    client = await server.register()
    response = await server.http.post("/authorize", data=_params(client["client_id"]))
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{ISSUER}/interaction/")


async def test_percent_encoded_garbage_in_the_query(server: AS) -> None:
    response = await server.http.get(f"{ISSUER}/authorize?client_id=%ff%fe&x=%zz")
    assert_error_page(response, "invalid_request", "unknown client_id")
    nul = await server.http.get(f"{ISSUER}/authorize?client_id=a%00b")
    assert_error_page(nul, "invalid_request", "parameter client_id contains a NUL character")


# --- phase two: the redirect URI is trusted, errors go back to the client ----------------------


@pytest.mark.parametrize(
    ("change", "error", "description"),
    [
        (
            {"response_type": "token"},
            "unsupported_response_type",
            "only response_type=code is supported",
        ),
        (
            {"response_type": "code id_token"},
            "unsupported_response_type",
            "only response_type=code is supported",
        ),
        ({"response_type": ""}, "invalid_request", "response_type is required"),
        ({"scope": "mcp:read admin"}, "invalid_scope", "unsupported scope: admin"),
        (
            {"scope": "mcp:read\tmcp:write"},
            "invalid_scope",
            "scope must be space-separated tokens of printable ASCII characters",
        ),
        ({"code_challenge_method": "plain"}, "invalid_request", S256_ONLY),
        ({"code_challenge_method": ""}, "invalid_request", S256_ONLY),
        (
            {"code_challenge": ""},
            "invalid_request",
            "code_challenge is required: PKCE with S256 is mandatory",
        ),
        (
            {"code_challenge": "tooshort"},
            "invalid_request",
            "code_challenge must be 43 base64url characters without padding",
        ),
        (
            {"code_challenge": "=" * 43},
            "invalid_request",
            "code_challenge must be 43 base64url characters without padding",
        ),
        (
            {"resource": "https://elsewhere.example/mcp"},
            "invalid_target",
            "resource is not served by this authorization server",
        ),
        (
            {"resource": f"{RESOURCE}#frag"},
            "invalid_target",
            "resource must not contain a fragment",
        ),
        ({"resource": "/relative"}, "invalid_target", "resource must be an absolute URI"),
    ],
)
async def test_errors_after_the_redirect_is_validated_redirect(
    server: AS, change: dict[str, str], error: str, description: str
) -> None:
    client = await server.register()
    before = await snapshot(server)
    response = await server.http.get(_url(_params(client["client_id"], **change)))
    assert response.headers["cache-control"] == "no-store"
    assert redirect_query(response) == {
        "error": error,
        "error_description": description,
        "state": "st4te",
        "iss": ISSUER,
    }
    assert await snapshot(server) == before


async def test_two_resources_are_invalid_target(server: AS) -> None:
    """RFC 8707 §2: ostiary binds a grant to exactly one resource."""
    client = await server.register()
    pairs = [*_params(client["client_id"]).items(), ("resource", "https://other.example/mcp")]
    response = await server.http.get(_url(pairs))
    assert redirect_query(response) == {
        "error": "invalid_target",
        "error_description": "only one resource may be requested per authorization",
        "state": "st4te",
        "iss": ISSUER,
    }


async def test_error_redirect_without_state_still_carries_iss(server: AS) -> None:
    client = await server.register()
    params = _without(_params(client["client_id"], response_type="token"), "state")
    response = await server.http.get(_url(params))
    assert redirect_query(response) == {
        "error": "unsupported_response_type",
        "error_description": "only response_type=code is supported",
        "iss": ISSUER,
    }


async def test_client_without_the_code_grant(server: AS) -> None:
    client = await server.register(
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["client_credentials"],
        redirect_uris=[REDIRECT],
    )
    response = await server.http.get(_url(_params(client["client_id"])))
    assert redirect_query(response) == {
        "error": "unauthorized_client",
        "error_description": "client is not registered for the authorization_code grant",
        "state": "st4te",
        "iss": ISSUER,
    }


# --- the interaction pages --------------------------------------------------------------------


async def _login_page(server: AS, client_id: str) -> tuple[str, httpx.Response]:
    """Start an authorization; returns the interaction URL and its login page."""
    start = await server.http.get(_url(_params(client_id)))
    assert start.status_code == 303
    interaction = start.headers["location"]
    page = await server.http.get(interaction)
    assert page.status_code == 200
    assert 'name="password"' in page.text
    return interaction, page


async def _consent_page(server: AS, client_id: str) -> tuple[str, httpx.Response]:
    interaction, page = await _login_page(server, client_id)
    form = parse_form(page.text)
    login = await server.http.post(
        form.action,
        data={"csrf_token": form.csrf_token, "username": USERNAME, "password": PASSWORD},
    )
    assert login.status_code == 303
    consent = await server.http.get(interaction)
    assert consent.status_code == 200
    assert 'name="decision"' in consent.text
    return interaction, consent


async def test_login_and_consent_pages_cannot_be_framed(server: AS) -> None:
    client = await server.register()
    _interaction, login = await _login_page(server, client["client_id"])
    assert_page_headers(login)
    assert "form-action 'self';" in login.headers["content-security-policy"]
    _interaction, consent = await _consent_page(server, client["client_id"])
    assert_page_headers(consent)
    # The consent form may post on to the client's redirect origin and nowhere else.
    assert "form-action 'self' http://127.0.0.1:9999;" in consent.headers["content-security-policy"]


async def test_browser_and_session_cookies_are_httponly_and_lax(server: AS) -> None:
    client = await server.register()
    start = await server.http.get(_url(_params(client["client_id"])))
    browser = start.headers["set-cookie"]
    assert browser.startswith("ostiary_browser=")
    assert "HttpOnly" in browser
    assert "SameSite=lax" in browser
    page = await server.http.get(start.headers["location"])
    form = parse_form(page.text)
    login = await server.http.post(
        form.action,
        data={"csrf_token": form.csrf_token, "username": USERNAME, "password": PASSWORD},
    )
    session = login.headers["set-cookie"]
    assert session.startswith("ostiary_session=")
    assert "HttpOnly" in session
    assert "SameSite=lax" in session


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "not-hex"])
async def test_login_without_the_right_csrf_token_is_refused(server: AS, csrf: str | None) -> None:
    client = await server.register()
    interaction, page = await _login_page(server, client["client_id"])
    form = parse_form(page.text)
    data = {"username": USERNAME, "password": PASSWORD}
    if csrf is not None:
        data["csrf_token"] = csrf
    before = await snapshot(server)
    response = await server.http.post(form.action, data=data)
    assert_error_page(response, "invalid_request", CSRF_ERROR)
    assert_page_headers(response)
    assert "set-cookie" not in response.headers
    assert await snapshot(server) == before
    # Nobody is signed in: the interaction still asks for a login.
    again = await server.http.get(interaction)
    assert 'name="password"' in again.text


async def test_csrf_token_of_another_interaction_is_refused(server: AS) -> None:
    client = await server.register()
    _first, first_page = await _login_page(server, client["client_id"])
    _second, second_page = await _login_page(server, client["client_id"])
    stolen = parse_form(first_page.text).csrf_token
    response = await server.http.post(
        parse_form(second_page.text).action,
        data={"csrf_token": stolen, "username": USERNAME, "password": PASSWORD},
    )
    assert_error_page(response, "invalid_request", CSRF_ERROR)


@pytest.mark.parametrize("csrf", [None, "0" * 64])
async def test_consent_without_the_right_csrf_token_is_refused(
    server: AS, csrf: str | None
) -> None:
    client = await server.register()
    _interaction, consent = await _consent_page(server, client["client_id"])
    form = parse_form(consent.text)
    data = {"decision": "approve"}
    if csrf is not None:
        data["csrf_token"] = csrf
    before = await snapshot(server)
    response = await server.http.post(form.action, data=data)
    assert_error_page(response, "invalid_request", CSRF_ERROR)
    assert await snapshot(server) == before
    assert before.stats.live_grants == 0


async def test_consent_with_no_decision(server: AS) -> None:
    client = await server.register()
    _interaction, consent = await _consent_page(server, client["client_id"])
    form = parse_form(consent.text)
    before = await snapshot(server)
    response = await server.http.post(
        form.action, data={"csrf_token": form.csrf_token, "decision": "maybe"}
    )
    assert_error_page(response, "invalid_request", "Choose Approve or Deny.")
    assert await snapshot(server) == before


def _forget_browser(server: AS) -> httpx.Cookies:
    saved = httpx.Cookies(server.http.cookies)
    server.http.cookies.clear()
    return saved


async def test_interaction_from_another_browser_is_refused(server: AS) -> None:
    client = await server.register()
    interaction, page = await _login_page(server, client["client_id"])
    form = parse_form(page.text)
    saved = _forget_browser(server)

    get = await server.http.get(interaction)
    assert_error_page(get, "invalid_request", OTHER_BROWSER)
    post = await server.http.post(
        form.action,
        data={"csrf_token": form.csrf_token, "username": USERNAME, "password": PASSWORD},
    )
    assert_error_page(post, "invalid_request", OTHER_BROWSER)
    assert "set-cookie" not in post.headers

    server.http.cookies.set("ostiary_browser", "someone-elses-browser-cookie")
    other = await server.http.get(interaction)
    assert_error_page(other, "invalid_request", OTHER_BROWSER)

    server.http.cookies = saved
    mine = await server.http.get(interaction)
    assert mine.status_code == 200


async def test_consent_posted_from_another_browser_is_refused(server: AS) -> None:
    client = await server.register()
    _interaction, consent = await _consent_page(server, client["client_id"])
    form = parse_form(consent.text)
    before = await snapshot(server)
    _forget_browser(server)
    response = await server.http.post(
        form.action, data={"csrf_token": form.csrf_token, "decision": "approve"}
    )
    assert_error_page(response, "invalid_request", OTHER_BROWSER)
    assert await snapshot(server) == before


async def test_unknown_interaction(server: AS) -> None:
    response = await server.http.get(f"{ISSUER}/interaction/does-not-exist")
    assert_error_page(response, "invalid_request", GONE)
    post = await server.http.post(
        f"{ISSUER}/interaction/does-not-exist/consent", data={"decision": "approve"}
    )
    assert_error_page(post, "invalid_request", GONE)


async def test_interaction_expires(server: AS) -> None:
    client = await server.register()
    interaction, _page = await _login_page(server, client["client_id"])
    server.clock.now += 601
    response = await server.http.get(interaction)
    assert_error_page(response, "invalid_request", GONE)


async def test_consent_cannot_be_submitted_twice(server: AS) -> None:
    client = await server.register()
    _interaction, consent = await _consent_page(server, client["client_id"])
    form = parse_form(consent.text)
    data = {"csrf_token": form.csrf_token, "decision": "approve"}
    first = await server.http.post(form.action, data=data)
    assert set(redirect_query(first)) == {"code", "state", "iss"}
    before = await snapshot(server)
    second = await server.http.post(form.action, data=data)
    assert_error_page(second, "invalid_request", GONE)
    assert await snapshot(server) == before


async def test_deny_redirects_access_denied_with_iss(server: AS) -> None:
    client = await server.register()
    _interaction, consent = await _consent_page(server, client["client_id"])
    form = parse_form(consent.text)
    before = await snapshot(server)
    response = await server.http.post(
        form.action, data={"csrf_token": form.csrf_token, "decision": "deny"}
    )
    assert response.headers["cache-control"] == "no-store"
    assert redirect_query(response) == {
        "error": "access_denied",
        "error_description": "The user denied the request.",
        "state": "st4te",
        "iss": ISSUER,
    }
    assert await snapshot(server) == before
    user = await server.ctx.storage.get_user_by_username(server.settings.storage.tenant, USERNAME)
    assert user is not None
    consent_record = await server.ctx.storage.get_consent(
        server.settings.storage.tenant, user.user_id, client["client_id"], RESOURCE
    )
    assert consent_record is None


# --- login: throttling and no user enumeration ------------------------------------------------


async def _try_login(
    server: AS, action: str, csrf: str, username: str, password: str
) -> httpx.Response:
    return await server.http.post(
        action, data={"csrf_token": csrf, "username": username, "password": password}
    )


def _normalised(body: str, username: str) -> str:
    return body.replace(f'value="{username}"', 'value="USERNAME"')


async def test_unknown_user_and_wrong_password_look_the_same(server: AS) -> None:
    client = await server.register()
    _interaction, page = await _login_page(server, client["client_id"])
    form = parse_form(page.text)
    wrong_password = await _try_login(server, form.action, form.csrf_token, USERNAME, "nope")
    unknown_user = await _try_login(server, form.action, form.csrf_token, "mallory", "nope")
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert WRONG_LOGIN in wrong_password.text
    assert _normalised(wrong_password.text, USERNAME) == _normalised(unknown_user.text, "mallory")
    same = {k: v for k, v in wrong_password.headers.items() if k != "content-length"}
    assert same == {k: v for k, v in unknown_user.headers.items() if k != "content-length"}


async def test_login_is_throttled_after_repeated_failures(server: AS) -> None:
    client = await server.register()
    _interaction, page = await _login_page(server, client["client_id"])
    form = parse_form(page.text)
    limit = server.settings.security.login_failures_per_account
    for _ in range(limit):
        failed = await _try_login(server, form.action, form.csrf_token, USERNAME, "nope")
        assert failed.status_code == 401
    throttled = await _try_login(server, form.action, form.csrf_token, USERNAME, PASSWORD)
    assert throttled.status_code == 429
    assert "Too many failed sign-in attempts for this account." in throttled.text
    assert "set-cookie" not in throttled.headers
    # An unknown account is throttled the same way (no enumeration through the limit).
    for _ in range(limit):
        await _try_login(server, form.action, form.csrf_token, "mallory", "nope")
    unknown = await _try_login(server, form.action, form.csrf_token, "mallory", "nope")
    assert unknown.status_code == 429
    # The window passes and the right password works again (in a new interaction).
    server.clock.now += 901
    _interaction, page = await _login_page(server, client["client_id"])
    form = parse_form(page.text)
    ok = await _try_login(server, form.action, form.csrf_token, USERNAME, PASSWORD)
    assert ok.status_code == 303


async def test_successful_logins_do_not_count_as_failures(server: AS) -> None:
    """A user who signs in often is never locked out by their own successes."""
    client = await server.register()
    limit = server.settings.security.login_failures_per_account
    for _ in range(limit + 2):
        server.http.cookies.delete("ostiary_session")
        _interaction, page = await _login_page(server, client["client_id"])
        form = parse_form(page.text)
        ok = await _try_login(server, form.action, form.csrf_token, USERNAME, PASSWORD)
        assert ok.status_code == 303, ok.text


async def test_login_form_fields_may_not_repeat(server: AS) -> None:
    client = await server.register()
    _interaction, page = await _login_page(server, client["client_id"])
    form = parse_form(page.text)
    body = urlencode(
        [
            ("csrf_token", form.csrf_token),
            ("username", "mallory"),
            ("username", USERNAME),
            ("password", PASSWORD),
        ]
    )
    response = await server.http.post(form.action, content=body, headers={"content-type": FORM})
    assert_error_page(response, "invalid_request", "parameter username is repeated")
    assert "set-cookie" not in response.headers


def _csrf_of(body: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', body)
    assert match is not None
    return match.group(1)


async def test_login_page_escapes_the_client_name(server: AS) -> None:
    client: dict[str, Any] = await server.register(client_name="<img src=x onerror=alert(1)>")
    _interaction, page = await _login_page(server, client["client_id"])
    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert _csrf_of(page.text)


@pytest.mark.parametrize("resource", ["http://[::1", "https://[zz]/mcp"])
async def test_malformed_ipv6_resource_is_invalid_target(server: AS, resource: str) -> None:
    client = await server.register()
    response = await server.http.get(_url(_params(client["client_id"], resource=resource)))
    assert redirect_query(response) == {
        "error": "invalid_target",
        "error_description": "resource must be an absolute URI",
        "state": "st4te",
        "iss": ISSUER,
    }


@pytest.mark.parametrize("client_id", ["https://[x/a", "https://]+", "https://a]/client.json"])
async def test_bracket_mangled_url_client_id(server: AS, client_id: str) -> None:
    response = await server.http.get(_url(_params(client_id)))
    assert_error_page(response, "invalid_request", "unknown client_id")
