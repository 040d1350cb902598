"""The one typed settings tree (pydantic-settings), validated at start-up.

Every knob has an ``OSTIARY_`` environment variable (nested sections use ``__``, e.g.
``OSTIARY_TOKENS__ACCESS_TOKEN_TTL=600``) and may come from a ``.env`` file. Settings are
always passed explicitly; there is no module-level singleton.
"""

from __future__ import annotations

import base64
import binascii
import logging
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ostiary.errors import ConfigurationError
from ostiary.loopback import is_loopback_host

log = logging.getLogger("ostiary.settings")

CIMD_DRAFT = "draft-ietf-oauth-client-id-metadata-document-00"
#: The longest allowed ``tokens.refresh_grace_seconds``: storage keeps a rotated token's sealed
#: successor no longer than this (``Storage.purge_expired``), whatever a process is set to.
MAX_REFRESH_GRACE_SECONDS = 300
DEFAULT_SCOPE_DESCRIPTIONS = {
    "mcp:read": "Read your data through the MCP server's tools and resources.",
    "mcp:write": "Create and change data through the MCP server's tools.",
    "offline_access": "Stay connected when you are away (issue refresh tokens).",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Address `ostiary serve` binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port `ostiary serve` binds to.")
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest request body accepted by any endpoint."
    )
    cors_origins: tuple[str, ...] = Field(
        (), description="Browser origins allowed to call the JSON endpoints (CORS)."
    )
    trust_forwarded_for: bool = Field(
        False, description="Use X-Forwarded-For for the client address (behind a proxy)."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="`json`: one JSON object per log line (ostiary's logs, audit events and "
        "uvicorn's access and error logs), each with the request id also sent back in "
        "X-Request-ID.",
    )
    max_requests_per_address: int = Field(
        64,
        ge=0,
        le=100_000,
        description="Requests one client address may have in flight at once (streams and slow "
        "bodies included); the next gets 429 with Retry-After. 0: no bound. Behind a proxy, "
        "with trust_forwarded_for, the address is X-Forwarded-For's first entry.",
    )
    shutdown_timeout: int = Field(
        10,
        ge=0,
        le=600,
        description="Seconds `ostiary serve` waits on SIGTERM for requests in flight before it "
        "cancels them and exits (a client stalled mid-body cannot hold the process open).",
    )
    stats_token: SecretStr | None = Field(
        None,
        min_length=16,
        description="Serve GET /stats (user, client, grant and token counts) to callers sending "
        "`Authorization: Bearer <token>` (at least 16 characters); unset, /stats is 404.",
    )


class TokenSettings(_Section):
    authorization_code_ttl: int = Field(60, ge=5, le=600, description="Seconds a code lives.")
    access_token_ttl: int = Field(900, ge=30, le=86400, description="Access token lifetime (s).")
    refresh_token_ttl: int = Field(
        30 * 86400, ge=60, description="Absolute refresh-token lifetime of a grant (s)."
    )
    refresh_token_idle_ttl: int = Field(
        7 * 86400, ge=60, description="A refresh token unused this long expires (s)."
    )
    refresh_grace_seconds: int = Field(
        30,
        ge=0,
        le=MAX_REFRESH_GRACE_SECONDS,
        description="A just-rotated refresh token presented again this long after its "
        "rotation (a lost response, a concurrent refresh) returns the same successor, as "
        "long as that successor is unused; 0 treats every second presentation as reuse.",
    )
    issue_refresh_tokens: Literal["always", "offline_access"] = Field(
        "always",
        description="'always' issues a refresh token whenever the client may use the grant; "
        "'offline_access' only when that scope was granted.",
    )
    signing_alg: Literal["ES256", "Ed25519", "RS256"] = Field(
        "ES256", description="Algorithm of new access-token signing keys."
    )
    client_secret_ttl: int = Field(
        0, ge=0, description="Seconds a DCR client secret lives; 0 means it never expires."
    )
    key_retire_grace: int = Field(
        0, ge=0, description="Extra seconds a rotated-out key stays in JWKS past token lifetime."
    )
    dpop_required: bool = Field(
        False,
        description="Refuse every token request without a DPoP proof (RFC 9449); a client can "
        "also ask for it alone with the dpop_bound_access_tokens registration metadata.",
    )
    dpop_nonce: bool = Field(
        False,
        description="Demand a server-provided nonce in DPoP proofs at the token endpoint "
        "(RFC 9449 §8): a proof without the current one gets 400 use_dpop_nonce.",
    )
    dpop_nonce_lifetime: int = Field(
        300,
        ge=10,
        le=86400,
        description="Seconds one DPoP nonce is current; the previous one is still accepted for "
        "as long again. Every node derives the same nonce from the storage key.",
    )
    dpop_proof_max_age: int = Field(
        60,
        ge=1,
        le=3600,
        description="Seconds a DPoP proof's iat may lie in the past; its jti is remembered "
        "(replay cache) for that long.",
    )
    dpop_proof_max_future: int = Field(
        5, ge=0, le=300, description="Seconds a DPoP proof's iat may lie in the future (skew)."
    )


class ResourceSettings(_Section):
    allowed: tuple[str, ...] = Field(
        (),
        description="RFC 8707 resources (MCP server URLs) this server issues tokens for; "
        "empty means the built-in MCP endpoint `{issuer}/mcp` only.",
    )
    allow_any: bool = Field(
        False, description="Accept any https (or loopback http) resource. Testing only."
    )


class ScopeSettings(_Section):
    supported: tuple[str, ...] = Field(
        ("mcp:read", "mcp:write", "offline_access"), description="Scopes this server knows."
    )
    default: tuple[str, ...] = Field(
        ("mcp:read",), description="Scopes granted when a request names none."
    )
    descriptions: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_SCOPE_DESCRIPTIONS),
        description="Text shown on the consent page for each scope.",
    )

    @model_validator(mode="after")
    def _defaults_supported(self) -> ScopeSettings:
        unknown = set(self.default) - set(self.supported)
        if unknown:
            raise ValueError(f"scopes.default names unsupported scopes: {sorted(unknown)}")
        return self


class StorageSettings(_Section):
    url: str = Field(
        "sqlite:///./.ostiary/ostiary.db",
        description="sqlite:///path, postgresql://…, or memory:// (tests only). When unset, "
        "the SQLite file `ostiary.db` in `data_dir`.",
    )
    redis_url: str | None = Field(
        None, description="Optional Redis for codes, replay caches and rate limits."
    )
    tenant: str = Field("default", min_length=1, max_length=64, description="Tenant id.")
    pool_size: int = Field(
        10,
        ge=1,
        le=200,
        description="PostgreSQL connections kept open per process (as many again may open "
        "under load; SQLite uses one); also sizes the Redis connection pool.",
    )
    purge_interval_seconds: int = Field(
        600,
        ge=0,
        description="Seconds between purges of expired records; 0 disables the periodic purge",
    )
    encryption_key: SecretStr | None = Field(
        None,
        description="AES-256-GCM key sealing signing keys and TOTP secrets at rest: 32 random "
        "bytes, base64 (`openssl rand -base64 32`). When unset, the key file `storage.key` in "
        "`data_dir`, created on first start; set it for PostgreSQL or several hosts.",
    )

    @model_validator(mode="after")
    def _check_encryption_key(self) -> StorageSettings:
        if self.encryption_key is not None and token_key_problem(
            self.encryption_key.get_secret_value()
        ):
            raise ValueError(
                "storage.encryption_key (OSTIARY_STORAGE__ENCRYPTION_KEY) must be 32 bytes, "
                "base64-encoded; make one with `openssl rand -base64 32`"
            )
        return self


#: Parameter sets for ``security.password_hash`` (``ostiary.core.passwords``).
PasswordHashProfile = Literal["rfc9106", "insecure-test"]


class SecuritySettings(_Section):
    allow_private_fetch: bool = Field(
        False,
        description="Let outbound fetches (CIMD, JWKS) reach private/loopback addresses.",
    )
    fetch_timeout_seconds: float = Field(5.0, gt=0, le=30, description="Outbound fetch timeout.")
    fetch_max_bytes: int = Field(5 * 1024, ge=512, description="Largest CIMD document fetched.")
    cimd_allowed_domains: tuple[str, ...] = Field(
        (), description="When set, only CIMD client_ids on these hosts are accepted."
    )
    remember_consent: bool = Field(
        True, description="Skip the consent page when the same grant was approved before."
    )
    remember_consent_for_unverified_clients: bool = Field(
        False,
        description="Also skip it for a public client redirecting to a loopback or custom-scheme "
        "URI, whose identity nothing proves: any local app can claim such a client_id and get a "
        "code without a page (RFC 8252 §8.6 advises against; true only for trusted devices).",
    )
    session_ttl: int = Field(8 * 3600, ge=60, description="Browser login session lifetime (s).")
    rate_limit_per_minute: int = Field(
        60, ge=1, description="Requests per minute per address on login, register and token."
    )
    login_failures_per_account: int = Field(
        10, ge=1, description="Failed logins per account per 15 minutes before throttling."
    )
    rate_limit_scope: Literal["process", "storage"] = Field(
        "process",
        description="Where the per-address request counters live: 'process' costs no storage "
        "write per request, but each process or node counts on its own (N of them allow up to "
        "N x rate_limit_per_minute); 'storage' shares them through the database. With "
        "storage.redis_url set they are always in Redis.",
    )
    client_cache_seconds: int = Field(
        5,
        ge=0,
        le=300,
        description="Seconds a process reuses a client record it read (0: read it every time). "
        "An operator's `ostiary clients disable` or an RFC 7592 update made on another process "
        "or node takes effect there within this time.",
    )
    admin_requires_totp: bool = Field(
        True,
        description="Refuse the operator console (/admin) to an administrator without an "
        "enrolled TOTP second factor (`ostiary users totp enable <user>`).",
    )
    password_hash: PasswordHashProfile = Field(
        "rfc9106",
        description="argon2id parameters for new password hashes: 'rfc9106' (t=3, m=64 MiB, "
        "p=4; RFC 9106 §4) or 'insecure-test' (argon2's minimum cost, for test suites; refused "
        "unless dev mode is on). A login whose stored hash is weaker re-hashes it.",
    )


class FeatureSettings(_Section):
    dynamic_registration: bool = Field(True, description="Serve RFC 7591/7592 registration.")
    client_id_metadata_documents: bool = Field(True, description="Accept CIMD URL client_ids.")
    cimd_ack: str = Field(CIMD_DRAFT, description="Draft version acknowledged for CIMD.")
    client_credentials: bool = Field(True, description="Allow the client_credentials grant.")


class DemoSettings(_Section):
    """The demo MCP server ``ostiary serve`` runs at ``{issuer}/mcp``."""

    read_scope: str = Field(
        "mcp:read", min_length=1, description="Scope the demo's protected tools and resources need."
    )
    write_scope: str = Field(
        "mcp:write", min_length=1, description="Scope create_secure_note needs (with read_scope)."
    )
    hide_unauthorized_tools: bool = Field(
        False, description="Leave out of tools/list the demo tools a token cannot call."
    )
    mixed_auth: bool = Field(
        False,
        description="Let clients connect, list tools and call the public tools (echo, get_time, "
        "public_search) without a token, with a challenge per protected tool call. Off: every "
        "tokenless request gets the 401 challenge, which clients that decide at connect time "
        "whether to log in (Claude Code, Codex, mcp-remote) need.",
    )


class MetricsSettings(_Section):
    """Prometheus metrics (``/metrics``); off unless a token or a bind address is set."""

    token: SecretStr | None = Field(
        None,
        description="Serve GET /metrics on the main port to callers sending "
        "`Authorization: Bearer <token>` (at least 16 characters).",
        min_length=16,
    )
    bind: str | None = Field(
        None,
        description="Also serve the metrics, without authentication, on this `host:port` "
        "(a private or loopback address), from the serving process (the parent of the workers).",
        pattern=r"^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$",
    )

    @property
    def enabled(self) -> bool:
        return self.token is not None or self.bind is not None


#: Marker file ``ostiary serve`` leaves in a data directory it ran in dev mode.
DEV_MARKER: Final = "dev-mode"


class DevSettings(_Section):
    enabled: bool = Field(False, description="Allow an http issuer on localhost; loud warning.")


class UiSettings(_Section):
    """Branding of the login, consent, account and error pages."""

    product_name: str = Field(
        "ostiary",
        min_length=1,
        max_length=60,
        description="Name shown in the page header and titles.",
    )
    logo_url: str | None = Field(
        None,
        description="Logo shown next to the name: an https URL or a path on this server "
        "starting with '/'. The pages' Content-Security-Policy allows https images.",
    )
    accent_color: str = Field(
        "#2f5bd3",
        pattern=r"^#[0-9a-fA-F]{6}$",
        description="Accent colour of buttons and links, as #rrggbb. Text on it is white or "
        "black, whichever contrasts more.",
    )
    support_url: str | None = Field(
        None, description="Optional https link to help, shown in the page footer."
    )

    @model_validator(mode="after")
    def _urls(self) -> UiSettings:
        if self.logo_url is not None and not (
            self.logo_url.startswith("https://")
            or (self.logo_url.startswith("/") and not self.logo_url.startswith("//"))
        ):
            raise ValueError("ui.logo_url must be an https URL or a path starting with '/'")
        if self.support_url is not None and not self.support_url.startswith("https://"):
            raise ValueError("ui.support_url must be an https URL")
        return self


class ProviderSettings(_Section):
    """One upstream identity provider offered on the login page (see ``ostiary.federation``)."""

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
        description="Short id in URLs (`/federation/<name>/callback`) and identity links; "
        "never change it once users have logged in with it.",
    )
    kind: Literal["oidc", "github", "google"] = Field(
        description="`oidc` (any OpenID provider, needs `discovery_url`), `github` (OAuth app "
        "plus the user API) or `google` (OpenID preset)."
    )
    label: str | None = Field(
        None, max_length=60, description="Shown as 'Continue with <label>'; default per kind."
    )
    client_id: str = Field(min_length=1, description="This server's client_id at the provider.")
    client_secret: SecretStr = Field(description="This server's client secret at the provider.")
    scopes: tuple[str, ...] | None = Field(
        None,
        description="Scopes asked upstream. Default: `openid email profile` (oidc, google), "
        "`read:user user:email` (github).",
    )
    discovery_url: str | None = Field(
        None,
        description="OpenID discovery document (`.../.well-known/openid-configuration`); "
        "required for kind `oidc`, preset for `google`.",
    )
    keep_tokens: bool = Field(
        False,
        description="Keep the upstream access/refresh tokens (encrypted with "
        "`federation.token_key`) under the grant, for tool code (`upstream_access_token`).",
    )


class FederationSettings(_Section):
    """Log users in with upstream identity providers (OIDC, GitHub, Google)."""

    providers: tuple[ProviderSettings, ...] = Field(
        (),
        description='Upstream providers, e.g. `OSTIARY_FEDERATION__PROVIDERS=\'[{"name": '
        '"google", "kind": "google", "client_id": "...", '
        '"client_secret": "..."}]\'`.',
    )
    token_key: SecretStr | None = Field(
        None,
        description="AES-256-GCM key for upstream tokens at rest: 32 random bytes, base64. "
        "Required when any provider has `keep_tokens`.",
    )
    allow_private_network: bool = Field(
        False,
        description="Allow provider URLs on loopback/private addresses and plain http "
        "(tests and local IdPs only).",
    )

    @model_validator(mode="after")
    def _check(self) -> FederationSettings:
        names = [p.name for p in self.providers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"federation.providers: duplicate name(s) {', '.join(duplicates)}")
        for i, provider in enumerate(self.providers):
            if provider.kind == "oidc" and not provider.discovery_url:
                raise ValueError(f"federation.providers[{i}].discovery_url is required for oidc")
        keeping = [p.name for p in self.providers if p.keep_tokens]
        if keeping and self.token_key is None:
            raise ValueError(
                "federation.token_key is required when a provider keeps upstream tokens "
                f"(keep_tokens on: {', '.join(keeping)}); make one with `openssl rand -base64 32`"
            )
        if self.token_key is not None and token_key_problem(self.token_key.get_secret_value()):
            raise ValueError("federation.token_key must be 32 bytes, base64-encoded")
        return self


def token_key_problem(value: str) -> bool:
    """True when ``value`` is not the base64 of exactly 32 bytes."""
    try:
        return len(base64.b64decode(value, validate=True)) != 32
    except (binascii.Error, ValueError):
        return True


class TrustedIssuerSettings(_Section):
    """An enterprise identity provider whose ID-JAGs this server accepts (SEP-990)."""

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
        description="Short id for logs and identity links; never change it once users have "
        "signed in through it.",
    )
    issuer: str = Field(min_length=1, description="The ID-JAG `iss` value, exactly.")
    jwks_uri: str = Field(
        min_length=1,
        description="The identity provider's JWK set (https), fetched through the SSRF guard.",
    )
    client_ids: tuple[str, ...] | None = Field(
        None,
        description="When set, only ID-JAGs whose `client_id` is one of these are accepted.",
    )
    subject_claim: Literal["sub", "email"] = Field(
        "sub",
        description="The ID-JAG claim naming the user: its value is linked to a local user.",
    )
    match_username: bool = Field(
        False,
        description="Link a first-seen subject to the local user whose username equals the "
        "`subject_claim` value (e.g. users named by their email).",
    )
    create_users: bool = Field(
        False,
        description="Create a local user (no password) for a subject with no account; when "
        "false such an ID-JAG is refused with invalid_grant.",
    )


class EnterpriseSettings(_Section):
    """Enterprise-managed authorization: the ID-JAG grant (RFC 7523 jwt-bearer; SEP-990)."""

    trusted_issuers: tuple[TrustedIssuerSettings, ...] = Field(
        (),
        description="Identity providers whose ID-JAGs are exchanged for access tokens, e.g. "
        '`OSTIARY_ENTERPRISE__TRUSTED_ISSUERS=\'[{"name": "acme", "issuer": '
        '"https://idp.acme.example", "jwks_uri": "https://idp.acme.example/jwks"}]\'`. '
        "When empty the jwt-bearer grant is not offered.",
    )
    clock_skew_seconds: int = Field(
        60, ge=0, le=300, description="Leeway on an ID-JAG's `exp`, `iat` and `nbf`."
    )
    max_assertion_lifetime: int = Field(
        600,
        ge=60,
        le=3600,
        description="Longest accepted ID-JAG lifetime (`exp` - `iat`), in seconds.",
    )
    jwks_refetch_seconds: int = Field(
        60,
        ge=1,
        description="Shortest time between two fetches of an identity provider's JWK set "
        "when an ID-JAG names an unknown `kid` (key rotation).",
    )

    @model_validator(mode="after")
    def _check(self) -> EnterpriseSettings:
        for field in ("name", "issuer"):
            values = [getattr(t, field) for t in self.trusted_issuers]
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(
                    f"enterprise.trusted_issuers: duplicate {field}(s) {', '.join(duplicates)}"
                )
        return self


class Settings(BaseSettings):
    """Root settings. Build with ``Settings()`` (env + .env) or ``Settings(**overrides)``."""

    model_config = SettingsConfigDict(
        env_prefix="OSTIARY_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="forbid",
        frozen=True,
    )

    issuer: str = Field(
        "http://127.0.0.1:8000", description="Issuer URL; https unless dev mode is on."
    )
    data_dir: Path = Field(
        Path(".ostiary"),
        description="Local state: the default SQLite database and, unless "
        "`storage.encryption_key` is set, the storage key file `storage.key`.",
    )
    server: ServerSettings = Field(default_factory=ServerSettings)
    tokens: TokenSettings = Field(default_factory=TokenSettings)
    scopes: ScopeSettings = Field(default_factory=ScopeSettings)
    resources: ResourceSettings = Field(default_factory=ResourceSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    dev: DevSettings = Field(default_factory=DevSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    federation: FederationSettings = Field(default_factory=FederationSettings)
    enterprise: EnterpriseSettings = Field(default_factory=EnterpriseSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @model_validator(mode="before")
    @classmethod
    def _dev_mode_remembered(cls, data: Any) -> Any:
        """Dev mode stays on for a data directory ``ostiary serve`` made in dev mode.

        ``make serve`` turns dev mode on for the server only; the marker file it leaves in
        the data directory lets every later command on that directory (``ostiary users add``,
        ``check-config``) agree, unless ``dev.enabled`` is set explicitly either way.
        """
        if not isinstance(data, dict):
            return data
        dev = data.get("dev")
        if isinstance(dev, DevSettings) or (isinstance(dev, dict) and "enabled" in dev):
            return data
        if (Path(data.get("data_dir") or ".ostiary") / DEV_MARKER).is_file():
            return {**data, "dev": {**(dev or {}), "enabled": True}}
        return data

    @model_validator(mode="after")
    def _default_database_in_data_dir(self) -> Settings:
        if "url" not in self.storage.model_fields_set:
            url = f"sqlite:///{self.data_dir / 'ostiary.db'}"
            object.__setattr__(self, "storage", self.storage.model_copy(update={"url": url}))
        return self

    @model_validator(mode="after")
    def _check_issuer(self) -> Settings:
        problem = issuer_problem(self.issuer, dev=self.dev.enabled)
        if problem:
            raise ValueError(f"issuer: {problem}")
        if self.features.client_id_metadata_documents and self.features.cimd_ack != CIMD_DRAFT:
            raise ValueError(
                f"features.cimd_ack must be {CIMD_DRAFT!r} (the draft ostiary implements); "
                f"got {self.features.cimd_ack!r}"
            )
        if self.security.password_hash != "rfc9106" and not self.dev.enabled:
            raise ValueError(
                f"security.password_hash {self.security.password_hash!r} is for test suites "
                "and needs dev mode (dev.enabled); production hashes with 'rfc9106'"
            )
        return self

    @property
    def default_resource(self) -> str:
        """The audience used when a request names no resource: the built-in MCP endpoint."""
        return self.resources.allowed[0] if self.resources.allowed else f"{self.issuer}/mcp"

    @property
    def allowed_resources(self) -> tuple[str, ...] | None:
        """Resources accepted by the authorization endpoint; None means any."""
        if self.resources.allow_any:
            return None
        return self.resources.allowed or (f"{self.issuer}/mcp",)

    @property
    def issuer_path(self) -> str:
        """The issuer's path without trailing slash ('' for a host-only issuer)."""
        return urlsplit(self.issuer).path.rstrip("/")

    def relaxed_checks(self) -> list[str]:
        """What dev mode relaxes, for the start-up warning."""
        if not self.dev.enabled:
            return []
        relaxed = []
        if self.issuer.startswith("http://"):
            relaxed.append(f"issuer {self.issuer} is plain http (allowed on loopback in dev mode)")
        relaxed.append("session cookies are not marked Secure on an http issuer")
        if self.security.password_hash != "rfc9106":
            relaxed.append(
                f"passwords are hashed at argon2's minimum cost "
                f"(security.password_hash={self.security.password_hash!r})"
            )
        if (self.data_dir / DEV_MARKER).is_file():
            relaxed.append(
                f"dev mode is remembered in {self.data_dir / DEV_MARKER} "
                "(delete it, or set OSTIARY_DEV__ENABLED=false, to turn dev mode off)"
            )
        return relaxed

    def issuer_source(self) -> str:
        """Where :attr:`issuer` came from, as start-up and ``check-config`` print it."""
        if "issuer" in self.model_fields_set:
            return "set explicitly: OSTIARY_ISSUER, .env or --issuer"
        return "the default"


def resolve_issuer(settings: Settings, overrides: dict[str, Any]) -> tuple[Settings, str]:
    """The one issuer rule for ``serve``, ``gateway`` and ``check-config``.

    An explicit issuer (environment, ``.env``, ``--issuer``) always wins. Otherwise, in dev
    mode, the issuer is derived from the bind address (``--host``/``--port`` or
    ``server.host``/``server.port``), so ``ostiary serve --port 9000`` is reachable at the URL
    it names. Every command resolves it the same way and prints where it came from.

    Args:
        settings: Settings loaded from the environment (and ``overrides``).
        overrides: The command line's overrides (``server``, maybe ``issuer``), applied again
            if the issuer is derived.

    Returns:
        The settings to use and a description of the issuer's source.
    """
    if "issuer" in settings.model_fields_set or not settings.dev.enabled:
        return settings, settings.issuer_source()
    host, port = settings.server.host, settings.server.port
    shown = f"[{host}]" if ":" in host else host
    derived = f"http://{shown}:{port}"
    if derived != settings.issuer:
        settings = load_settings(**overrides, issuer=derived)
    return settings, f"derived from the bind address {shown}:{port} in dev mode"


def issuer_problem(issuer: str, *, dev: bool) -> str | None:
    """Why ``issuer`` is unusable (RFC 8414 §2), or None.

    An issuer is https, has no query or fragment and no trailing slash; plain http is allowed
    only for a loopback host in dev mode.
    """
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"{issuer!r} is not an absolute http(s) URL"
    if parts.query or parts.fragment:
        return f"{issuer!r} must not have a query or fragment (RFC 8414 §2)"
    if issuer.endswith("/"):
        return f"{issuer!r} must not end with '/'"
    if parts.scheme == "http":
        if not dev:
            return (
                f"{issuer!r} is plain http; use https, or set OSTIARY_DEV__ENABLED=true "
                "for a local loopback issuer"
            )
        if not is_loopback_host(parts.hostname):
            return f"{issuer!r}: http is allowed only for loopback hosts, even in dev mode"
    return None


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into one readable ConfigurationError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            lines.append(f"  {where}: {err['msg']}")
        raise ConfigurationError("invalid settings:\n" + "\n".join(lines)) from None
