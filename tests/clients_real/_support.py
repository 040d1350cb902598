"""Shared pieces of the real-client tests: pinned npm clients, a recording browser, the pages.

Each client is the npm package ``scripts/install-tools.sh`` pins into ``.tools``; a missing one
skips locally and fails in CI (``tests._services.unavailable``). The "browser" is the
headless form driver (``tests.helpers.browserless``): it submits the real login and consent
pages over HTTP and hands the redirect to the client, by following it to the client's loopback
callback or by returning it for the test to paste.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import httpx

from tests._services import TOOLS, node22, unavailable
from tests.demo._support import PASSWORD, USERNAME
from tests.e2e.server import RunningServer
from tests.helpers.browserless import authorize

MODULES = TOOLS / "node_modules"


def npm_entry(package: str, relative: str) -> Path:
    """The file ``relative`` inside the installed npm ``package``, or skip/fail when missing."""
    path = MODULES / package / relative
    if not path.exists():
        unavailable(f"{package} not installed in .tools (run `make tools`)")
    return path


def node_env(home: Path, **extra: str) -> dict[str, str]:
    """A client's environment: Node 22 first on PATH, its own HOME, no display to open."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DISPLAY", "WAYLAND_DISPLAY", "BROWSER"} and not key.startswith("OSTIARY_")
    }
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "PATH": f"{node22().parent}{os.pathsep}{env.get('PATH', '')}",
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "NO_COLOR": "1",
            "CI": "1",
            **extra,
        }
    )
    return env


class RecordingBrowser:
    """An executable that records every URL a client asks the desktop to open, and nothing else.

    Point ``BROWSER`` (honoured by xdg-open and the ``open`` npm package on Linux) at
    :attr:`path`; :meth:`opened` then says whether the client started a login.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.log = directory / "opened.txt"
        self.path = directory / "browser.sh"
        self.path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{self.log}"\n')
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR)

    def opened(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def add_user(server: RunningServer, username: str = USERNAME) -> str:
    """Create the user the pages log in as; returns its subject."""
    out = server.cli("users", "add", username, "--password", PASSWORD)
    match = re.search(r"subject (\S+)\)", out)
    assert match is not None, out
    return match.group(1)


async def log_in(authorize_url: str, *, deliver: bool = True) -> str:
    """Log in and consent on the real pages; returns the redirect to the client's callback.

    With ``deliver`` the redirect is also followed, as a browser would, to the client's
    loopback listener (which must answer 2xx).
    """
    async with httpx.AsyncClient(timeout=30) as browser:
        location = await authorize(browser, authorize_url, username=USERNAME, password=PASSWORD)
        assert "code=" in location, f"authorization failed: {location}"
        if deliver:
            response = await browser.get(location)
            assert response.is_success, f"{location}: {response.status_code} {response.text}"
    return location
