"""``ostiary serve`` as a real process, configured by environment, against the real IdP."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests.e2e.server import OSTIARY, free_port, running_server
from tests.federation._flow import approve, provider_button
from tests.federation._idp import CLIENT_ID, CLIENT_SECRET, start_idp
from tests.federation.conftest import TOKEN_KEY, Browser, jwt_claims, pkce_pair

pytestmark = pytest.mark.e2e
REDIRECT = "http://127.0.0.1:9999/callback"


async def _login(browser: Browser, issuer: str, client_id: str) -> tuple[str, bool]:
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s",
        "scope": "mcp:read",
    }
    page = await browser.follow(await browser.get(f"{issuer}/authorize?{urlencode(query)}"))
    start = await browser.get(provider_button(page.text))
    shown = start.status_code == 200
    if shown:
        start = await approve(browser, start)
    done = await browser.idp_login(await browser.follow(start), "alice")
    code = parse_qs(urlsplit(done.headers["location"]).query)["code"][0]
    token = await browser.ostiary.post(
        f"{issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": client_id,
        },
    )
    assert token.status_code == 200, token.text
    return jwt_claims(token.json()["access_token"])["sub"], shown


async def test_serve_configured_by_environment_logs_in_through_the_idp(tmp_path: Path) -> None:
    idp_port = free_port()
    idp_issuer = f"http://127.0.0.1:{idp_port}"
    provider = {
        "name": "idp",
        "kind": "oidc",
        "label": "Test IdP",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "discovery_url": f"{idp_issuer}/.well-known/openid-configuration",
        "keep_tokens": True,
    }
    # ostiary reads the provider's discovery document on first use, so the IdP (which must
    # know ostiary's callback URL) can start after ostiary has its port.
    with running_server(
        tmp_path / "data",
        OSTIARY_FEDERATION__PROVIDERS=json.dumps([provider]),
        OSTIARY_FEDERATION__TOKEN_KEY=TOKEN_KEY,
        OSTIARY_FEDERATION__ALLOW_PRIVATE_NETWORK="true",
        # The second login skips the consent page for this public loopback client (RFC 8252
        # §8.6 would ask again; the deployment opts in).
        OSTIARY_SECURITY__REMEMBER_CONSENT_FOR_UNVERIFIED_CLIENTS="true",
    ) as server:
        issuer = server.issuer
        callback = f"{issuer}/federation/idp/callback"
        with start_idp(tmp_path / "idp.log", callback=callback, port=idp_port):
            async with httpx.AsyncClient(timeout=30) as ostiary, httpx.AsyncClient() as upstream:
                registered = await ostiary.post(
                    f"{issuer}/register",
                    json={"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"},
                )
                assert registered.status_code == 201, registered.text
                client_id = registered.json()["client_id"]
                browser = Browser(ostiary, upstream, idp_issuer, ostiary_issuer=issuer)
                first, shown = await _login(browser, issuer, client_id)
                assert shown
                ostiary.cookies.delete("ostiary_session")
                second, shown_again = await _login(browser, issuer, client_id)
                assert (second, shown_again) == (first, False)
    settings = Settings(
        _env_file=None,
        issuer=issuer,
        dev={"enabled": True},
        storage={"url": f"sqlite:///{tmp_path}/data/ostiary.db"},
    )
    storage = open_storage(settings)
    await storage.initialize()
    try:
        linked = await storage.get_linked_identity(settings.storage.tenant, "idp", "alice")
    finally:
        await storage.close()
    assert linked is not None
    assert linked.subject == first


def test_serve_refuses_to_start_when_kept_tokens_have_no_key(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "COLUMNS": "300",
        "OSTIARY_DEV__ENABLED": "true",
        "OSTIARY_SECURITY__PASSWORD_HASH": "insecure-test",
        "OSTIARY_STORAGE__URL": "memory://",
        "OSTIARY_DATA_DIR": str(tmp_path),
        "OSTIARY_FEDERATION__PROVIDERS": json.dumps(
            [
                {
                    "name": "gh",
                    "kind": "github",
                    "client_id": "Iv1.x",
                    "client_secret": "y",
                    "keep_tokens": True,
                }
            ]
        ),
    }
    env.pop("OSTIARY_FEDERATION__TOKEN_KEY", None)
    done = subprocess.run(
        [*OSTIARY, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: invalid settings:\n"
        "  federation: Value error, federation.token_key is required when a provider keeps "
        "upstream tokens (keep_tokens on: gh); make one with `openssl rand -base64 32`"
    )
