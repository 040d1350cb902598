"""Upstream identity providers: the Provider protocol and the OIDC, Google and GitHub kinds.

The authorization server is a confidential OAuth 2.1 client of each provider: authorization
code with PKCE S256 (RFC 7636), client authentication at the token endpoint (RFC 6749 §2.3.1),
refresh (RFC 6749 §6). A provider turns that into three questions the login flow asks:
where to send the browser, what the code is worth, and who logged in. Adding a kind is one
small class implementing :class:`Provider` plus an entry in :data:`PROVIDER_KINDS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol
from urllib.parse import quote, urlencode, urlsplit

from ostiary.federation.http import UpstreamError, UpstreamHttp
from ostiary.federation.oidc import IdTokenError, OidcMetadata, ProviderKeys, validate_id_token
from ostiary.settings import ProviderSettings

Clock = Callable[[], int]
#: How long a discovery document is reused before it is fetched again.
DISCOVERY_TTL_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class UpstreamTokens:
    """A provider's token response (RFC 6749 §5.1)."""

    access_token: str
    token_type: str = "Bearer"
    refresh_token: str | None = None
    expires_in: int | None = None
    scope: str | None = None
    id_token: str | None = None

    @classmethod
    def from_response(cls, body: dict[str, Any]) -> UpstreamTokens:
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise UpstreamError("the provider's token response has no access_token")
        expires_in = body.get("expires_in")
        if isinstance(expires_in, str) and expires_in.isdigit():
            expires_in = int(expires_in)  # some providers send a string
        return cls(
            access_token=access,
            token_type=str(body.get("token_type", "Bearer")),
            refresh_token=_optional_text(body, "refresh_token"),
            expires_in=expires_in if isinstance(expires_in, int) and expires_in > 0 else None,
            scope=_optional_text(body, "scope"),
            id_token=_optional_text(body, "id_token"),
        )


def _optional_text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class UpstreamIdentity:
    """Who logged in upstream: a stable subject and what to show of them."""

    subject: str
    email: str | None = None
    display_name: str | None = None
    username: str | None = None


class Provider(Protocol):
    """One configured upstream identity provider."""

    name: str
    label: str
    keep_tokens: bool

    async def authorization_endpoint(self) -> str:
        """Where the browser goes (its origin joins the consent page's form-action)."""

    async def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str
    ) -> str:
        """The upstream authorization request (S256 challenge, random state and nonce)."""

    async def check_response_issuer(self, iss: str | None) -> None:
        """RFC 9207 §2.4: refuse a callback whose ``iss`` names another issuer."""

    async def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str
    ) -> UpstreamTokens:
        """Redeem the code at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.5)."""

    async def fetch_identity(
        self, tokens: UpstreamTokens, *, nonce_hash: str, now: int
    ) -> UpstreamIdentity:
        """Validate what the tokens say about the user and return the identity."""

    async def refresh(self, refresh_token: str) -> UpstreamTokens:
        """A new access token from a refresh token (RFC 6749 §6)."""


class OAuthProvider:
    """Shared confidential-client plumbing; subclasses say where the endpoints are."""

    default_scopes: ClassVar[tuple[str, ...]] = ()
    default_label: ClassVar[str] = ""

    def __init__(self, config: ProviderSettings, http: UpstreamHttp, clock: Clock) -> None:
        self.name = config.name
        self.label = config.label or self.default_label or config.name
        self.keep_tokens = config.keep_tokens
        self.client_id = config.client_id
        self._secret = config.client_secret
        self.scopes = config.scopes if config.scopes is not None else self.default_scopes
        self.http = http
        self.clock = clock

    async def authorization_endpoint(self) -> str:
        raise NotImplementedError

    async def token_endpoint(self) -> str:
        raise NotImplementedError

    async def use_basic_auth(self) -> bool:
        return True

    def extra_authorization_params(self) -> dict[str, str]:
        return {}

    async def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str
    ) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.scopes),
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            **self.extra_authorization_params(),
        }
        if self.sends_nonce:
            params["nonce"] = nonce
        endpoint = await self.authorization_endpoint()
        separator = "&" if urlsplit(endpoint).query else "?"
        return f"{endpoint}{separator}{urlencode(params)}"

    sends_nonce: ClassVar[bool] = False

    async def check_response_issuer(self, iss: str | None) -> None:
        return None

    async def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str
    ) -> UpstreamTokens:
        return await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            }
        )

    async def refresh(self, refresh_token: str) -> UpstreamTokens:
        return await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )

    async def _token_request(self, form: dict[str, str]) -> UpstreamTokens:
        secret = self._secret.get_secret_value()
        endpoint = await self.token_endpoint()
        if await self.use_basic_auth():
            # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
            auth = (quote(self.client_id, safe=""), quote(secret, safe=""))
            body = await self.http.post_form(endpoint, form, auth=auth)
        else:
            body = await self.http.post_form(
                endpoint, {**form, "client_id": self.client_id, "client_secret": secret}
            )
        return UpstreamTokens.from_response(body)


class OidcProvider(OAuthProvider):
    """Any OpenID Provider, configured by its discovery URL (OpenID Connect Discovery 1.0)."""

    default_scopes = ("openid", "email", "profile")
    sends_nonce = True

    def __init__(self, config: ProviderSettings, http: UpstreamHttp, clock: Clock) -> None:
        super().__init__(config, http, clock)
        self.discovery_url = config.discovery_url or self.default_discovery_url
        self._metadata: OidcMetadata | None = None
        self._metadata_at = 0
        self._keys: ProviderKeys | None = None

    default_discovery_url: ClassVar[str] = ""

    async def metadata(self) -> OidcMetadata:
        now = self.clock()
        if self._metadata is None or now - self._metadata_at >= DISCOVERY_TTL_SECONDS:
            document = await self.http.get_document(self.discovery_url)
            metadata = OidcMetadata.parse(document, self.discovery_url)
            if self._metadata is None or metadata.jwks_uri != self._metadata.jwks_uri:
                self._keys = ProviderKeys(self.http, metadata.jwks_uri, self.clock)
            self._metadata, self._metadata_at = metadata, now
        return self._metadata

    async def authorization_endpoint(self) -> str:
        return (await self.metadata()).authorization_endpoint

    async def token_endpoint(self) -> str:
        return (await self.metadata()).token_endpoint

    async def use_basic_auth(self) -> bool:
        methods = (await self.metadata()).token_auth_methods
        return "client_secret_basic" in methods or "client_secret_post" not in methods

    async def check_response_issuer(self, iss: str | None) -> None:
        metadata = await self.metadata()
        if iss is not None and iss != metadata.issuer:
            raise UpstreamError("the sign-in response came from another issuer (RFC 9207)")
        if iss is None and metadata.iss_parameter:
            raise UpstreamError("the sign-in response has no iss (RFC 9207)")

    async def fetch_identity(
        self, tokens: UpstreamTokens, *, nonce_hash: str, now: int
    ) -> UpstreamIdentity:
        if tokens.id_token is None:
            raise IdTokenError("the provider returned no ID token")
        metadata = await self.metadata()
        assert self._keys is not None
        claims = await validate_id_token(
            tokens.id_token,
            keys=self._keys,
            metadata=metadata,
            client_id=self.client_id,
            nonce_hash=nonce_hash,
            now=now,
        )
        if metadata.userinfo_endpoint and not ("email" in claims and "name" in claims):
            info = await self.http.get_with_token(metadata.userinfo_endpoint, tokens.access_token)
            # OIDC Core §5.3.2: a userinfo sub differing from the ID token's is refused.
            if info.get("sub") != claims["sub"]:
                raise UpstreamError("the provider's userinfo names another subject")
            claims = {**info, **claims}
        return UpstreamIdentity(
            subject=str(claims["sub"]),
            email=_claim(claims, "email") if claims.get("email_verified", True) else None,
            display_name=_claim(claims, "name"),
            username=_claim(claims, "preferred_username"),
        )


class GoogleProvider(OidcProvider):
    """Google accounts (OpenID Connect). With ``keep_tokens``, asks for offline access."""

    default_label = "Google"
    default_discovery_url = "https://accounts.google.com/.well-known/openid-configuration"

    def extra_authorization_params(self) -> dict[str, str]:
        # Google issues a refresh token only with access_type=offline (and on a consent
        # prompt after the first grant).
        return {"access_type": "offline", "prompt": "consent"} if self.keep_tokens else {}


class GitHubProvider(OAuthProvider):
    """GitHub OAuth apps: no OpenID Connect, so the identity comes from the REST user API."""

    default_scopes = ("read:user", "user:email")
    default_label = "GitHub"
    authorize_url: ClassVar[str] = "https://github.com/login/oauth/authorize"
    token_url: ClassVar[str] = "https://github.com/login/oauth/access_token"
    api_url: ClassVar[str] = "https://api.github.com"

    async def authorization_endpoint(self) -> str:
        return self.authorize_url

    async def token_endpoint(self) -> str:
        return self.token_url

    async def use_basic_auth(self) -> bool:
        return False  # GitHub documents client_id/client_secret in the form.

    async def fetch_identity(
        self, tokens: UpstreamTokens, *, nonce_hash: str, now: int
    ) -> UpstreamIdentity:
        user = await self.http.get_with_token(f"{self.api_url}/user", tokens.access_token)
        user_id = user.get("id")
        if not isinstance(user_id, int) or isinstance(user_id, bool):
            raise UpstreamError("GitHub's user API returned no numeric id")
        email = _claim(user, "email")
        if email is None and "user:email" in self.scopes:
            email = await self._primary_email(tokens.access_token)
        return UpstreamIdentity(
            subject=str(user_id),  # the login can be renamed; the id cannot
            email=email,
            display_name=_claim(user, "name"),
            username=_claim(user, "login"),
        )

    async def _primary_email(self, access_token: str) -> str | None:
        """The verified primary address from ``/user/emails`` (the profile's may be hidden)."""
        try:
            emails = await self.http.get_any_with_token(f"{self.api_url}/user/emails", access_token)
        except UpstreamError:
            return None  # the address is informational; the login does not depend on it
        if not isinstance(emails, list):
            return None
        for entry in emails:
            if isinstance(entry, dict) and entry.get("primary") and entry.get("verified"):
                return _claim(entry, "email")
        return None


def _claim(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value[:200] if isinstance(value, str) and value else None


ProviderFactory = Callable[[ProviderSettings, UpstreamHttp, Clock], Provider]

#: Provider kind (``federation.providers[].kind``) → class.
PROVIDER_KINDS: dict[str, ProviderFactory] = {
    "oidc": OidcProvider,
    "google": GoogleProvider,
    "github": GitHubProvider,
}


def build_provider(
    config: ProviderSettings, http: UpstreamHttp, clock: Clock = lambda: int(time.time())
) -> Provider:
    """The provider object for one ``federation.providers`` entry."""
    return PROVIDER_KINDS[config.kind](config, http, clock)
