"""The federation state of one authorization server: its providers and its token cipher.

Built once from ``settings.federation`` and kept in ``ServerContext.extra`` so the login
endpoints and :func:`ostiary.federation.upstream_access_token` share provider caches
(discovery, JWKS) and the cipher.
"""

from __future__ import annotations

from dataclasses import dataclass

from ostiary.core.context import ServerContext
from ostiary.federation.cipher import TokenCipher
from ostiary.federation.http import UpstreamHttp
from ostiary.federation.providers import Provider, build_provider
from ostiary.settings import Settings

_EXTRA_KEY = "ostiary.federation"


@dataclass
class Federation:
    """Configured providers by name, and the cipher for kept upstream tokens."""

    providers: dict[str, Provider]
    cipher: TokenCipher | None
    http: UpstreamHttp

    @classmethod
    def from_settings(cls, settings: Settings, ctx: ServerContext) -> Federation:
        config = settings.federation
        http = UpstreamHttp(
            allow_private=config.allow_private_network,
            timeout_seconds=settings.security.fetch_timeout_seconds * 2,
        )
        key = config.token_key
        return cls(
            providers={p.name: build_provider(p, http, ctx.clock) for p in config.providers},
            cipher=TokenCipher.from_base64(key.get_secret_value()) if key is not None else None,
            http=http,
        )

    def provider(self, name: str) -> Provider | None:
        return self.providers.get(name)


def federation_of(ctx: ServerContext) -> Federation:
    """The context's federation, built on first use."""
    found = ctx.extra.get(_EXTRA_KEY)
    if isinstance(found, Federation):
        return found
    federation = Federation.from_settings(ctx.settings, ctx)
    ctx.extra[_EXTRA_KEY] = federation
    return federation


def install(ctx: ServerContext, federation: Federation) -> None:
    """Use ``federation`` for this context (tests inject providers or transports here)."""
    ctx.extra[_EXTRA_KEY] = federation


def callback_url(ctx: ServerContext, provider: str) -> str:
    """The redirect URI to register at the provider: ``<issuer>/federation/<name>/callback``."""
    return f"{ctx.issuer}/federation/{provider}/callback"


@dataclass(frozen=True, slots=True)
class LoginProvider:
    """A provider button on the login page."""

    name: str
    label: str
    start_url: str


def login_providers(ctx: ServerContext, interaction_id: str) -> tuple[LoginProvider, ...]:
    """The configured providers, each with the URL that starts it for this interaction."""
    if not ctx.settings.federation.providers:
        return ()
    return tuple(
        LoginProvider(
            p.name, p.label, f"{ctx.issuer}/interaction/{interaction_id}/federation/{p.name}"
        )
        for p in federation_of(ctx).providers.values()
    )
