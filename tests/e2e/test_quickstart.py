"""The README's quickstart, verbatim, on a fresh clone: ``make serve``, create a user, call a tool.

A newcomer types ``make serve`` (which makes ``.venv`` and starts the server in dev mode),
then, in another terminal, the commands the README shows. This test does exactly that on a
``git clone`` of this repository's HEAD: the only differences are the port (a free one, through
``OSTIARY_SERVER__PORT``, so a server already on 8000 cannot interfere; the issuer follows it,
by the one issuer rule) and the browser, which is a recording opener whose URL the real login
and consent pages are then driven through.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.clients_real._support import RecordingBrowser, log_in
from tests.demo._support import PASSWORD, USERNAME
from tests.e2e.server import free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def _newcomer_env(home: Path) -> dict[str, str]:
    """The environment of someone who has never configured ostiary."""
    # Nor does the newcomer measure coverage: the suite's (make test follows subprocesses)
    # would record the clone's copy of the package beside the checkout's.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OSTIARY_", "VIRTUAL_ENV", "COVERAGE_"))
    }
    env["HOME"] = str(home)
    env.pop("BROWSER", None)
    return env


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.fail("git and make are needed for the quickstart test")
    target = tmp_path / "ostiary"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True, timeout=120)
    return target


@pytest.fixture
def served(clone: Path, tmp_path: Path) -> Iterator[tuple[Path, str, dict[str, str]]]:
    home = tmp_path / "home"
    home.mkdir()
    env = _newcomer_env(home)
    env["PIP_CACHE_DIR"] = os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
    port = free_port()
    log = (tmp_path / "make-serve.log").open("wb")
    process = subprocess.Popen(
        ["make", "serve"],
        cwd=clone,
        env={**env, "OSTIARY_SERVER__PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # make, its shell and the server: one group to stop
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600  # the first make serve installs .venv
        while True:
            assert process.poll() is None, (tmp_path / "make-serve.log").read_text()[-4000:]
            assert time.monotonic() < deadline, (tmp_path / "make-serve.log").read_text()[-4000:]
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        yield clone, base, env
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


async def test_the_readme_quickstart_works_verbatim(
    served: tuple[Path, str, dict[str, str]], tmp_path: Path
) -> None:
    clone, base, env = served
    readme = (clone / "README.md").read_text()
    ostiary = clone / ".venv" / "bin" / "ostiary"
    # The commands exactly as the README prints them (only the port differs).
    commands = re.findall(r"^(\.venv/bin/ostiary [^#\n]+?)\s*(?:#.*)?$", readme, re.MULTILINE)
    assert commands[:3] == [
        ".venv/bin/ostiary users add alice",
        ".venv/bin/ostiary tools http://127.0.0.1:8000/mcp",
        ".venv/bin/ostiary call http://127.0.0.1:8000/mcp get_user_info",
    ]
    port = base.rsplit(":", 1)[1]

    # 1. Create the user: dev mode is remembered in ./.ostiary, so no variable is needed.
    added = subprocess.run(
        [str(ostiary), "users", "add", USERNAME],
        cwd=clone,
        env=env,
        input=f"{PASSWORD}\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stdout + added.stderr
    assert f"created user {USERNAME}" in added.stdout

    # 2. Call a tool: the client opens "the browser" (a recording opener), the test logs in on
    # the real pages and delivers the redirect to the client's loopback listener.
    browser = RecordingBrowser(tmp_path / "browser")
    call = await asyncio.create_subprocess_exec(
        str(ostiary),
        "call",
        commands[2].split()[2].replace(":8000", f":{port}"),
        "get_user_info",
        cwd=clone,
        env={**env, "BROWSER": str(browser.path)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not browser.opened():
        assert call.returncode is None, (await call.communicate())[1].decode()
        assert time.monotonic() < deadline, "ostiary call never opened the browser"
        await asyncio.sleep(0.2)
    [url] = browser.opened()
    assert url.startswith(f"{base}/authorize?")
    await log_in(url)
    stdout, stderr = await asyncio.wait_for(call.communicate(), timeout=60)
    assert call.returncode == 0, stderr.decode()
    assert f'"username": "{USERNAME}"' in stdout.decode(), stdout.decode()
