"""Run the benchmark: ``python -m bench [--duration S] [--repeat N] [--tokens N]``.

Starts every server, prepares clients and tokens with httpx, then for each repeat runs every
scenario against every server in turn (round robin, so background load hits all alike) with
wrk, and prints medians over the repeats and the ratios ostiary/peer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.flows import OAuthTarget, Pkce
from bench.report import Results, print_report

ROOT = Path(__file__).resolve().parent.parent
WRK_DIR = Path(__file__).resolve().parent / "wrk"
USER, PASSWORD = "bench", "bench password 123"
KINDS = ("ostiary", "ostiary-mem", "ostiary-rs", "fastmcp", "sdk-ref", "noauth", "floor")
AS_KINDS = ("ostiary", "ostiary-mem", "fastmcp", "sdk-ref")
SCENARIOS = ("dcr", "flow", "refresh", "tools_call", "memory")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


@contextmanager
def start(name: str, argv: list[str], env: dict[str, str], base: str, log: Path) -> Iterator[Proc]:
    """Start a server and wait until its MCP endpoint answers (any status)."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)  # noqa: S603
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{log.read_text()[-3000:]}")
                try:
                    httpx.post(f"{base}/mcp", json={}, timeout=2)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{name} did not start:\n{log.read_text()[-3000:]}"
                        ) from None
                    time.sleep(0.2)
            yield Proc(name, process)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def wrk(
    script: str, url: str, args: list[str], *, duration: int, threads: int, conns: int
) -> dict[str, Any]:
    """One wrk run; returns the JSON line its Lua ``done`` prints, plus ``ops_per_s``."""
    argv = [
        "wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "10s",
        "-s", str(WRK_DIR / script), url, "--", *args,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)  # noqa: S603
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["ops_per_s"] = result["ok"] / (result["duration_us"] / 1e6)
    return result


def tools_call_args(token: str | None) -> list[str]:
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "hello"}},
        }
    )
    args = [
        "/mcp",
        "application/json",
        body,
        "Accept=application/json, text/event-stream",
        "Mcp-Method=tools/call",
        "Mcp-Name=echo",
        "MCP-Protocol-Version=2025-11-25",
    ]
    return [*args, f"Authorization=Bearer {token}"] if token else args


async def issue(
    target: OAuthTarget, client_id: str, n: int, concurrency: int = 4
) -> list[dict[str, Any]]:
    """``n`` full flows (authorize + token)."""
    async with httpx.AsyncClient(timeout=30) as http:
        sem = asyncio.Semaphore(concurrency)

        async def one() -> dict[str, Any]:
            async with sem:
                return await target.tokens(http, client_id)

        return list(await asyncio.gather(*(one() for _ in range(n))))


@dataclass
class Bench:
    duration: int
    work: Path
    base: dict[str, str]
    procs: dict[str, Proc] = field(default_factory=dict)
    targets: dict[str, OAuthTarget] = field(default_factory=dict)
    clients: dict[str, str] = field(default_factory=dict)
    access: dict[str, str] = field(default_factory=dict)
    results: Results = field(default_factory=Results)

    @property
    def issuer(self) -> str:
        return self.base["ostiary"]

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BENCH_USER": USER,
            "BENCH_PASSWORD": PASSWORD,
            "FASTMCP_LOG_LEVEL": "WARNING",
            "OSTIARY_ISSUER": self.issuer,
            "OSTIARY_DEV__ENABLED": "true",
            "OSTIARY_DATA_DIR": str(self.work),
            "OSTIARY_STORAGE__URL": f"sqlite:///{self.work}/ostiary.db",
            "OSTIARY_SERVER__PORT": str(urlsplit(self.issuer).port),
            # One client address hammers register/token: lift the per-address limits.
            "OSTIARY_SECURITY__RATE_LIMIT_PER_MINUTE": "1000000000",
            "OSTIARY_RESOURCES__ALLOWED": json.dumps(
                [f"{self.issuer}/mcp", f"{self.base['ostiary-rs']}/mcp"]
            ),
        }

    def start_all(self, stack: ExitStack) -> None:
        env, py = self.env(), sys.executable
        ostiary = [py, "-m", "ostiary.cli"]
        subprocess.run(  # noqa: S603
            [*ostiary, "users", "add", USER, "--password", PASSWORD],
            env=env, check=True, capture_output=True, cwd=ROOT,
        )  # fmt: skip
        argv = {"ostiary": [*ostiary, "serve", "--no-access-log"]}
        for kind in KINDS[1:]:
            argv[kind] = [py, "-m", "bench.servers", kind, str(urlsplit(self.base[kind]).port)]
        argv["ostiary-rs"].append(self.issuer)
        for kind in KINDS:
            log = self.work / f"{kind}.log"
            self.procs[kind] = stack.enter_context(
                start(kind, argv[kind], env, self.base[kind], log)
            )

    def prepare(self) -> None:
        self.targets = {k: OAuthTarget(k, self.base[k], f"{self.base[k]}/mcp") for k in AS_KINDS}
        rs = OAuthTarget("ostiary", self.issuer, f"{self.base['ostiary-rs']}/mcp")

        async def run() -> None:
            async with httpx.AsyncClient(timeout=30) as http:
                for name, target in self.targets.items():
                    self.clients[name] = await target.register(http)
                # Sign in and consent once (per resource); later authorizations pass without
                # a page: the realistic repeat path of a signed-in user who already consented.
                # (Cookies are per host, not port: each target keeps its own copy.)
                for target, client in (
                    (self.targets["ostiary"], self.clients["ostiary"]),
                    (rs, self.clients["ostiary"]),
                    (self.targets["ostiary-mem"], self.clients["ostiary-mem"]),
                ):
                    await target.login(http, client, USER, PASSWORD)
            for name, target in self.targets.items():
                self.access[name] = (await issue(target, self.clients[name], 1))[0]["access_token"]
            self.access["ostiary-rs"] = (await issue(rs, self.clients["ostiary"], 1))[0][
                "access_token"
            ]

        asyncio.run(run())

    def dcr(self) -> None:
        for name, target in self.targets.items():
            args = [
                urlsplit(target.base).path + "/register",
                "application/json",
                json.dumps(target.registration_body()),
                "expect=201",
            ]
            self.results.add(
                "dcr",
                name,
                wrk("post.lua", target.base, args, duration=self.duration, threads=2, conns=8),
            )

    def flow(self) -> None:
        for name, target in self.targets.items():
            pkce = Pkce.new()
            args = [
                target.authorize_path(self.clients[name], pkce),
                urlsplit(target.base).path + "/token",
                target.code_body(self.clients[name], pkce),
                target.cookie,
            ]
            self.results.add(
                "flow",
                name,
                wrk("flow.lua", target.base, args, duration=self.duration, threads=4, conns=4),
            )

    def refresh(self) -> None:
        for name, target in self.targets.items():
            tokens = asyncio.run(issue(target, self.clients[name], 4))
            args = [
                urlsplit(target.base).path + "/token",
                target.refresh_body(self.clients[name]),
                *(t["refresh_token"] for t in tokens),
            ]
            self.results.add(
                "refresh",
                name,
                wrk("refresh.lua", target.base, args, duration=self.duration, threads=4, conns=4),
            )
        # The ceiling: the same wrk script against a bare ASGI app with a constant answer.
        args = ["/token", "grant_type=refresh_token&client_id=x", "r", "r", "r", "r"]
        self.results.add(
            "refresh",
            "floor",
            wrk(
                "refresh.lua", self.base["floor"], args, duration=self.duration, threads=4, conns=4
            ),
        )

    def tools_call(self) -> None:
        for name in ("ostiary-rs", "ostiary", "ostiary-mem", "fastmcp", "sdk-ref", "noauth"):
            url = f"{self.base[name]}/mcp"
            args = tools_call_args(self.access.get(name))
            self.results.add(
                "tools_call",
                name,
                wrk("post.lua", url, args, duration=self.duration, threads=2, conns=16),
            )

    def memory(self, tokens: int) -> None:
        db = self.work / "ostiary.db"
        for name, target in self.targets.items():
            proc = self.procs[name]
            before_rss, before_db = proc.rss_kib(), db.stat().st_size
            asyncio.run(issue(target, self.clients[name], tokens))
            time.sleep(1)
            rss = (proc.rss_kib() - before_rss) * 1024 / tokens
            disk = (db.stat().st_size - before_db) / tokens if name == "ostiary" else None
            self.results.memory[name] = (rss, disk)


def signing_cost_us() -> float:
    """Median time of one access-token signature as ostiary makes it (ES256, joserfc)."""
    from ostiary.core.cipher import SecretCipher
    from ostiary.core.keys import KeyRing, generate_signing_key
    from ostiary.core.tokens import AccessTokenClaims, mint_access_token

    cipher = SecretCipher(os.urandom(32))
    ring = KeyRing.from_records([generate_signing_key("t", "ES256", 0, cipher=cipher)], 1, cipher)
    assert ring is not None
    claims = AccessTokenClaims(
        issuer="http://127.0.0.1:8000",
        subject="u" * 22,
        audience="http://127.0.0.1:8000/mcp",
        client_id="c" * 22,
        scopes=("mcp:read",),
        jti="j" * 22,
        issued_at=0,
        expires_at=900,
    )
    runs = [
        timeit.timeit(lambda: mint_access_token(ring, claims), number=500) / 500 for _ in range(5)
    ]
    return statistics.median(runs) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (<= 60)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario and server")
    parser.add_argument("--tokens", type=int, default=1000, help="tokens for the memory figure")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    scenarios = options.scenarios.split(",")
    work = Path(tempfile.mkdtemp(prefix="ostiary-bench-"))
    bench = Bench(
        duration=min(options.duration, 60),
        work=work,
        base={k: f"http://127.0.0.1:{free_port()}" for k in KINDS},
    )
    print(f"bench: work dir {work}; wrk {bench.duration}s x {options.repeat} per cell", flush=True)
    with ExitStack() as stack:
        bench.start_all(stack)
        bench.prepare()
        for repeat in range(options.repeat):
            print(f"bench: round {repeat + 1}/{options.repeat}", flush=True)
            for scenario in ("dcr", "flow", "refresh", "tools_call"):
                if scenario in scenarios:
                    getattr(bench, scenario)()
        if "memory" in scenarios:
            bench.memory(options.tokens)
    bench.results.signing_us = signing_cost_us()
    print_report(
        bench.results, repeat=options.repeat, duration=bench.duration, tokens=options.tokens
    )


if __name__ == "__main__":
    main()
