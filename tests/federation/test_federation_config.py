"""Federation settings, provider presets and the token cipher (no network)."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ostiary.errors import ConfigurationError
from ostiary.federation import GitHubProvider, GoogleProvider, OidcProvider, TokenCipher
from ostiary.federation.cipher import TokenDecryptionError
from ostiary.federation.http import UpstreamHttp
from ostiary.federation.providers import build_provider
from ostiary.settings import ProviderSettings, Settings, load_settings

KEY = base64.b64encode(bytes(32)).decode()


def _load(**federation: Any) -> Settings:
    return load_settings(
        _env_file=None,
        issuer="http://127.0.0.1:8000",
        dev={"enabled": True},
        federation=federation,
    )


def _provider(**fields: Any) -> dict[str, Any]:
    return {
        "name": "corp",
        "kind": "oidc",
        "client_id": "ostiary",
        "client_secret": "s3cret",
        "discovery_url": "https://id.example.com/.well-known/openid-configuration",
        **fields,
    }


def test_keep_tokens_without_a_token_key_fails_at_startup() -> None:
    with pytest.raises(ConfigurationError) as info:
        _load(providers=[_provider(keep_tokens=True)])
    assert str(info.value) == (
        "invalid settings:\n"
        "  federation: Value error, federation.token_key is required when a provider keeps "
        "upstream tokens (keep_tokens on: corp); make one with `openssl rand -base64 32`"
    )


def test_a_token_key_must_be_32_bytes_of_base64() -> None:
    with pytest.raises(ConfigurationError) as info:
        _load(providers=[_provider()], token_key=base64.b64encode(bytes(16)).decode())
    assert str(info.value) == (
        "invalid settings:\n"
        "  federation: Value error, federation.token_key must be 32 bytes, base64-encoded"
    )


def test_oidc_needs_a_discovery_url() -> None:
    with pytest.raises(ConfigurationError) as info:
        _load(providers=[_provider(discovery_url=None)])
    assert str(info.value) == (
        "invalid settings:\n"
        "  federation: Value error, federation.providers[0].discovery_url is required for oidc"
    )


def test_provider_names_are_unique() -> None:
    with pytest.raises(ConfigurationError) as info:
        _load(providers=[_provider(), _provider()])
    assert str(info.value) == (
        "invalid settings:\n  federation: Value error, federation.providers: duplicate name(s) corp"
    )


def test_providers_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "OSTIARY_FEDERATION__PROVIDERS",
        '[{"name": "gh", "kind": "github", "client_id": "Iv1.abc", "client_secret": "shh",'
        ' "keep_tokens": true}]',
    )
    monkeypatch.setenv("OSTIARY_FEDERATION__TOKEN_KEY", KEY)
    settings = _load()
    (provider,) = settings.federation.providers
    assert provider.kind == "github"
    assert provider.client_secret.get_secret_value() == "shh"
    assert "shh" not in repr(settings)
    assert KEY not in repr(settings)


async def test_github_authorization_request_has_pkce_and_no_nonce() -> None:
    github = build_provider(
        ProviderSettings(name="github", kind="github", client_id="Iv1.abc", client_secret="shh"),
        UpstreamHttp(),
    )
    assert isinstance(github, GitHubProvider)
    assert github.label == "GitHub"
    url = await github.authorization_url(
        redirect_uri="https://as.example/federation/github/callback",
        state="st",
        nonce="unused",
        code_challenge="ch",
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://github.com/login/oauth/authorize"
    )
    assert parse_qs(parts.query) == {
        "response_type": ["code"],
        "client_id": ["Iv1.abc"],
        "redirect_uri": ["https://as.example/federation/github/callback"],
        "scope": ["read:user user:email"],
        "state": ["st"],
        "code_challenge": ["ch"],
        "code_challenge_method": ["S256"],
    }


def test_google_preset() -> None:
    keeping = build_provider(
        ProviderSettings(
            name="google", kind="google", client_id="x", client_secret="y", keep_tokens=True
        ),
        UpstreamHttp(),
    )
    assert isinstance(keeping, GoogleProvider)
    assert isinstance(keeping, OidcProvider)
    assert keeping.label == "Google"
    assert keeping.discovery_url == "https://accounts.google.com/.well-known/openid-configuration"
    assert keeping.scopes == ("openid", "email", "profile")
    # Google issues refresh tokens only for offline access on a consent prompt.
    assert keeping.extra_authorization_params() == {"access_type": "offline", "prompt": "consent"}
    plain = build_provider(
        ProviderSettings(name="google", kind="google", client_id="x", client_secret="y"),
        UpstreamHttp(),
    )
    assert isinstance(plain, GoogleProvider)
    assert plain.extra_authorization_params() == {}


def test_token_cipher_round_trip_and_tamper() -> None:
    cipher = TokenCipher.from_base64(KEY)
    sealed = cipher.encrypt("upstream-token", "ctx-a")
    assert sealed.startswith("v1.")
    assert cipher.encrypt("upstream-token", "ctx-a") != sealed  # fresh nonce each time
    assert cipher.decrypt(sealed, "ctx-a") == "upstream-token"
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    for bad, context in ((sealed, "ctx-b"), (flipped, "ctx-a"), ("plain", "ctx-a")):
        with pytest.raises(TokenDecryptionError):
            cipher.decrypt(bad, context)
    other = TokenCipher(bytes(range(32)))
    with pytest.raises(TokenDecryptionError):
        other.decrypt(sealed, "ctx-a")
