"""Sign-in details in-process: TOTP second step (RFC 6238), throttling, providers, sign-out."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest

from ostiary.core import totp
from ostiary.core.users import ADDRESS_LIMIT_FACTOR
from ostiary.server.pages import LOGIN_PROVIDERS, ProviderButton
from tests.helpers.browserless import authorize, parse_form
from tests.integration.conftest import AS, ISSUER, PASSWORD, USERNAME, pkce_pair
from tests.integration.test_hostile_helpers import guard


@pytest.fixture
def server(auth_server: AS) -> AS:
    return guard(auth_server)


RFC6238_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
    ],
)
def test_rfc6238_appendix_b_sha1_vectors(now: int, expected: str) -> None:
    """RFC 6238 Appendix B: the SHA-1 test vectors (8 digits)."""
    assert totp.hotp(RFC6238_SECRET, totp.time_step(now), digits=8) == expected


def test_verify_accepts_one_step_of_drift_and_nothing_else() -> None:
    secret = totp.new_secret()
    now = 1_900_000_000
    for offset in (-30, 0, 30):
        assert totp.verify(secret, totp.totp(secret, now + offset), now) == totp.time_step(
            now + offset
        )
    assert totp.verify(secret, totp.totp(secret, now - 60), now) is None
    assert totp.verify(secret, "12345", now) is None
    assert totp.verify(secret, "abcdef", now) is None


def test_provisioning_uri() -> None:
    assert totp.provisioning_uri("JBSWY3DPEHPK3PXP", "ada@example.com", "Acme Cloud") == (
        "otpauth://totp/Acme%20Cloud:ada@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Acme+Cloud"
        "&algorithm=SHA1&digits=6&period=30"
    )


async def _login_page(server: AS) -> tuple[str, str, str]:
    client = await server.register()
    start = await server.http.get(server.authorize_url(client["client_id"], pkce_pair()[1]))
    interaction = start.headers["location"]
    page = await server.http.get(interaction)
    form = parse_form(page.text)
    return interaction, form.action, form.csrf_token


async def test_totp_user_enters_a_code_after_the_password(server: AS) -> None:
    tenant = server.settings.storage.tenant
    alice = await server.ctx.storage.get_user_by_username(tenant, USERNAME)
    assert alice is not None
    secret = totp.new_secret()
    await server.ctx.storage.save_user(replace(alice, totp_secret=secret))
    interaction, action, csrf = await _login_page(server)
    login = await server.http.post(
        action, data={"csrf_token": csrf, "username": USERNAME, "password": PASSWORD}
    )
    assert login.status_code == 303
    assert "set-cookie" not in login.headers  # no session before the second factor
    page = await server.http.get(interaction)
    assert 'autocomplete="one-time-code"' in page.text
    code_form = parse_form(page.text)
    assert code_form.action == f"{interaction}/code"
    wrong = await server.http.post(
        code_form.action, data={"csrf_token": code_form.csrf_token, "code": "000000"}
    )
    assert wrong.status_code == 401
    assert "That code is not valid. Check the time on your device and try again." in wrong.text
    code = totp.totp(secret, server.clock.now)
    ok = await server.http.post(
        code_form.action, data={"csrf_token": code_form.csrf_token, "code": code}
    )
    assert ok.status_code == 303
    assert "ostiary_session=" in ok.headers["set-cookie"]
    consent = await server.http.get(interaction)
    assert 'name="decision"' in consent.text
    # The same code cannot be used twice (RFC 6238 §5.2).
    server.http.cookies.delete("ostiary_session")
    interaction2, action2, csrf2 = await _login_page(server)
    await server.http.post(
        action2, data={"csrf_token": csrf2, "username": USERNAME, "password": PASSWORD}
    )
    replay = await server.http.post(
        f"{interaction2}/code", data={"csrf_token": csrf2, "code": code}
    )
    assert replay.status_code == 401


async def test_code_step_needs_the_password_first(server: AS) -> None:
    interaction, _action, csrf = await _login_page(server)
    response = await server.http.post(
        f"{interaction}/code", data={"csrf_token": csrf, "code": "123456"}
    )
    assert response.status_code == 400
    assert "<code>invalid_request</code>: Sign in with your password first.</p>" in response.text


async def test_one_address_is_throttled_across_accounts(server: AS) -> None:
    _interaction, action, csrf = await _login_page(server)
    limit = server.settings.security.login_failures_per_account * ADDRESS_LIMIT_FACTOR
    for n in range(limit):
        failed = await server.http.post(
            action, data={"csrf_token": csrf, "username": f"user{n}", "password": "nope"}
        )
        assert failed.status_code == 401
        server.clock.now += 2  # stay under the per-minute request limit
    throttled = await server.http.post(
        action, data={"csrf_token": csrf, "username": USERNAME, "password": PASSWORD}
    )
    assert throttled.status_code == 429
    assert (
        "Too many failed sign-in attempts from your network. Try again in 15 minutes."
        in throttled.text
    )


async def test_login_page_offers_configured_providers(server: AS) -> None:
    seen: list[str] = []

    def offer(interaction_id: str) -> list[ProviderButton]:
        seen.append(interaction_id)
        return [ProviderButton("github", "GitHub", f"{ISSUER}/federation/github/{interaction_id}")]

    server.ctx.extra[LOGIN_PROVIDERS] = offer
    interaction, _action, _csrf = await _login_page(server)
    page = await server.http.get(interaction)
    interaction_id = interaction.rsplit("/", 1)[1]
    assert seen[-1] == interaction_id
    assert (
        f'<a class="button button-provider" href="{ISSUER}/federation/github/{interaction_id}" '
        'data-provider="github">Continue with GitHub</a>'
    ) in page.text
    # The password form is still the first form on the page.
    assert parse_form(page.text).action == f"{interaction}/login"


async def test_no_providers_by_default(server: AS) -> None:
    interaction, _action, _csrf = await _login_page(server)
    page = await server.http.get(interaction)
    assert "button-provider" not in page.text


async def test_sign_out_asks_then_needs_the_csrf_token(server: AS) -> None:
    interaction, action, csrf = await _login_page(server)
    await server.http.post(
        action, data={"csrf_token": csrf, "username": USERNAME, "password": PASSWORD}
    )
    ask = await server.http.get(f"/logout?interaction={interaction.rsplit('/', 1)[1]}")
    assert ask.status_code == 200
    assert '<h1 id="page-title">Sign out?</h1>' in ask.text
    assert "set-cookie" not in ask.headers
    form = parse_form(ask.text)
    forged = await server.http.post(form.action, data={"csrf_token": "nope"})
    assert forged.status_code == 400
    assert (await server.http.get("/account")).status_code == 200  # still signed in
    back = interaction.rsplit("/", 1)[1]
    out = await server.http.post(
        form.action, data={"csrf_token": form.csrf_token, "interaction": back}
    )
    assert out.status_code == 303
    assert out.headers["location"] == interaction
    page = await server.http.get(interaction)
    assert 'name="password"' in page.text


async def test_disabled_user_session_no_longer_counts(server: AS) -> None:
    interaction, action, csrf = await _login_page(server)
    await server.http.post(
        action, data={"csrf_token": csrf, "username": USERNAME, "password": PASSWORD}
    )
    tenant = server.settings.storage.tenant
    alice = await server.ctx.storage.get_user_by_username(tenant, USERNAME)
    assert alice is not None
    await server.ctx.storage.save_user(replace(alice, disabled=True))
    page = await server.http.get(interaction)
    assert 'name="password"' in page.text


def test_theme_css_carries_the_accent_with_readable_text() -> None:
    from ostiary.server.ui.render import contrast_ratio, theme_css
    from ostiary.settings import UiSettings

    assert theme_css(UiSettings(accent_color="#5B3FD1")) == (
        ":root {\n  --accent: #5b3fd1;\n  --accent-strong: #4d35b1;\n"
        "  --on-accent: #ffffff;\n  --link: #5b3fd1;\n}\n"
    )
    light = theme_css(UiSettings(accent_color="#ffd400"))
    assert "--on-accent: #111318;" in light
    link = light.split("--link: ")[1].split(";")[0]
    assert contrast_ratio(link, "#ffffff") >= 4.5


async def test_theme_css_is_served(server: AS) -> None:
    response = await server.http.get("/static/theme.css")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert response.text.startswith(":root {\n  --accent: #2f5bd3;")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("accent_color", "red", "String should match pattern '^#[0-9a-fA-F]{6}$'"),
        ("logo_url", "http://x.example/logo.png", "ui.logo_url must be an https URL or a path"),
        ("logo_url", "//x.example/logo.png", "ui.logo_url must be an https URL or a path"),
        ("support_url", "javascript:alert(1)", "ui.support_url must be an https URL"),
    ],
)
def test_ui_settings_are_validated(field: str, value: str, message: str) -> None:
    from pydantic import ValidationError

    from ostiary.settings import UiSettings

    with pytest.raises(ValidationError, match=re.escape(message)):
        UiSettings(**{field: value})


async def test_browserless_helper_answers_the_code_step(server: AS) -> None:
    tenant = server.settings.storage.tenant
    alice = await server.ctx.storage.get_user_by_username(tenant, USERNAME)
    assert alice is not None
    secret = totp.new_secret()
    await server.ctx.storage.save_user(replace(alice, totp_secret=secret))
    client = await server.register()
    location = await authorize(
        server.http,
        server.authorize_url(client["client_id"], pkce_pair()[1]),
        username=USERNAME,
        password=PASSWORD,
        otp=lambda: totp.totp(secret, server.clock.now),
    )
    assert set(parse_qs(urlsplit(location).query)) == {"code", "state", "iss"}
