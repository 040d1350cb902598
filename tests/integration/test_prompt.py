"""``prompt`` at the authorization endpoint (OpenID Connect Core 1.0 §3.1.2.1, §3.1.2.6)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.helpers.browserless import authorize, parse_form
from tests.integration.conftest import AS, ISSUER, PASSWORD, REDIRECT, USERNAME, pkce_pair


def _query(location: str) -> dict[str, list[str]]:
    assert location.startswith(REDIRECT), location
    return parse_qs(urlsplit(location).query)


async def _signed_in_with_consent(server: AS) -> str:
    """A client the signed-in test user approved once; its id.

    Confidential, so its consent is remembered by default (RFC 8252 §8.6: a public client's
    is not, see test_flow.py).
    """
    client = await server.register(token_endpoint_auth_method="client_secret_basic")
    url = server.authorize_url(client["client_id"], pkce_pair()[1])
    await authorize(server.http, url, username=USERNAME, password=PASSWORD)
    return str(client["client_id"])


async def _start(server: AS, client_id: str, **extra: str) -> str:
    response = await server.http.get(server.authorize_url(client_id, pkce_pair()[1], **extra))
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


async def test_metadata_lists_the_prompt_values(auth_server: AS) -> None:
    document = (await auth_server.http.get("/.well-known/oauth-authorization-server")).json()
    assert document["prompt_values_supported"] == ["none", "login", "consent", "select_account"]


async def test_prompt_none_without_a_session_is_login_required(auth_server: AS) -> None:
    client = await auth_server.register()
    query = _query(await _start(auth_server, client["client_id"], prompt="none"))
    assert query == {
        "error": ["login_required"],
        "error_description": ["The user must log in."],
        "state": ["st4te"],
        "iss": [ISSUER],
    }


async def test_prompt_none_signed_in_without_consent_is_consent_required(auth_server: AS) -> None:
    await _signed_in_with_consent(auth_server)
    other = await auth_server.register(client_name="Never approved")
    query = _query(await _start(auth_server, other["client_id"], prompt="none"))
    assert query["error"] == ["consent_required"]
    assert query["iss"] == [ISSUER]
    assert query["state"] == ["st4te"]


async def test_prompt_none_with_session_and_consent_returns_a_code(auth_server: AS) -> None:
    client_id = await _signed_in_with_consent(auth_server)
    assert set(_query(await _start(auth_server, client_id, prompt="none"))) == {
        "code",
        "state",
        "iss",
    }


async def test_prompt_none_with_another_value_is_invalid_request(auth_server: AS) -> None:
    client = await auth_server.register()
    query = _query(await _start(auth_server, client["client_id"], prompt="none consent"))
    assert query["error"] == ["invalid_request"]
    assert query["error_description"] == ["prompt=none cannot be combined with other prompt values"]


@pytest.mark.parametrize("value", ["consent", "login consent"])
async def test_prompt_consent_shows_the_page_despite_a_remembered_consent(
    auth_server: AS, value: str
) -> None:
    client_id = await _signed_in_with_consent(auth_server)
    location = await _start(auth_server, client_id, prompt=value)
    assert location.startswith(f"{ISSUER}/interaction/")
    page = await auth_server.http.get(location)
    if value == "consent":  # still signed in: straight to the consent page
        assert 'name="decision"' in page.text
    else:
        assert 'name="password"' in page.text


@pytest.mark.parametrize("value", ["login", "select_account"])
async def test_prompt_login_asks_a_signed_in_user_to_sign_in_again(
    auth_server: AS, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="ostiary.audit")
    client_id = await _signed_in_with_consent(auth_server)
    location = await _start(auth_server, client_id, prompt=value)
    assert location.startswith(f"{ISSUER}/interaction/")
    page = await auth_server.http.get(location)
    assert 'name="password"' in page.text  # the existing session does not count
    form = parse_form(page.text)
    # The set-aside session cannot skip the login by posting the consent form directly.
    skipped = await auth_server.http.post(
        f"{location}/consent", data={"csrf_token": form.csrf_token, "decision": "approve"}
    )
    assert 'name="password"' in skipped.text
    login = await auth_server.http.post(
        form.action,
        data={"csrf_token": form.csrf_token, "username": USERNAME, "password": PASSWORD},
    )
    assert login.status_code == 303
    # Signed in again and the consent is remembered: the code, with no consent page.
    done = await auth_server.http.get(location)
    assert done.status_code == 303
    assert set(_query(done.headers["location"])) == {"code", "state", "iss"}
    logins = [r for r in caplog.records if '"event": "login.succeeded"' in r.getMessage()]
    assert len(logins) == 2  # the first sign-in, and the one prompt=login asked for


async def test_unknown_prompt_values_are_ignored(auth_server: AS) -> None:
    client_id = await _signed_in_with_consent(auth_server)
    assert set(_query(await _start(auth_server, client_id, prompt="create"))) == {
        "code",
        "state",
        "iss",
    }
