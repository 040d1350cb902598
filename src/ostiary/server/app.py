"""The authorization-server application: ``create_authorization_server(settings, storage)``.

Wires the async core to Starlette routes; every URL lives under the issuer's path. On start it
migrates storage, creates the first signing key and warns loudly about relaxed dev checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ostiary.core.context import IssuerKeySource, JwksSource, MetadataResolver, ServerContext
from ostiary.core.metadata import well_known_paths
from ostiary.core.storage import Storage
from ostiary.server.activity import Activity, ActivityMiddleware
from ostiary.server.endpoints import (
    account,
    admin_routes,
    authorize,
    health,
    login,
    metadata,
    readiness,
    register,
    token,
)
from ostiary.server.metrics import Metrics, metrics_endpoint
from ostiary.server.ui.render import STATIC, theme_endpoint
from ostiary.settings import Settings
from ostiary.storage import open_storage, run_purge_loop
from ostiary.storage_key import storage_cipher

log = logging.getLogger("ostiary.server")


def build_routes(ctx: ServerContext) -> list[BaseRoute]:
    """Every URL the authorization server answers, in one place."""
    settings = ctx.settings
    base = settings.issuer_path
    meta = metadata.metadata_endpoint(ctx)
    routes: list[BaseRoute] = [
        Route(path, meta, methods=["GET"])
        for suffix in ("oauth-authorization-server", "openid-configuration")
        for path in well_known_paths(settings, suffix)
    ]
    routes += [
        Route(f"{base}/jwks", metadata.jwks_endpoint(ctx), methods=["GET"]),
        Route(f"{base}/authorize", authorize.authorize_endpoint(ctx), methods=["GET", "POST"]),
        Route(
            f"{base}/interaction/{{interaction_id}}",
            authorize.interaction_endpoint(ctx),
            methods=["GET"],
        ),
        Route(
            f"{base}/interaction/{{interaction_id}}/login",
            login.login_endpoint(ctx),
            methods=["POST"],
        ),
        Route(
            f"{base}/interaction/{{interaction_id}}/code",
            login.code_endpoint(ctx),
            methods=["POST"],
        ),
        Route(
            f"{base}/interaction/{{interaction_id}}/consent",
            authorize.consent_endpoint(ctx),
            methods=["POST"],
        ),
        Route(f"{base}/logout", login.logout_endpoint(ctx), methods=["GET", "POST"]),
        Route(f"{base}/account", account.account_endpoint(ctx), methods=["GET"]),
        Route(f"{base}/account/revoke", account.revoke_endpoint(ctx), methods=["POST"]),
        Route(f"{base}/token", token.token_endpoint(ctx), methods=["POST"]),
        Route(f"{base}/revoke", token.revocation_endpoint(ctx), methods=["POST"]),
        Route(f"{base}/introspect", token.introspection_endpoint(ctx), methods=["POST"]),
        Route(f"{base}/health", health.health_endpoint(ctx), methods=["GET"]),
        Route(f"{base}/ready", readiness.readiness_endpoint(ctx), methods=["GET"]),
        Route(f"{base}/static/theme.css", theme_endpoint(settings), methods=["GET"]),
        Mount(f"{base}/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    if settings.server.stats_token is not None:  # off for the public: counts are an admin's
        stats_token = settings.server.stats_token.get_secret_value()
        routes.append(
            Route(f"{base}/stats", health.stats_endpoint(ctx, stats_token), methods=["GET"])
        )
    if settings.federation.providers:
        routes += federation_routes(ctx)
    if settings.features.dynamic_registration:
        routes += [
            Route(f"{base}/register", register.registration_endpoint(ctx), methods=["POST"]),
            Route(
                f"{base}/register/{{client_id}}",
                register.client_management_endpoint(ctx),
                methods=["GET", "PUT", "DELETE"],
            ),
        ]
    return routes


def federation_routes(ctx: ServerContext) -> list[BaseRoute]:
    """Upstream identity provider login: consent-first start, and the upstream callback."""
    from ostiary.server.endpoints import federation

    federation.offer_on_login_page(ctx)
    base = ctx.settings.issuer_path
    start = f"{base}/interaction/{{interaction_id}}/federation/{{provider}}"
    return [
        Route(start, federation.start_endpoint(ctx), methods=["GET"]),
        Route(start, federation.decision_endpoint(ctx), methods=["POST"]),
        Route(
            f"{base}/federation/{{provider}}/callback",
            federation.callback_endpoint(ctx),
            methods=["GET"],
        ),
    ]


def default_fetchers(settings: Settings) -> tuple[MetadataResolver, JwksSource]:
    """The CIMD resolver and the client-JWKS loader, each behind the SSRF-guarded fetcher.

    The CIMD domain allow-list applies to metadata documents only, not to ``jwks_uri``.
    """
    from ostiary.net.cimd import ClientMetadataResolver
    from ostiary.net.fetch import FetchPolicy, SafeFetcher
    from ostiary.net.jwks import JwksLoader

    security = settings.security
    policy = FetchPolicy(
        allow_private=security.allow_private_fetch,
        timeout_seconds=security.fetch_timeout_seconds,
        max_bytes=security.fetch_max_bytes,
    )
    cimd_policy = replace(policy, allowed_domains=security.cimd_allowed_domains)
    resolver = ClientMetadataResolver(
        SafeFetcher(cimd_policy), client_credentials_enabled=settings.features.client_credentials
    )
    return resolver, JwksLoader(SafeFetcher(policy))


def default_issuer_keys(settings: Settings) -> IssuerKeySource:
    """Trusted identity providers' key sets (``enterprise.trusted_issuers``), SSRF-guarded.

    A key set is larger than a client metadata document (several RSA keys), so it may be
    up to 64 KiB whatever ``security.fetch_max_bytes`` says.
    """
    from ostiary.net.fetch import FetchPolicy, SafeFetcher
    from ostiary.net.jwks import IssuerJwksCache

    security = settings.security
    policy = FetchPolicy(
        allow_private=security.allow_private_fetch,
        timeout_seconds=security.fetch_timeout_seconds,
        max_bytes=max(security.fetch_max_bytes, 64 * 1024),
    )
    return IssuerJwksCache(
        SafeFetcher(policy), refetch_seconds=settings.enterprise.jwks_refetch_seconds
    )


def create_authorization_server(
    settings: Settings,
    storage: Storage | None = None,
    *,
    resolver: MetadataResolver | None = None,
    context: ServerContext | None = None,
) -> Starlette:
    """The authorization server as an ASGI app; ``app.state.ctx`` is its core context.

    ``app.state.activity`` feeds the operator console at ``/admin``. With metrics on
    (``metrics.token`` or ``metrics.bind``), ``app.state.metrics`` counts the
    audit events and times the storage; :func:`ostiary.assembly.serving.build_app` adds the
    per-request counts around the whole app.
    """
    metrics = Metrics() if settings.metrics.enabled else None
    if context is None:
        storage = storage if storage is not None else open_storage(settings)
        if metrics is not None:
            storage = metrics.instrument(storage)
        default_resolver, jwks = default_fetchers(settings)
        context = ServerContext.build(
            settings,
            storage,
            cipher=storage_cipher(settings),
            resolver=resolver or default_resolver,
            jwks=jwks,
        )
    ctx = context
    if ctx.issuer_keys is None and settings.enterprise.trusted_issuers:
        ctx.issuer_keys = default_issuer_keys(settings)
    routes = build_routes(ctx)
    # The operator console's recent events and per-minute rates (server/activity.py).
    activity = Activity(ctx.clock)
    ctx.audit.subscribe(activity.audit_sink)
    routes += admin_routes(ctx, activity)
    if metrics is not None:
        ctx.audit.subscribe(metrics.audit_sink)
        if settings.metrics.token is not None:
            token = settings.metrics.token.get_secret_value()
            path = f"{settings.issuer_path}/metrics"
            routes.append(Route(path, metrics_endpoint(metrics, token), methods=["GET"]))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await startup(ctx)
        purge = asyncio.create_task(
            run_purge_loop(ctx.storage, settings.storage.purge_interval_seconds, ctx.clock),
            name="ostiary-purge",
        )
        try:
            yield
        finally:
            purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge
            await ctx.storage.close()

    middleware = [Middleware(ActivityMiddleware, activity=activity)]
    if settings.server.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.server.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            )
        )
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.ctx = ctx
    app.state.metrics = metrics
    app.state.activity = activity
    return app


async def startup(ctx: ServerContext) -> None:
    """Migrate storage, make sure a signing key exists, and warn about dev mode."""
    await ctx.storage.initialize()
    await ctx.keys.ensure(ctx.clock())
    for relaxed in ctx.settings.relaxed_checks():
        log.warning("DEV MODE: %s", relaxed)
