"""Signing keys, TOTP secrets and refresh tokens at rest, read straight from SQLite and
PostgreSQL.

What the database holds is checked with the database's own client (sqlite3, asyncpg), not
through ``Storage``: no private key member, no base32 secret and no raw refresh token in the
row (only the grace window's sealed successor). Each PostgreSQL
test works in a tenant of its own (the database is shared with the other suites).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sqlite3
import stat
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from typer.testing import CliRunner

from ostiary.cli.main import app as cli_app
from ostiary.core import totp
from ostiary.core.cipher import SecretCipher
from ostiary.core.context import ServerContext
from ostiary.core.grants.refresh_token import open_successor
from ostiary.core.keys import open_private_jwk
from ostiary.core.models import SigningKey, User
from ostiary.core.passwords import INSECURE_TEST
from ostiary.core.secrets import hash_secret
from ostiary.core.tokens import AccessTokenClaims, decode_access_token, mint_access_token
from ostiary.core.users import new_user, open_totp_secret, with_totp_secret
from ostiary.errors import ConfigurationError
from ostiary.server.app import create_authorization_server, startup
from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests._services import postgres_url
from tests.helpers.browserless import parse_form
from tests.helpers.context import build_context
from tests.integration.conftest import AS, ISSUER, PASSWORD, USERNAME, Clock, pkce_pair

KEY_1 = base64.b64encode(bytes(range(32))).decode()
KEY_2 = base64.b64encode(bytes(range(100, 132))).decode()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/as.db"
    return postgres_url()


@pytest.fixture
def make_settings(
    settings_factory: Callable[..., Settings], database: str
) -> Callable[..., Settings]:
    """Settings on ``database`` in a fresh tenant; ``encryption_key`` optional."""
    tenant = f"t-{uuid.uuid4().hex}"

    def build(**storage: Any) -> Settings:
        return settings_factory(
            issuer=ISSUER, storage={"url": database, "tenant": tenant, **storage}
        )

    return build


async def raw_column(settings: Settings, table: str, column: str) -> list[str]:
    """The column's text for the tenant's rows, read with the database's own client."""
    url, tenant = settings.storage.url, settings.storage.tenant
    query = f"SELECT CAST({column} AS TEXT) FROM {table} WHERE tenant_id = "
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return [row[0] for row in db.execute(query + "?", (tenant,)).fetchall()]
    connection = await asyncpg.connect(url)
    try:
        return [row[0] for row in await connection.fetch(query + "$1", tenant)]
    finally:
        await connection.close()


async def started(settings: Settings) -> ServerContext:
    ctx = build_context(settings, open_storage(settings))
    await startup(ctx)
    return ctx


def claims_at(now: int) -> AccessTokenClaims:
    return AccessTokenClaims(
        ISSUER, "alice", f"{ISSUER}/mcp", "c1", ("mcp:read",), "j1", now, now + 900
    )


async def jwks_of(ctx: ServerContext) -> dict[str, Any]:
    app = create_authorization_server(ctx.settings, context=ctx)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        response = await http.get(f"{ISSUER}/jwks")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_signing_key_row_is_sealed_and_tokens_outlive_a_restart(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    ctx = await started(settings)
    now = ctx.clock()
    ring = await ctx.keys.ring(now)
    private = open_private_jwk(ring.active, ctx.cipher)
    [row] = await raw_column(settings, "signing_keys", "private_jwk")
    assert list(json.loads(row)) == ["sealed"]
    assert json.loads(row)["sealed"].startswith("v1.")
    assert private["d"] not in row
    assert '"d"' not in row
    key_file = settings.data_dir / "storage.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    token = mint_access_token(ring, claims_at(now))
    published = await jwks_of(ctx)
    assert published == {
        "keys": [
            {
                "kty": "EC",
                "crv": "P-256",
                "x": private["x"],
                "y": private["y"],
                "kid": ring.active.kid,
                "alg": "ES256",
                "use": "sig",
            }
        ]
    }
    await ctx.storage.close()

    again = await started(settings)  # a restart: new storage, same key file
    ring_again = await again.keys.ring(now)
    assert ring_again.active.kid == ring.active.kid
    assert (
        decode_access_token(ring_again, token, issuer=ISSUER, now=now) == claims_at(now).to_dict()
    )
    key_set = KeySet.import_key_set(await jwks_of(again))  # type: ignore[arg-type]
    verified = jwt.decode(token, key_set, algorithms=["ES256"])
    assert verified.claims["sub"] == "alice"
    assert len(await again.storage.list_signing_keys(settings.storage.tenant)) == 1
    await again.storage.close()


async def test_totp_secret_row_is_sealed(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(encryption_key=KEY_1)
    ctx = await started(settings)
    user = await new_user(
        settings.storage.tenant, "ada", PASSWORD, ctx.clock(), hashing=INSECURE_TEST
    )
    secret = totp.new_secret()
    await ctx.storage.save_user(with_totp_secret(user, secret, ctx.cipher))
    [row] = await raw_column(settings, "users", "totp_secret")
    assert row.startswith("v1.")
    assert secret not in row
    stored = await ctx.storage.get_user(settings.storage.tenant, user.user_id)
    assert stored is not None
    assert open_totp_secret(stored, SecretCipher(base64.b64decode(KEY_1))) == secret
    assert not (settings.data_dir / "storage.key").exists()  # the setting wins over a file
    await ctx.storage.close()


async def test_legacy_plain_rows_still_load_sign_and_get_sealed(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    tenant = settings.storage.tenant
    seed = open_storage(settings)
    await seed.initialize()
    key = ECKey.generate_key("P-256")
    legacy_key = SigningKey(tenant, key.thumbprint(), "ES256", dict(key.as_dict(private=True)), 1)
    await seed.save_signing_key(legacy_key)
    user = replace(
        await new_user(tenant, "ada", PASSWORD, 1, hashing=INSECURE_TEST),
        totp_secret="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    )
    await seed.save_user(user)
    await seed.close()
    [before] = await raw_column(settings, "signing_keys", "private_jwk")
    assert json.loads(before)["d"] == legacy_key.private_jwk["d"]

    ctx = await started(settings)
    now = ctx.clock()
    ring = await ctx.keys.ring(now)
    assert ring.active.kid == legacy_key.kid
    token = mint_access_token(ring, claims_at(now))
    assert jwt.decode(token, key, algorithms=["ES256"]).claims["sub"] == "alice"
    # start-up sealed the plain row in place: same kid, same key, no "d" left in the database
    [after] = await raw_column(settings, "signing_keys", "private_jwk")
    assert list(json.loads(after)) == ["sealed"]
    assert legacy_key.private_jwk["d"] not in after
    [stored] = await ctx.storage.list_signing_keys(tenant)
    assert open_private_jwk(stored, ctx.cipher) == legacy_key.private_jwk
    found = await ctx.storage.get_user(tenant, user.user_id)
    assert found is not None
    assert open_totp_secret(found, ctx.cipher) == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    await ctx.storage.close()


def _wrong_key_message(kid: str, tenant: str) -> str:
    return (
        f"signing key {kid} of tenant {tenant!r} does not decrypt with storage.encryption_key "
        "(OSTIARY_STORAGE__ENCRYPTION_KEY): it was sealed with another storage encryption key. "
        "Set storage.encryption_key (OSTIARY_STORAGE__ENCRYPTION_KEY) to that key, or restore "
        "the storage.key file in data_dir it came from"
    )


async def test_a_wrong_key_fails_start_up_clearly_and_makes_no_new_key(
    make_settings: Callable[..., Settings],
) -> None:
    first = make_settings(encryption_key=KEY_1)
    ctx = await started(first)
    [kid] = [k.kid for k in await ctx.storage.list_signing_keys(first.storage.tenant)]
    await ctx.storage.close()

    wrong = make_settings(encryption_key=KEY_2)
    ctx = build_context(wrong, open_storage(wrong))
    with pytest.raises(ConfigurationError) as caught:
        await startup(ctx)
    assert str(caught.value) == _wrong_key_message(kid, wrong.storage.tenant)
    with pytest.raises(ConfigurationError):
        await ctx.keys.rotate(ctx.clock())
    assert [k.kid for k in await ctx.storage.list_signing_keys(wrong.storage.tenant)] == [kid]
    await ctx.storage.close()


def test_the_cli_refuses_a_wrong_key_before_serving_or_rotating(
    make_settings: Callable[..., Settings],
) -> None:
    first = make_settings(encryption_key=KEY_1)

    async def kids() -> list[str]:
        ctx = await started(first)
        try:
            return [k.kid for k in await ctx.storage.list_signing_keys(first.storage.tenant)]
        finally:
            await ctx.storage.close()

    [kid] = asyncio.run(kids())
    env = {
        "OSTIARY_STORAGE__URL": first.storage.url,
        "OSTIARY_STORAGE__TENANT": first.storage.tenant,
        "OSTIARY_STORAGE__ENCRYPTION_KEY": KEY_2,
        "OSTIARY_DATA_DIR": str(first.data_dir),
        "OSTIARY_DEV__ENABLED": "true",
        "OSTIARY_SECURITY__PASSWORD_HASH": "insecure-test",
        "COLUMNS": "1000",
    }
    expected = f"error: {_wrong_key_message(kid, first.storage.tenant)}\n"
    for command in (["keys", "rotate"], ["serve", "--no-demo"]):
        result = CliRunner().invoke(cli_app, command, env=env)
        assert (result.exit_code, result.output) == (1, expected)
    assert asyncio.run(kids()) == [kid]


async def test_a_sealed_key_copied_under_another_kid_does_not_load(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(encryption_key=KEY_1)
    ctx = await started(settings)
    [original] = await ctx.storage.list_signing_keys(settings.storage.tenant)
    copy = replace(original, kid="copied-kid", created_at=original.created_at + 1)
    await ctx.storage.save_signing_key(copy)
    await ctx.storage.close()
    ctx = build_context(settings, open_storage(settings))
    with pytest.raises(ConfigurationError, match=r"^signing key copied-kid of tenant"):
        await startup(ctx)
    await ctx.storage.close()


# -- the TOTP step of the login page -----------------------------------------------------------


async def _password_step(server: AS) -> tuple[str, str]:
    """Pass the password form; (interaction URL, CSRF token) of the code step."""
    client = await server.register()
    start = await server.http.get(server.authorize_url(client["client_id"], pkce_pair()[1]))
    interaction = start.headers["location"]
    form = parse_form((await server.http.get(interaction)).text)
    login = await server.http.post(
        form.action,
        data={"csrf_token": form.csrf_token, "username": USERNAME, "password": PASSWORD},
    )
    assert login.status_code == 303
    return interaction, form.csrf_token


async def _alice(server: AS) -> User:
    user = await server.ctx.storage.get_user_by_username(server.settings.storage.tenant, USERNAME)
    assert user is not None
    return user


async def test_sealed_totp_secret_signs_in(auth_server: AS) -> None:
    secret = totp.new_secret()
    alice = await _alice(auth_server)
    await auth_server.ctx.storage.save_user(with_totp_secret(alice, secret, auth_server.ctx.cipher))
    interaction, csrf = await _password_step(auth_server)
    code = totp.totp(secret, auth_server.clock.now)
    ok = await auth_server.http.post(f"{interaction}/code", data={"csrf_token": csrf, "code": code})
    assert ok.status_code == 303
    assert "ostiary_session=" in ok.headers["set-cookie"]


async def test_totp_secret_sealed_with_another_key_is_a_503_page_not_a_500(
    auth_server: AS, caplog: pytest.LogCaptureFixture
) -> None:
    other = SecretCipher(bytes(range(100, 132)), source="another key")
    secret = totp.new_secret()
    alice = await _alice(auth_server)
    await auth_server.ctx.storage.save_user(with_totp_secret(alice, secret, other))
    interaction, csrf = await _password_step(auth_server)
    with caplog.at_level(logging.ERROR, logger="ostiary.server"):
        response = await auth_server.http.post(
            f"{interaction}/code",
            data={"csrf_token": csrf, "code": totp.totp(secret, auth_server.clock.now)},
        )
    assert response.status_code == 503
    assert (
        "Sign-in with a one-time code is unavailable: this server cannot read its stored "
        "secrets. Tell the administrator." in response.text
    )
    assert "set-cookie" not in response.headers
    [record] = [r for r in caplog.records if r.name == "ostiary.server"]
    assert record.getMessage() == (
        f"login: the TOTP secret of user {alice.user_id} does not decrypt with "
        f"{auth_server.ctx.cipher.source}: it was sealed with another storage encryption key. "
        "Set storage.encryption_key (OSTIARY_STORAGE__ENCRYPTION_KEY) to that key, or restore "
        "the storage.key file in data_dir it came from"
    )


async def test_refresh_tokens_rest_as_hashes_but_the_previous_ones_successor_sealed(
    make_settings: Callable[..., Settings],
) -> None:
    """No raw refresh token in any column, except the one successor the grace window needs,
    sealed on the previous token's row and bound to it: a copy on another row does not open."""
    settings = make_settings(encryption_key=KEY_1)
    ctx = await started(settings)
    await ctx.storage.save_user(
        await new_user(
            settings.storage.tenant, USERNAME, PASSWORD, ctx.clock(), hashing=INSECURE_TEST
        )
    )
    app = create_authorization_server(settings, context=ctx)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        server = AS(http, ctx, Clock(), settings)
        client = await server.register()
        raws = [(await server.tokens(client["client_id"]))["refresh_token"]]
        for _ in range(2):
            form = {
                "grant_type": "refresh_token",
                "refresh_token": raws[-1],
                "client_id": client["client_id"],
            }
            response = await http.post("/token", data=form)
            assert response.status_code == 200, response.text
            raws.append(response.json()["refresh_token"])

    columns = ("token_hash", "successor_hash", "sealed_successor")
    rows = [await raw_column(settings, "refresh_tokens", column) for column in columns]
    assert all(raw not in (value or "") for raw in raws for column in rows for value in column)
    [sealed] = [value for value in rows[2] if value is not None]
    assert sealed.startswith("v1.")
    tenant = settings.storage.tenant
    previous = await ctx.storage.get_refresh_token(tenant, hash_secret(raws[1]))
    assert previous is not None
    assert previous.sealed_successor == sealed
    assert open_successor(SecretCipher(base64.b64decode(KEY_1)), previous) == raws[2]
    oldest = await ctx.storage.get_refresh_token(tenant, hash_secret(raws[0]))
    assert oldest is not None
    assert oldest.sealed_successor is None  # forgotten when its successor rotated
    moved = replace(oldest, sealed_successor=sealed, successor_hash=previous.successor_hash)
    with pytest.raises(ConfigurationError, match="does not decrypt"):
        open_successor(ctx.cipher, moved)
    await ctx.storage.close()
