"""Hostile and malformed requests at the token endpoint (OAuth 2.1 §3.2, §4.1.3, §4.3).

Errors follow RFC 6749 §5.2.

Every rejection is checked exactly (status, error, error_description, ``Cache-Control``, the
challenge header) and, where the request must not change anything, against a storage
snapshot taken before it. Every request runs under :func:`guard`: a 5xx fails the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from ostiary.core.cipher import SecretCipher
from ostiary.core.secrets import hash_secret
from ostiary.settings import Settings
from tests.helpers.context import build_context
from tests.integration.conftest import AS, REDIRECT, RESOURCE
from tests.integration.test_hostile_helpers import (
    assert_oauth_error,
    code_for,
    guard,
    snapshot,
    tokens_for,
)

FORM = "application/x-www-form-urlencoded"
BASIC = 'Basic realm="ostiary"'


@pytest.fixture
def server(auth_server: AS) -> AS:
    return guard(auth_server)


async def _confidential(server: AS, method: str = "client_secret_basic") -> dict[str, Any]:
    return await server.register(token_endpoint_auth_method=method)


def _refresh(token: str, client_id: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id, **extra}


# --- malformed requests: nothing is stored, nothing is spent --------------------------------


@pytest.mark.parametrize(
    ("body", "description"),
    [
        ("", "grant_type is required"),
        ("grant_type=", "grant_type is required"),
        ("code=abc", "grant_type is required"),
        ("grant_type=a&grant_type=b", "parameter grant_type is repeated"),
        ("grant_type=authorization_code&code", "request body is not a valid urlencoded form"),
        ("grant_type=%ZZ&&&=", "request body is not a valid urlencoded form"),
    ],
)
async def test_malformed_form_is_invalid_request(server: AS, body: str, description: str) -> None:
    before = await snapshot(server)
    response = await server.http.post("/token", content=body, headers={"content-type": FORM})
    assert_oauth_error(response, 400, "invalid_request", description)
    assert await snapshot(server) == before


async def test_invalid_utf8_body_is_invalid_request(server: AS) -> None:
    response = await server.http.post(
        "/token", content=b"grant_type=\xff\xfe", headers={"content-type": FORM}
    )
    assert_oauth_error(
        response, 400, "invalid_request", "request body is not a valid urlencoded form"
    )


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "multipart/form-data; boundary=x", None]
)
async def test_wrong_content_type_is_invalid_request(server: AS, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await server.http.post(
        "/token", content=b'{"grant_type": "authorization_code"}', headers=headers
    )
    assert_oauth_error(
        response,
        400,
        "invalid_request",
        "content type must be application/x-www-form-urlencoded",
    )


async def test_oversized_body_is_413(server: AS) -> None:
    before = await snapshot(server)
    limit = server.settings.server.max_body_bytes
    body = "grant_type=authorization_code&code=" + "a" * limit
    response = await server.http.post("/token", content=body, headers={"content-type": FORM})
    assert_oauth_error(response, 413, "invalid_request", "request body is too large")
    assert await snapshot(server) == before


async def test_oversized_chunked_body_is_413(server: AS) -> None:
    """No Content-Length: the limit is enforced while streaming."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"a" * 1024

    response = await server.http.post("/token", content=chunks(), headers={"content-type": FORM})
    assert "content-length" not in response.request.headers
    assert_oauth_error(response, 413, "invalid_request", "request body is too large")


async def test_too_many_parameters(server: AS) -> None:
    body = "&".join(f"p{i}=1" for i in range(65))
    response = await server.http.post("/token", content=body, headers={"content-type": FORM})
    assert_oauth_error(response, 400, "invalid_request", "too many parameters")


@pytest.mark.parametrize(
    ("grant_type", "description"),
    [
        ("password", "grant_type 'password' is not supported"),
        ("implicit", "grant_type 'implicit' is not supported"),
        (
            "urn:ietf:params:oauth:grant-type:device_code",
            "grant_type 'urn:ietf:params:oauth:grant-type:device_code' is not supported",
        ),
    ],
)
async def test_unknown_grant_type(server: AS, grant_type: str, description: str) -> None:
    client = await server.register()
    before = await snapshot(server)
    response = await server.http.post(
        "/token", data={"grant_type": grant_type, "client_id": client["client_id"]}
    )
    assert_oauth_error(response, 400, "unsupported_grant_type", description)
    assert await snapshot(server) == before


@pytest.mark.parametrize("grant_type", ['a"b', "a\\b", "é", "a\nb", "x" * 500])
async def test_unknown_grant_type_with_hostile_characters(server: AS, grant_type: str) -> None:
    """The description stays within the RFC 6749 §5.2 charset, whatever the client sent."""
    response = await server.http.post("/token", data={"grant_type": grant_type, "client_id": "c"})
    assert_oauth_error(response, 400, "unsupported_grant_type", "grant_type is not supported")


async def test_client_not_registered_for_the_grant(server: AS) -> None:
    client = await server.register(grant_types=["authorization_code"])
    before = await snapshot(server)
    response = await server.http.post("/token", data=_refresh("whatever", client["client_id"]))
    assert_oauth_error(
        response,
        400,
        "unauthorized_client",
        "client is not registered for grant_type refresh_token",
    )
    assert await snapshot(server) == before


# --- client authentication --------------------------------------------------------------------


async def test_missing_client_id(server: AS) -> None:
    response = await server.http.post(
        "/token", data={"grant_type": "authorization_code", "code": "x"}
    )
    assert_oauth_error(response, 400, "invalid_request", "client_id is required")


async def test_unknown_client(server: AS) -> None:
    response = await server.http.post(
        "/token", data={"grant_type": "authorization_code", "code": "x", "client_id": "nobody"}
    )
    assert_oauth_error(response, 401, "invalid_client", "unknown client")


async def test_unknown_client_with_basic_gets_a_challenge(server: AS) -> None:
    response = await server.http.post(
        "/token", data={"grant_type": "authorization_code", "code": "x"}, auth=("nobody", "pw")
    )
    assert_oauth_error(response, 401, "invalid_client", "unknown client", www_authenticate=BASIC)


async def test_client_secret_basic_with_a_wrong_secret(server: AS) -> None:
    client = await _confidential(server)
    code, verifier = await code_for(server, client["client_id"])
    before = await snapshot(server)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    response = await server.http.post("/token", data=form, auth=(client["client_id"], "wrong"))
    assert_oauth_error(
        response, 401, "invalid_client", "client authentication failed", www_authenticate=BASIC
    )
    assert await snapshot(server) == before
    # The code was not spent by the failed attempt.
    ok = await server.http.post(
        "/token", data=form, auth=(client["client_id"], client["client_secret"])
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    "header", ["Basic", "Basic !!!", "Basic bm9jb2xvbg==", "Basic OnNlY3JldA==", "basic Og=="]
)
async def test_malformed_basic_header(server: AS, header: str) -> None:
    response = await server.http.post(
        "/token",
        data={"grant_type": "authorization_code", "code": "x"},
        headers={"authorization": header},
    )
    assert_oauth_error(
        response,
        401,
        "invalid_client",
        "malformed Basic authorization header",
        www_authenticate=BASIC,
    )


async def test_two_authentication_methods_at_once(server: AS) -> None:
    """RFC 6749 §2.3: a client MUST NOT use more than one authentication method."""
    client = await _confidential(server)
    response = await server.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "x",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
        auth=(client["client_id"], client["client_secret"]),
    )
    assert_oauth_error(
        response, 400, "invalid_request", "use exactly one client authentication method"
    )


async def test_basic_client_id_differs_from_form_client_id(server: AS) -> None:
    client = await _confidential(server)
    response = await server.http.post(
        "/token",
        data={"grant_type": "authorization_code", "code": "x", "client_id": "someone-else"},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert_oauth_error(
        response,
        401,
        "invalid_client",
        "client_id does not match the Authorization header",
        www_authenticate=BASIC,
    )


async def test_confidential_client_presenting_none(server: AS) -> None:
    client = await _confidential(server)
    code, verifier = await code_for(server, client["client_id"])
    before = await snapshot(server)
    response = await server.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": client["client_id"],
        },
    )
    assert_oauth_error(
        response, 401, "invalid_client", "client authentication method does not match registration"
    )
    assert await snapshot(server) == before


async def test_basic_client_using_client_secret_post(server: AS) -> None:
    client = await _confidential(server)
    response = await server.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "x",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    )
    assert_oauth_error(
        response, 401, "invalid_client", "client authentication method does not match registration"
    )


async def test_client_secret_post_with_a_wrong_secret(server: AS) -> None:
    client = await _confidential(server, "client_secret_post")
    response = await server.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "x",
            "client_id": client["client_id"],
            "client_secret": "wrong",
        },
    )
    assert_oauth_error(response, 401, "invalid_client", "client authentication failed")


async def test_public_client_cannot_use_client_credentials(server: AS) -> None:
    client = await server.register()
    before = await snapshot(server)
    response = await server.http.post(
        "/token", data={"grant_type": "client_credentials", "client_id": client["client_id"]}
    )
    assert_oauth_error(
        response,
        400,
        "unauthorized_client",
        "client is not registered for grant_type client_credentials",
    )
    assert await snapshot(server) == before


# --- authorization_code grant -----------------------------------------------------------------


async def _code_form(server: AS, client_id: str, **extra: str) -> dict[str, str]:
    code, verifier = await code_for(server, client_id)
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": client_id,
        **extra,
    }


async def test_missing_code(server: AS) -> None:
    client = await server.register()
    response = await server.http.post(
        "/token", data={"grant_type": "authorization_code", "client_id": client["client_id"]}
    )
    assert_oauth_error(response, 400, "invalid_request", "code is required")


async def test_unknown_code(server: AS) -> None:
    client = await server.register()
    before = await snapshot(server)
    response = await server.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "not-a-code",
            "code_verifier": "a" * 43,
            "client_id": client["client_id"],
        },
    )
    assert_oauth_error(response, 400, "invalid_grant", "authorization code is invalid")
    assert await snapshot(server) == before


async def test_expired_code(server: AS) -> None:
    client = await server.register()
    form = await _code_form(server, client["client_id"])
    server.clock.now += server.settings.tokens.authorization_code_ttl + 1
    response = await server.http.post("/token", data=form)
    assert_oauth_error(response, 400, "invalid_grant", "authorization code expired")


async def _grant_revoked(server: AS) -> None:
    """The only grant of the test is revoked with everything issued under it."""
    snap = await snapshot(server)
    assert snap.grants == []  # list_grants lists live grants only
    assert snap.stats.live_grants == 0
    assert snap.stats.live_access_tokens == 0
    assert snap.stats.live_refresh_tokens == 0


@pytest.mark.parametrize(
    ("change", "error", "description"),
    [
        ({"code_verifier": ""}, "invalid_request", "code_verifier is required"),
        (
            {"code_verifier": "short"},
            "invalid_grant",
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        ),
        (
            {"code_verifier": "A" * 43},
            "invalid_grant",
            "code_verifier does not match the code_challenge",
        ),
        (
            {"redirect_uri": "http://127.0.0.1:9999/other"},
            "invalid_grant",
            "redirect_uri does not match the authorization request",
        ),
        (
            {"resource": "https://elsewhere.example/mcp"},
            "invalid_target",
            "resource does not match the original authorization",
        ),
        (
            {"resource": "not a uri"},
            "invalid_target",
            "resource must be an absolute URI",
        ),
    ],
)
async def test_bad_code_exchange_spends_the_code(
    server: AS, change: dict[str, str], error: str, description: str
) -> None:
    """The code is single-use whatever happens: a failed exchange leaves no usable grant."""
    client = await server.register()
    form = await _code_form(server, client["client_id"])
    good = dict(form)
    response = await server.http.post("/token", data={**form, **change})
    assert_oauth_error(response, 400, error, description)
    await _grant_revoked(server)
    retry = await server.http.post("/token", data=good)
    assert_oauth_error(
        retry,
        400,
        "invalid_grant",
        "authorization code was already used; tokens issued from it are revoked",
    )


async def test_code_replay_revokes_tokens_and_refresh(server: AS) -> None:
    """OAuth 2.1 §4.1.2: a replayed code revokes every token issued from it."""
    client = await server.register()
    form = await _code_form(server, client["client_id"])
    first = await server.http.post("/token", data=form)
    assert first.status_code == 200
    tokens = first.json()
    live = await snapshot(server)
    assert live.stats.live_access_tokens == 1
    assert live.stats.live_refresh_tokens == 1

    replay = await server.http.post("/token", data=form)
    assert_oauth_error(
        replay,
        400,
        "invalid_grant",
        "authorization code was already used; tokens issued from it are revoked",
    )
    await _grant_revoked(server)
    refresh = await server.http.post(
        "/token", data=_refresh(tokens["refresh_token"], client["client_id"])
    )
    assert_oauth_error(refresh, 400, "invalid_grant", "refresh token was revoked")


async def test_code_presented_by_another_client(server: AS) -> None:
    victim = await server.register()
    thief = await server.register()
    form = await _code_form(server, victim["client_id"])
    response = await server.http.post("/token", data={**form, "client_id": thief["client_id"]})
    assert_oauth_error(
        response, 400, "invalid_grant", "authorization code was issued to another client"
    )
    await _grant_revoked(server)


# --- refresh_token grant ----------------------------------------------------------------------


async def test_unknown_refresh_token(server: AS) -> None:
    client = await server.register()
    before = await snapshot(server)
    response = await server.http.post("/token", data=_refresh("nope", client["client_id"]))
    assert_oauth_error(response, 400, "invalid_grant", "refresh token is invalid")
    assert await snapshot(server) == before


async def test_missing_refresh_token(server: AS) -> None:
    client = await server.register()
    response = await server.http.post(
        "/token", data={"grant_type": "refresh_token", "client_id": client["client_id"]}
    )
    assert_oauth_error(response, 400, "invalid_request", "refresh_token is required")


def _audited(server: AS) -> list[tuple[str, dict[str, Any]]]:
    """Every audit event the server emits from now on, in order."""
    events: list[tuple[str, dict[str, Any]]] = []
    server.ctx.audit.subscribe(lambda event, record: events.append((event, record)))
    return events


async def _stored_refresh(server: AS, raw: str) -> Any:
    return await server.ctx.storage.get_refresh_token(
        server.settings.storage.tenant, hash_secret(raw)
    )


async def test_reused_refresh_token_after_grace_revokes_the_grant(server: AS) -> None:
    """RFC 9700 §4.14.2: the previous token presented after the window means theft."""
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    rotated = await server.http.post(
        "/token", data=_refresh(tokens["refresh_token"], client["client_id"])
    )
    assert rotated.status_code == 200
    successor = rotated.json()["refresh_token"]
    events = _audited(server)

    server.clock.now += server.settings.tokens.refresh_grace_seconds + 1
    reuse = await server.http.post(
        "/token", data=_refresh(tokens["refresh_token"], client["client_id"])
    )
    assert_oauth_error(
        reuse, 400, "invalid_grant", "refresh token was already used; the grant is revoked"
    )
    await _grant_revoked(server)
    assert [event for event, _ in events] == ["refresh_token.reused"]
    assert events[0][1]["client_id"] == client["client_id"]
    dead = await server.http.post("/token", data=_refresh(successor, client["client_id"]))
    assert_oauth_error(dead, 400, "invalid_grant", "refresh token was revoked")


@pytest.mark.parametrize("later", [0, 1, 29, 30])
async def test_previous_refresh_token_within_grace_returns_the_same_successor(
    server: AS, later: int
) -> None:
    """A lost response or a concurrent refresh: the retry gets the successor already issued
    (and a fresh access token), never a second chain; the grant keeps one live token."""
    assert server.settings.tokens.refresh_grace_seconds == 30
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    first = await server.http.post(
        "/token", data=_refresh(tokens["refresh_token"], client["client_id"])
    )
    assert first.status_code == 200
    events = _audited(server)

    server.clock.now += later
    second = await server.http.post(
        "/token", data=_refresh(tokens["refresh_token"], client["client_id"])
    )

    assert second.status_code == 200, second.text
    assert second.headers["cache-control"] == "no-store"
    assert second.json()["refresh_token"] == first.json()["refresh_token"]
    assert second.json()["access_token"] != first.json()["access_token"]
    assert second.json()["scope"] == first.json()["scope"]
    assert [event for event, _ in events] == ["refresh_token.superseded", "token.refreshed"]
    snap = await snapshot(server)
    assert snap.grants[0].revoked_at is None
    assert (snap.stats.live_grants, snap.stats.live_refresh_tokens) == (1, 1)
    old = await _stored_refresh(server, tokens["refresh_token"])
    assert old.successor_hash == hash_secret(first.json()["refresh_token"])
    assert old.sealed_successor.startswith("v1.")
    assert first.json()["refresh_token"] not in old.sealed_successor
    # The successor works, once; then the token before it is two rotations old.
    third = await server.http.post(
        "/token", data=_refresh(first.json()["refresh_token"], client["client_id"])
    )
    assert third.status_code == 200, third.text
    assert third.json()["refresh_token"] != first.json()["refresh_token"]
    assert (await _stored_refresh(server, tokens["refresh_token"])).sealed_successor is None
    assert (await snapshot(server)).stats.live_refresh_tokens == 1


async def test_previous_refresh_token_after_its_successor_rotated_revokes_the_grant(
    server: AS,
) -> None:
    """Within the window but the client moved on: the successor was itself rotated."""
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    first = await server.http.post(
        "/token", data=_refresh(tokens["refresh_token"], client["client_id"])
    )
    second = await server.http.post(
        "/token", data=_refresh(first.json()["refresh_token"], client["client_id"])
    )
    assert (first.status_code, second.status_code) == (200, 200)
    events = _audited(server)

    server.clock.now += 1
    reuse = await server.http.post(
        "/token", data=_refresh(tokens["refresh_token"], client["client_id"])
    )

    assert_oauth_error(
        reuse, 400, "invalid_grant", "refresh token was already used; the grant is revoked"
    )
    assert [event for event, _ in events] == ["refresh_token.reused"]
    await _grant_revoked(server)
    for raw in (first.json()["refresh_token"], second.json()["refresh_token"]):
        dead = await server.http.post("/token", data=_refresh(raw, client["client_id"]))
        assert_oauth_error(dead, 400, "invalid_grant", "refresh token was revoked")


@pytest.mark.as_settings(tokens={"refresh_grace_seconds": 0})
async def test_without_grace_a_replay_in_the_same_second_revokes_the_grant(server: AS) -> None:
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    first = await server.http.post(
        "/token", data=_refresh(tokens["refresh_token"], client["client_id"])
    )
    assert first.status_code == 200
    old = await _stored_refresh(server, tokens["refresh_token"])
    assert (old.successor_hash, old.sealed_successor) == (
        hash_secret(first.json()["refresh_token"]),
        None,
    )

    replay = await server.http.post(
        "/token", data=_refresh(tokens["refresh_token"], client["client_id"])
    )

    assert_oauth_error(
        replay, 400, "invalid_grant", "refresh token was already used; the grant is revoked"
    )
    await _grant_revoked(server)


async def test_a_successor_sealed_with_another_storage_key_is_a_503_not_a_new_chain(
    auth_server: AS,
) -> None:
    """A node with the wrong storage key cannot open the successor: it must not mint one.

    Unguarded (``auth_server``): the 503 is the expected answer here.
    """
    server = auth_server
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    first = await server.http.post(
        "/token", data=_refresh(tokens["refresh_token"], client["client_id"])
    )
    assert first.status_code == 200
    server.ctx.cipher = SecretCipher(bytes(range(100, 132)), source="another key")
    events = _audited(server)

    retry = await server.http.post(
        "/token", data=_refresh(tokens["refresh_token"], client["client_id"])
    )

    assert_oauth_error(
        retry,
        503,
        "temporarily_unavailable",
        "the refresh token's successor cannot be read; try again later",
    )
    assert retry.headers["retry-after"] == "1"
    assert [event for event, _ in events] == [
        "refresh_token.superseded",
        "refresh_token.successor_unavailable",
    ]
    snap = await snapshot(server)
    assert (snap.stats.live_grants, snap.stats.live_refresh_tokens) == (1, 1)


async def test_refresh_cannot_widen_scope(server: AS) -> None:
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    assert tokens["scope"] == "mcp:read"
    before = await snapshot(server)
    response = await server.http.post(
        "/token",
        data=_refresh(tokens["refresh_token"], client["client_id"], scope="mcp:read mcp:write"),
    )
    assert_oauth_error(
        response, 400, "invalid_scope", "scope exceeds the original grant: mcp:write"
    )
    assert await snapshot(server) == before
    still = await server.http.post(
        "/token", data=_refresh(tokens["refresh_token"], client["client_id"])
    )
    assert still.status_code == 200, still.text


async def test_refresh_with_another_resource(server: AS) -> None:
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    before = await snapshot(server)
    response = await server.http.post(
        "/token",
        data=_refresh(
            tokens["refresh_token"], client["client_id"], resource="https://evil.example/mcp"
        ),
    )
    assert_oauth_error(
        response, 400, "invalid_target", "resource does not match the original authorization"
    )
    assert await snapshot(server) == before


async def test_refresh_with_another_clients_token(server: AS) -> None:
    victim = await server.register()
    thief = await server.register()
    tokens = await tokens_for(server, victim["client_id"])
    record_before = await server.ctx.storage.get_refresh_token(
        server.settings.storage.tenant, hash_secret(tokens["refresh_token"])
    )
    before = await snapshot(server)
    response = await server.http.post(
        "/token", data=_refresh(tokens["refresh_token"], thief["client_id"])
    )
    assert_oauth_error(response, 400, "invalid_grant", "refresh token was issued to another client")
    assert await snapshot(server) == before
    record_after = await server.ctx.storage.get_refresh_token(
        server.settings.storage.tenant, hash_secret(tokens["refresh_token"])
    )
    assert record_after == record_before


async def test_refresh_keeps_the_resource(server: AS) -> None:
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    response = await server.http.post(
        "/token", data=_refresh(tokens["refresh_token"], client["client_id"], resource=RESOURCE)
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"


# --- redirect_uri at the token endpoint (OAuth 2.1 §4.1.3) ------------------------------------

WEB_REDIRECT = "https://app.example/cb"


async def _web_code(server: AS, **params: str) -> tuple[dict[str, Any], str, str]:
    """A code for a web client with one https redirect URI, ``redirect_uri`` omitted."""
    from urllib.parse import parse_qs, urlsplit

    from tests.helpers.browserless import authorize
    from tests.integration.conftest import ISSUER, PASSWORD, USERNAME, pkce_pair

    client = await server.register(
        application_type="web",
        redirect_uris=[WEB_REDIRECT],
        token_endpoint_auth_method="client_secret_post",
    )
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": client["client_id"],
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s",
        **params,
    }
    location = await authorize(
        server.http,
        f"{ISSUER}/authorize?{urlencode(query)}",
        username=USERNAME,
        password=PASSWORD,
    )
    assert location.startswith(WEB_REDIRECT + "?"), location
    return client, parse_qs(urlsplit(location).query)["code"][0], verifier


async def test_redirect_uri_omitted_everywhere(server: AS) -> None:
    client, code, verifier = await _web_code(server)
    response = await server.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    )
    assert response.status_code == 200, response.text


async def test_redirect_uri_optional_at_token_when_omitted_at_authorize(server: AS) -> None:
    """OAuth 2.1 §4.1.3: without redirect_uri at /authorize the parameter is OPTIONAL here."""
    client, code, verifier = await _web_code(server)
    response = await server.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": WEB_REDIRECT,
            "code_verifier": verifier,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    )
    assert response.status_code == 200, response.text


async def test_unregistered_redirect_uri_at_token_when_omitted_at_authorize(server: AS) -> None:
    client, code, verifier = await _web_code(server)
    response = await server.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://evil.example/cb",
            "code_verifier": verifier,
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        },
    )
    assert_oauth_error(
        response, 400, "invalid_grant", "redirect_uri does not match the authorization request"
    )
    await _grant_revoked(server)


async def test_redirect_uri_given_at_authorize_but_omitted_at_token(server: AS) -> None:
    client = await server.register()
    form = await _code_form(server, client["client_id"])
    del form["redirect_uri"]
    response = await server.http.post("/token", data=form)
    assert_oauth_error(
        response, 400, "invalid_grant", "redirect_uri does not match the authorization request"
    )


async def test_loopback_port_used_at_authorize_must_be_repeated(server: AS) -> None:
    """RFC 8252 §7.3 allows any port at /authorize; the token request repeats that exact URI."""
    client = await server.register()
    code, verifier = await code_for(
        server, client["client_id"], redirect_uri="http://127.0.0.1:4321/callback"
    )
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "client_id": client["client_id"],
        "redirect_uri": REDIRECT,
    }
    response = await server.http.post("/token", data=form)
    assert_oauth_error(
        response, 400, "invalid_grant", "redirect_uri does not match the authorization request"
    )


# --- expiry and client_credentials ------------------------------------------------------------


async def test_idle_refresh_token_expires(server: AS) -> None:
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    server.clock.now += server.settings.tokens.refresh_token_idle_ttl
    response = await server.http.post(
        "/token", data=_refresh(tokens["refresh_token"], client["client_id"])
    )
    assert_oauth_error(response, 400, "invalid_grant", "refresh token expired")


@pytest.mark.parametrize(
    ("extra", "error", "description"),
    [
        ({"scope": "admin"}, "invalid_scope", "unsupported scope: admin"),
        ({"scope": "offline_access"}, "invalid_scope", "unsupported scope: offline_access"),
        (
            {"resource": "https://elsewhere.example/mcp"},
            "invalid_target",
            "resource is not served by this authorization server",
        ),
    ],
)
async def test_client_credentials_rejections_store_nothing(
    server: AS, extra: dict[str, str], error: str, description: str
) -> None:
    client = await server.register(
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["client_credentials"],
        redirect_uris=[],
        application_type="web",
    )
    before = await snapshot(server)
    response = await server.http.post(
        "/token",
        data={"grant_type": "client_credentials", **extra},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert_oauth_error(response, 400, error, description)
    assert await snapshot(server) == before


async def test_client_credentials_two_resources(server: AS) -> None:
    client = await server.register(
        token_endpoint_auth_method="client_secret_basic",
        grant_types=["client_credentials"],
        redirect_uris=[],
        application_type="web",
    )
    response = await server.http.post(
        "/token",
        content=urlencode(
            [
                ("grant_type", "client_credentials"),
                ("resource", RESOURCE),
                ("resource", "https://other.example/mcp"),
            ]
        ),
        headers={"content-type": FORM},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert_oauth_error(
        response, 400, "invalid_target", "only one resource may be requested per authorization"
    )


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_methods_are_405(server: AS, method: str) -> None:
    response = await server.http.request(method, "/token")
    assert response.status_code == 405


async def test_refresh_with_a_malformed_ipv6_resource(server: AS) -> None:
    client = await server.register()
    tokens = await tokens_for(server, client["client_id"])
    response = await server.http.post(
        "/token",
        data=_refresh(tokens["refresh_token"], client["client_id"], resource="https://[zz]/mcp"),
    )
    assert_oauth_error(response, 400, "invalid_target", "resource must be an absolute URI")


@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect"])
async def test_bracket_mangled_url_client_id(server: AS, path: str) -> None:
    response = await server.http.post(
        path,
        data={
            "grant_type": "authorization_code",
            "code": "x",
            "token": "x",
            "client_id": "https://[x/a",
        },
    )
    assert_oauth_error(response, 401, "invalid_client", "unknown client")


async def test_expired_client_secret(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """tokens.client_secret_ttl: a DCR secret past client_secret_expires_at no longer works."""
    from ostiary.server.app import create_authorization_server, startup
    from ostiary.storage import open_storage
    from tests.integration.conftest import ISSUER, Clock

    settings = settings_factory(issuer=ISSUER, tokens={"client_secret_ttl": 3600})
    clock = Clock()
    ctx = build_context(settings, open_storage(settings), clock=clock)
    await startup(ctx)
    transport = httpx.ASGITransport(app=create_authorization_server(settings, context=ctx))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        registered = await http.post(
            "/register",
            json={
                "redirect_uris": ["https://app.example/cb"],
                "token_endpoint_auth_method": "client_secret_basic",
                "grant_types": ["client_credentials"],
                "application_type": "web",
            },
        )
        body = registered.json()
        assert body["client_secret_expires_at"] == clock.now + 3600
        auth = (body["client_id"], body["client_secret"])
        form = {"grant_type": "client_credentials"}
        assert (await http.post("/token", data=form, auth=auth)).status_code == 200
        clock.now += 3600
        response = await http.post("/token", data=form, auth=auth)
        assert_oauth_error(
            response,
            401,
            "invalid_client",
            "client secret has expired",
            www_authenticate=BASIC,
        )
    await ctx.storage.close()
