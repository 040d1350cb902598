"""The whole flow over real HTTP against a running ``ostiary serve`` process (issue 2, Must show).

Register (DCR, and CIMD from a real HTTPS document server), authorize through the real login
and consent forms, token, refresh, revoke and introspect, with ``/stats`` checked before and
after and ``/health`` up. Nothing is in-process: every call crosses a socket.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.e2e.server import STATS_TOKEN, RunningServer, free_port, running_server
from tests.helpers.browserless import authorize
from tests.integration.conftest import pkce_pair
from tests.integration.test_cimd import Reply, https_server, make_pki

pytestmark = pytest.mark.e2e

USERNAME = "alice"
PASSWORD = "correct horse battery"
REDIRECT = "http://127.0.0.1:9999/callback"


def _authorize_url(server: RunningServer, client_id: str, challenge: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "e2e-state",
        "resource": f"{server.issuer}/mcp",
        "scope": "mcp:read offline_access",
    }
    return f"{server.issuer}/authorize?{urlencode(params)}"


async def _code(http: httpx.AsyncClient, server: RunningServer, client_id: str) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    location = await authorize(
        http, _authorize_url(server, client_id, challenge), username=USERNAME, password=PASSWORD
    )
    assert location.startswith(REDIRECT + "?"), location
    query = parse_qs(urlsplit(location).query)
    assert query["iss"] == [server.issuer]
    assert query["state"] == ["e2e-state"]
    return query["code"][0], verifier


async def _stats(http: httpx.AsyncClient, server: RunningServer) -> dict[str, Any]:
    response = await http.get(
        f"{server.issuer}/stats", headers={"Authorization": f"Bearer {STATS_TOKEN}"}
    )
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


async def _introspect(
    http: httpx.AsyncClient, server: RunningServer, caller: tuple[str, str], token: str
) -> dict[str, Any]:
    response = await http.post(f"{server.issuer}/introspect", data={"token": token}, auth=caller)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_register_authorize_token_refresh_revoke_introspect(tmp_path: Path) -> None:
    with running_server(tmp_path / "as") as server:
        server.add_user(USERNAME, PASSWORD)
        async with httpx.AsyncClient(timeout=30) as http:
            health = await http.get(f"{server.issuer}/health")
            assert health.status_code == 200
            assert health.json()["status"] == "ok"
            assert await _stats(http, server) == {
                "clients": 0,
                "users": 1,
                "live_grants": 0,
                "live_authorization_codes": 0,
                "live_access_tokens": 0,
                "live_refresh_tokens": 0,
            }

            # Dynamic registration: a public native client and a confidential web client.
            registered = await http.post(
                f"{server.issuer}/register",
                json={
                    "client_name": "e2e public",
                    "redirect_uris": [REDIRECT],
                    "token_endpoint_auth_method": "none",
                    "application_type": "native",
                },
            )
            assert registered.status_code == 201, registered.text
            client_id = registered.json()["client_id"]
            confidential = await http.post(
                f"{server.issuer}/register",
                json={
                    "client_name": "e2e resource server",
                    "redirect_uris": ["https://rs.example/cb"],
                    "token_endpoint_auth_method": "client_secret_basic",
                    "application_type": "web",
                },
            )
            assert confidential.status_code == 201, confidential.text
            caller = (confidential.json()["client_id"], confidential.json()["client_secret"])

            # Authorize through the real login and consent forms, then redeem the code.
            code, verifier = await _code(http, server, client_id)
            assert (await _stats(http, server))["live_authorization_codes"] == 1
            token_form = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
                "client_id": client_id,
            }
            issued = await http.post(f"{server.issuer}/token", data=token_form)
            assert issued.status_code == 200, issued.text
            assert issued.headers["cache-control"] == "no-store"
            tokens = issued.json()
            assert tokens["token_type"] == "Bearer"
            assert tokens["scope"] == "mcp:read offline_access"
            assert await _stats(http, server) == {
                "clients": 2,
                "users": 1,
                "live_grants": 1,
                "live_authorization_codes": 0,
                "live_access_tokens": 1,
                "live_refresh_tokens": 1,
            }

            access = await _introspect(http, server, caller, tokens["access_token"])
            assert access["active"] is True
            assert access["client_id"] == client_id
            assert access["aud"] == f"{server.issuer}/mcp"
            assert access["scope"] == "mcp:read"

            # Refresh rotates the refresh token; the old one is no longer active.
            refreshed = await http.post(
                f"{server.issuer}/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": tokens["refresh_token"],
                    "client_id": client_id,
                },
            )
            assert refreshed.status_code == 200, refreshed.text
            new = refreshed.json()
            assert new["refresh_token"] != tokens["refresh_token"]
            old = await _introspect(http, server, caller, tokens["refresh_token"])
            assert old == {"active": False}
            live = await _introspect(http, server, caller, new["refresh_token"])
            assert live["active"] is True
            assert live["token_type"] == "refresh_token"
            stats = await _stats(http, server)
            assert stats["live_access_tokens"] == 2
            assert stats["live_refresh_tokens"] == 1

            # Revoking the refresh token revokes the grant and everything issued under it.
            revoked = await http.post(
                f"{server.issuer}/revoke",
                data={"token": new["refresh_token"], "client_id": client_id},
            )
            assert revoked.status_code == 200
            for token in (new["refresh_token"], new["access_token"], tokens["access_token"]):
                assert await _introspect(http, server, caller, token) == {"active": False}
            after = await _stats(http, server)
            assert after["live_grants"] == 0
            assert after["live_access_tokens"] == 0
            assert after["live_refresh_tokens"] == 0
            dead = await http.post(
                f"{server.issuer}/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": new["refresh_token"],
                    "client_id": client_id,
                },
            )
            assert dead.status_code == 400
            assert dead.json() == {
                "error": "invalid_grant",
                "error_description": "refresh token was revoked",
            }

            # A replayed code is refused over the wire too.
            replay = await http.post(f"{server.issuer}/token", data=token_form)
            assert replay.status_code == 400
            assert replay.json()["error"] == "invalid_grant"

            # RFC 7592: the registration is readable with its token, then deleted.
            management = registered.json()["registration_client_uri"]
            bearer = {"authorization": f"Bearer {registered.json()['registration_access_token']}"}
            assert (await http.get(management, headers=bearer)).status_code == 200
            assert (await http.delete(management, headers=bearer)).status_code == 204
            assert (await _stats(http, server))["clients"] == 1


async def test_cimd_client_over_http(tmp_path: Path) -> None:
    """A URL client_id whose document the running server fetches over real HTTPS.

    The server trusts the throwaway CA through ``SSL_CERT_FILE`` (OpenSSL's default verify
    path) and may fetch from loopback only because ``allow_private_fetch`` is on.
    """
    pki = make_pki(tmp_path)
    async with https_server(pki) as documents:
        client_id = f"https://127.0.0.1:{documents.port}/oauth/client.json"
        documents.routes["/oauth/client.json"] = _json_reply(
            {
                "client_id": client_id,
                "client_name": "e2e metadata client",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            }
        )
        with running_server(
            tmp_path / "as",
            SSL_CERT_FILE=str(pki.ca_pem),
            OSTIARY_SECURITY__ALLOW_PRIVATE_FETCH="true",
        ) as server:
            server.add_user(USERNAME, PASSWORD)
            async with httpx.AsyncClient(timeout=30) as http:
                code, verifier = await _code(http, server, client_id)
                issued = await http.post(
                    f"{server.issuer}/token",
                    data={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": REDIRECT,
                        "code_verifier": verifier,
                        "client_id": client_id,
                    },
                )
                assert issued.status_code == 200, issued.text
                stats = await _stats(http, server)
                assert stats["clients"] == 0
                assert stats["live_grants"] == 1
        assert documents.hits["/oauth/client.json"] == 1


def _json_reply(document: dict[str, Any]) -> Reply:
    return Reply(200, json.dumps(document).encode(), {"Content-Type": "application/json"})


async def test_two_processes_never_spend_a_code_or_refresh_token_twice(tmp_path: Path) -> None:
    """DESIGN "Bad input": concurrent requests across processes sharing PostgreSQL."""
    import asyncio
    import base64
    import secrets
    import uuid

    from tests._services import postgres_url

    shared = {
        "OSTIARY_STORAGE__URL": postgres_url(),
        "OSTIARY_STORAGE__TENANT": f"t-{uuid.uuid4().hex}",
        # Two data_dirs, one database: both need the same storage key (docs/storage-schema.md).
        "OSTIARY_STORAGE__ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "OSTIARY_TOKENS__REFRESH_GRACE_SECONDS": "0",
        "OSTIARY_SECURITY__RATE_LIMIT_PER_MINUTE": "1000",
        # tests/helpers/browserless.py cannot follow the instant redirect of a remembered
        # consent, so every authorization here shows the consent page.
        "OSTIARY_SECURITY__REMEMBER_CONSENT": "false",
    }
    with running_server(tmp_path / "a", free_port(), **shared) as first:
        first.add_user(USERNAME, PASSWORD)
        with running_server(tmp_path / "b", free_port(), **shared) as second:
            async with httpx.AsyncClient(timeout=30) as http:
                registered = await http.post(
                    f"{first.issuer}/register",
                    json={
                        "client_name": "race",
                        "redirect_uris": [REDIRECT],
                        "token_endpoint_auth_method": "none",
                        "application_type": "native",
                    },
                )
                client_id = registered.json()["client_id"]

                async def race(form: dict[str, str]) -> list[httpx.Response]:
                    return list(
                        await asyncio.gather(
                            *(
                                http.post(f"{server.issuer}/token", data=form)
                                for server in (first, second) * 4
                            )
                        )
                    )

                code, verifier = await _code(http, first, client_id)
                redeemed = await race(
                    {
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": REDIRECT,
                        "code_verifier": verifier,
                        "client_id": client_id,
                    }
                )
                assert sorted(r.status_code for r in redeemed) == [200] + [400] * 7

                code, verifier = await _code(http, first, client_id)
                issued = await http.post(
                    f"{second.issuer}/token",
                    data={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": REDIRECT,
                        "code_verifier": verifier,
                        "client_id": client_id,
                    },
                )
                assert issued.status_code == 200, issued.text
                refreshed = await race(
                    {
                        "grant_type": "refresh_token",
                        "refresh_token": issued.json()["refresh_token"],
                        "client_id": client_id,
                    }
                )
                assert sorted(r.status_code for r in refreshed) == [200] + [400] * 7
                for response in [*redeemed, *refreshed]:
                    if response.status_code == 400:
                        assert response.json()["error"] == "invalid_grant"
                stats = await _stats(http, second)
                assert stats["live_grants"] == 0
                assert stats["live_refresh_tokens"] == 0


async def test_kill_9_loses_no_committed_grant_and_unspends_nothing(tmp_path: Path) -> None:
    """DESIGN "Bad input": after SIGKILL, grants survive and spent codes stay spent."""
    data_dir = tmp_path / "as"
    with running_server(data_dir) as server:
        server.add_user(USERNAME, PASSWORD)
        async with httpx.AsyncClient(timeout=30) as http:
            registered = await http.post(
                f"{server.issuer}/register",
                json={
                    "client_name": "crash",
                    "redirect_uris": [REDIRECT],
                    "token_endpoint_auth_method": "none",
                    "application_type": "native",
                },
            )
            client_id = registered.json()["client_id"]
            code, verifier = await _code(http, server, client_id)
            code_form = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
                "client_id": client_id,
            }
            issued = await http.post(f"{server.issuer}/token", data=code_form)
            assert issued.status_code == 200, issued.text
        server.process.kill()
        server.process.wait(10)

    with running_server(data_dir) as restarted:
        async with httpx.AsyncClient(timeout=30) as http:
            # The grant survived: its refresh token still works after the crash.
            refresh = await http.post(
                f"{restarted.issuer}/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": issued.json()["refresh_token"],
                    "client_id": client_id,
                },
            )
            assert refresh.status_code == 200, refresh.text
            # The code spent before the crash stays spent, and replaying it revokes the grant.
            replay = await http.post(f"{restarted.issuer}/token", data=code_form)
            assert replay.status_code == 400
            assert replay.json()["error"] == "invalid_grant"
            dead = await http.post(
                f"{restarted.issuer}/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": refresh.json()["refresh_token"],
                    "client_id": client_id,
                },
            )
            assert dead.json() == {
                "error": "invalid_grant",
                "error_description": "refresh token was revoked",
            }
            assert (await _stats(http, restarted))["clients"] == 1
