"""What ``ostiary serve`` runs: one app, in one process or in each of ``--workers N``.

With several workers uvicorn starts N processes that accept on one socket; each builds its own
app through :func:`worker_app` (a uvicorn factory). Everything they must agree on lives outside
the process: the settings come from the same environment plus the issuer and bind address the
parent resolved (passed in :data:`OPTIONS_ENV`, so every worker has the same issuer), the
storage key from the key file or setting the parent's pre-flight made sure of, the signing keys,
sessions and codes from the shared storage (SQLite file, PostgreSQL, Redis). Per-process state
stays per process: the per-address rate-limit counters (unless ``security.rate_limit_scope``
is ``storage`` or Redis is configured), the client cache, the console's recent activity.
``memory://`` storage is per process and so refused with more than one worker.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any, Final

from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp

from ostiary._logging import configure_logging
from ostiary.errors import ConfigurationError
from ostiary.resource.concurrency import PerAddressConcurrency
from ostiary.server.metrics import MetricsMiddleware, collecting_registry
from ostiary.server.request_ids import RequestIdMiddleware
from ostiary.settings import Settings, load_settings

__all__ = [
    "OPTIONS_ENV",
    "ServeOptions",
    "build_app",
    "check_workers",
    "start_metrics_listener",
    "worker_app",
    "worker_environment",
]

#: Environment variable carrying the parent's resolved settings and flags to each worker.
OPTIONS_ENV: Final = "OSTIARY_SERVE_WORKER_OPTIONS"


@dataclass(frozen=True)
class ServeOptions:
    """The ``serve`` flags that shape the app (None: from ``settings.demo``)."""

    demo: bool = True
    read_scope: str | None = None
    write_scope: str | None = None
    hide_unauthorized_tools: bool | None = None
    mixed_auth: bool | None = None


def build_app(settings: Settings, options: ServeOptions) -> ASGIApp:
    """The authorization server, with the demo MCP server at ``{issuer}/mcp`` unless off.

    Raises:
        ConfigurationError: A demo scope the authorization server does not support.
    """
    from ostiary.assembly.demo import create_combined_app
    from ostiary.demo.server import DemoScopes
    from ostiary.server.app import create_authorization_server

    app: Any
    if not options.demo:
        app = create_authorization_server(settings)
    else:
        app = create_combined_app(
            settings,
            scopes=DemoScopes(
                read=options.read_scope or settings.demo.read_scope,
                write=options.write_scope or settings.demo.write_scope,
            ),
            hide_unauthorized_tools=options.hide_unauthorized_tools,
            mixed_auth=options.mixed_auth,
        )
    metrics = app.state.metrics
    counted = app if metrics is None else MetricsMiddleware(app, metrics)
    bounded = PerAddressConcurrency(
        counted,
        limit=settings.server.max_requests_per_address,
        trust_forwarded_for=settings.server.trust_forwarded_for,
    )
    return RequestIdMiddleware(bounded)


def start_metrics_listener(bind: str, app: ASGIApp) -> None:
    """Serve the metrics on ``bind`` (``host:port``) from a thread of this process.

    With workers, this process serves no requests: it reads what they wrote to
    ``PROMETHEUS_MULTIPROC_DIR``. Alone, it reads the app's own registry.
    """
    from prometheus_client import start_http_server

    host, _, port = bind.rpartition(":")
    inner = app
    while not isinstance(inner, MetricsMiddleware) and hasattr(inner, "app"):
        inner = inner.app  # RequestIdMiddleware, PerAddressConcurrency
    own = inner.metrics.registry if isinstance(inner, MetricsMiddleware) else CollectorRegistry()
    start_http_server(int(port), addr=host.strip("[]"), registry=collecting_registry(own))


def check_workers(settings: Settings, workers: int) -> None:
    """Several workers need storage every process sees.

    Raises:
        ConfigurationError: ``workers`` below 1, or more than one on ``memory://``.
    """
    if workers < 1:
        raise ConfigurationError("--workers must be at least 1")
    if workers > 1 and settings.storage.url.startswith("memory://"):
        raise ConfigurationError(
            "memory:// storage is per process: use SQLite or PostgreSQL with --workers > 1"
        )


def worker_environment(settings: Settings, options: ServeOptions) -> str:
    """The value of :data:`OPTIONS_ENV` for the workers of this ``serve``."""
    # Only what the parent resolved from its command line: everything else (secrets
    # included, which a JSON dump would mask) each worker reads from the same environment.
    bind = {"host": settings.server.host, "port": settings.server.port}
    resolved = {"issuer": settings.issuer, "server": bind}
    return json.dumps({"settings": resolved, "options": asdict(options)})


def worker_app() -> ASGIApp:
    """The uvicorn factory each worker process calls."""
    data: dict[str, Any] = json.loads(os.environ[OPTIONS_ENV])
    settings = load_settings(**data["settings"])
    configure_logging(json_format=settings.server.log_format == "json")
    return build_app(settings, ServeOptions(**data["options"]))
