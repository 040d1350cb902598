"""Browser fixtures: a real ``ostiary serve``, a loopback client app, and Debian's Chromium.

The server runs as its own process (the same one a deployment runs) on a free loopback port;
the "client" is a tiny HTTP server on another loopback port that answers the OAuth callback
and serves a page that tries to frame the consent page from a different origin. Playwright
drives ``/usr/bin/chromium`` (never a downloaded browser), one browser per test module.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests._services import ROOT, chromium, unavailable
from tests.e2e.server import RunningServer, running_server

try:
    from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

    HAVE_PLAYWRIGHT = True
except ImportError:  # pragma: no cover - the dev extra installs it
    HAVE_PLAYWRIGHT = False

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
AXE = ROOT / ".tools" / "node_modules" / "axe-core" / "axe.min.js"
USERNAME = "ada"
PASSWORD = "analytical engine 1843"
DISPLAY_NAME = "Ada Lovelace"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class _AppHandler(BaseHTTPRequestHandler):
    """The client app: ``/callback`` (redirect target) and ``/frame`` (framing attempt)."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/callback":
            body = "<!doctype html><title>Callback</title><h1>Back at the app</h1>"
        elif parts.path == "/frame":
            src = html.escape(parse_qs(parts.query)["src"][0])
            body = (
                "<!doctype html><title>Framing attempt</title>"
                f'<iframe id="victim" title="victim" src="{src}" width="600" height="600"></iframe>'
            )
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class ClientApp:
    origin: str

    @property
    def callback(self) -> str:
        return f"{self.origin}/callback"


@dataclass
class World:
    server: RunningServer
    app: ClientApp
    client_id: str
    client_secret: str
    remote_client_id: str

    @property
    def issuer(self) -> str:
        return self.server.issuer

    def authorize_url(
        self, challenge: str, *, client_id: str | None = None, redirect_uri: str | None = None
    ) -> str:
        params = {
            "response_type": "code",
            "client_id": client_id or self.client_id,
            "redirect_uri": redirect_uri or self.app.callback,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "xyz-state",
            "scope": "mcp:read mcp:write",
            "resource": f"{self.issuer}/mcp",
        }
        return f"{self.issuer}/authorize?{urlencode(params)}"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.fixture(scope="session")
def client_app() -> Iterator[ClientApp]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _AppHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield ClientApp(f"http://127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory, client_app: ClientApp) -> Iterator[World]:
    chromium()  # skip (or fail in CI) before starting anything when there is no browser
    data = tmp_path_factory.mktemp("browser-as")
    with running_server(
        data,
        OSTIARY_UI__PRODUCT_NAME="Acme Cloud",
        OSTIARY_UI__ACCENT_COLOR="#5b3fd1",
        # Every test sees the consent page, whatever an earlier test approved.
        OSTIARY_SECURITY__REMEMBER_CONSENT="false",
    ) as server:
        server.cli("users", "add", USERNAME, "--password", PASSWORD, "--display-name", DISPLAY_NAME)
        client = server.add_client(
            "--name",
            "Research Notebook",
            "--redirect-uri",
            client_app.callback,
            "--auth-method",
            "client_secret_basic",
            "--logo-uri",
            "https://notebook.example.com/logo.png",
            "--client-uri",
            "https://notebook.example.com",
        )
        remote = server.add_client(
            "--name",
            "Desk Helper",
            "--redirect-uri",
            "https://helper.example.net/oauth/callback",
            "--application-type",
            "native",
        )
        yield World(
            server, client_app, client["client_id"], client["client_secret"], remote["client_id"]
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module.

    Module scope, not session: Playwright's sync API keeps an event loop running on the main
    thread while it is open, and pytest-asyncio cannot run the async tests of other modules
    until it is stopped.
    """
    executable = chromium()
    if not HAVE_PLAYWRIGHT:
        unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh profile per test with the pages' CSP enforced."""
    ctx = browser.new_context(viewport={"width": 1100, "height": 900})
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def axe_path() -> Path:
    if not AXE.exists():
        unavailable("axe-core not installed (run `make tools`)")
    return AXE
