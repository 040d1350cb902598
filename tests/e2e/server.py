"""Run ``ostiary serve`` as a real process on a free loopback port, with its own data dir."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

OSTIARY = [sys.executable, "-m", "ostiary.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    issuer: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def cli(self, *args: str) -> str:
        """Run an ``ostiary`` command against this server's storage; returns stdout."""
        done = subprocess.run(
            [*OSTIARY, *args], env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, f"ostiary {args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def add_user(self, username: str, password: str) -> None:
        self.cli("users", "add", username, "--password", password)

    def add_client(self, *args: str) -> dict[str, str]:
        out = self.cli("clients", "add", *args)
        data: dict[str, str] = json.loads(out)
        return data


#: Every test server serves /stats to this bearer secret (``server.stats_token``).
STATS_TOKEN = "e2e-stats-token-0123456789"


@contextmanager
def running_server(
    data_dir: Path,
    port: int | None = None,
    *,
    serve_args: Sequence[str] = (),
    **env_overrides: str,
) -> Iterator[RunningServer]:
    """Serve from ``data_dir``; pass the ``port`` of an earlier run to restart the same issuer.

    ``serve_args`` are added to ``ostiary serve`` (``--workers 2``, ``--mixed-auth``).
    """
    port = port or free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "OSTIARY_ISSUER": issuer,
        "OSTIARY_DEV__ENABLED": "true",
        "OSTIARY_SECURITY__PASSWORD_HASH": "insecure-test",
        "OSTIARY_STORAGE__URL": f"sqlite:///{data_dir}/ostiary.db",
        "OSTIARY_DATA_DIR": str(data_dir),
        "OSTIARY_SERVER__PORT": str(port),
        "OSTIARY_SERVER__STATS_TOKEN": STATS_TOKEN,
        **env_overrides,
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(
        [*OSTIARY, "serve", *serve_args], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_ready(issuer, process, data_dir)
        yield RunningServer(issuer, env, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _wait_ready(issuer: str, process: subprocess.Popen[bytes], data_dir: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError((data_dir / "server.log").read_text())
        try:
            if httpx.get(f"{issuer}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become ready: " + (data_dir / "server.log").read_text())
