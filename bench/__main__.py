"""Run the benchmark: ``python -m bench [--duration S] [--repeat N] [--tokens N]``.

Starts every server, prepares clients and tokens with httpx, then for each repeat runs every
scenario against every server in turn (round robin, so background load hits all alike) with
wrk, and prints medians over the repeats and the ratios ostiary/peer.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench import profile
from bench.flows import OAuthTarget, Pkce
from bench.report import Results, print_profiles, print_report
from ostiary.client.dpop import DPoPSigner

ROOT = Path(__file__).resolve().parent.parent
WRK_DIR = Path(__file__).resolve().parent / "wrk"
USER, PASSWORD = "bench", "bench password 123"
KINDS = (
    "ostiary",
    "ostiary-w2",
    "ostiary-pg",
    "ostiary-mem",
    "ostiary-rs",
    "fastmcp",
    "sdk-ref",
    "noauth",
    "floor",
)
#: ``ostiary serve`` variants: SQLite (the default), SQLite with two workers, PostgreSQL.
SERVE_KINDS = ("ostiary", "ostiary-w2", "ostiary-pg")
AS_KINDS = ("ostiary", "ostiary-w2", "ostiary-pg", "ostiary-mem", "fastmcp", "sdk-ref")
BENCH_PG_DB = "ostiary_bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SCENARIOS = ("dcr", "flow", "refresh", "tools_call", "memory", "profile")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and every live descendant (uvicorn workers)."""
        total, pending = 0.0, [self.process.pid]
        while pending:
            pid = pending.pop()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except FileNotFoundError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
            pending.extend(int(c) for c in children)
        return total

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


def measured(proc: Proc, run: Any) -> dict[str, Any]:
    """Run ``run()`` (one wrk run) and add the server's CPU per completed op, in us."""
    before = proc.cpu_seconds()
    result: dict[str, Any] = run()
    spent = proc.cpu_seconds() - before
    result["cpu_us_per_op"] = spent / max(result["ok"], 1) * 1e6
    return result


def postgres_url() -> str | None:
    """A fresh database for the PostgreSQL row, or None (row skipped) without a server."""
    base = os.environ.get("OSTIARY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

    async def recreate() -> None:
        import asyncpg

        conn = await asyncpg.connect(base, timeout=5)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {BENCH_PG_DB}")
            await conn.execute(f"CREATE DATABASE {BENCH_PG_DB}")
        finally:
            await conn.close()

    try:
        asyncio.run(recreate())
    except (TimeoutError, OSError, ImportError) as exc:
        print(f"bench: no PostgreSQL row ({exc})", flush=True)
        return None
    return base.rsplit("/", 1)[0] + f"/{BENCH_PG_DB}"


@dataclass
class Bench:
    duration: int
    work: Path
    base: dict[str, str]
    postgres: str | None = None
    envs: dict[str, dict[str, str]] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    dpop: DPoPSigner = field(default_factory=DPoPSigner)
    targets: dict[str, OAuthTarget] = field(default_factory=dict)
    clients: dict[str, str] = field(default_factory=dict)
    access: dict[str, str] = field(default_factory=dict)
    results: Results = field(default_factory=Results)

    @property
    def issuer(self) -> str:
        return self.base["ostiary"]

    def env(self, kind: str = "ostiary") -> dict[str, str]:
        issuer = self.base[kind]
        data = self.work / kind
        allowed = [f"{issuer}/mcp"] + (
            [f"{self.base['ostiary-rs']}/mcp"] if kind == "ostiary" else []
        )
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BENCH_USER": USER,
            "BENCH_PASSWORD": PASSWORD,
            "FASTMCP_LOG_LEVEL": "WARNING",
            "OSTIARY_ISSUER": issuer,
            "OSTIARY_DEV__ENABLED": "true",
            "OSTIARY_DATA_DIR": str(data),
            "OSTIARY_STORAGE__URL": f"sqlite:///{data}/ostiary.db",
            "OSTIARY_SERVER__PORT": str(urlsplit(issuer).port),
            # One client address hammers register/token: lift the per-address limits.
            "OSTIARY_SECURITY__RATE_LIMIT_PER_MINUTE": "1000000000",
            # The flow scenario replays a signed-in user's repeat authorization, which skips the
            # consent page only with remembered consent (off by default for public clients with
            # a loopback redirect, RFC 8252 §8.6; the bench client is one).
            "OSTIARY_SECURITY__REMEMBER_CONSENT_FOR_UNVERIFIED_CLIENTS": "true",
            "OSTIARY_RESOURCES__ALLOWED": json.dumps(allowed),
        }
        if kind == "ostiary-pg" and self.postgres is not None:
            env["OSTIARY_STORAGE__URL"] = self.postgres
            env["OSTIARY_STORAGE__ENCRYPTION_KEY"] = base64.b64encode(os.urandom(32)).decode()
        return env

    def start_all(self, stack: ExitStack) -> None:
        py = sys.executable
        ostiary = [py, "-m", "ostiary.cli"]
        argv: dict[str, list[str]] = {}
        for kind in SERVE_KINDS:
            if kind == "ostiary-pg" and self.postgres is None:
                continue
            self.envs[kind] = self.env(kind)
            (self.work / kind).mkdir(parents=True, exist_ok=True)
            subprocess.run(  # noqa: S603
                [*ostiary, "users", "add", USER, "--password", PASSWORD],
                env=self.envs[kind], check=True, capture_output=True, cwd=ROOT,
            )  # fmt: skip
            argv[kind] = [*ostiary, "serve", "--no-access-log"]
        argv["ostiary-w2"] += ["--workers", "2"]
        for kind in KINDS:
            if kind in SERVE_KINDS:
                continue
            argv[kind] = [py, "-m", "bench.servers", kind, str(urlsplit(self.base[kind]).port)]
        argv["ostiary-rs"].append(self.issuer)
        for kind, command in argv.items():
            log = self.work / f"{kind}.log"
            env = self.envs.get(kind, self.env())
            self.procs[kind] = stack.enter_context(start(kind, command, env, self.base[kind], log))

    def prepare(self) -> None:
        self.targets = {
            k: OAuthTarget(k, self.base[k], f"{self.base[k]}/mcp")
            for k in AS_KINDS
            if k in self.procs
        }
        rs = OAuthTarget("ostiary", self.issuer, f"{self.base['ostiary-rs']}/mcp")

        async def run() -> None:
            async with httpx.AsyncClient(timeout=30) as http:
                for name, target in self.targets.items():
                    self.clients[name] = await target.register(http)
                # Sign in and consent once (per resource); later authorizations pass without
                # a page: the realistic repeat path of a signed-in user who already consented.
                # (Cookies are per host, not port: each target keeps its own copy.)
                signed_in = [
                    (t, self.clients[k]) for k, t in self.targets.items() if "ostiary" in k
                ]
                for target, client in [*signed_in, (rs, self.clients["ostiary"])]:
                    await target.login(http, client, USER, PASSWORD)
            for name, target in self.targets.items():
                self.access[name] = (await issue(target, self.clients[name], 1))[0]["access_token"]
            self.access["ostiary-rs"] = (await issue(rs, self.clients["ostiary"], 1))[0][
                "access_token"
            ]
            async with httpx.AsyncClient(timeout=30) as http:
                bound = await rs.tokens(http, self.clients["ostiary"], dpop=self.dpop)
            assert bound["token_type"] == "DPoP", bound
            self.access["ostiary-rs-dpop"] = bound["access_token"]

        asyncio.run(run())

    def dcr(self) -> None:
        for name, target in self.targets.items():
            args = [
                urlsplit(target.base).path + "/register",
                "application/json",
                json.dumps(target.registration_body()),
                "expect=201",
            ]
            run = partial(
                wrk, "post.lua", target.base, args, duration=self.duration, threads=2, conns=8
            )
            self.results.add("dcr", name, measured(self.procs[name], run))

    def flow(self) -> None:
        for name, target in self.targets.items():
            pkce = Pkce.new()
            args = [
                target.authorize_path(self.clients[name], pkce),
                urlsplit(target.base).path + "/token",
                target.code_body(self.clients[name], pkce),
                target.cookie,
            ]
            run = partial(
                wrk, "flow.lua", target.base, args, duration=self.duration, threads=4, conns=4
            )
            self.results.add("flow", name, measured(self.procs[name], run))

    def refresh_run(self, name: str) -> Callable[[], dict[str, Any]]:
        """One wrk refresh run against ``name``, each connection with a fresh token."""
        target = self.targets[name]
        tokens = asyncio.run(issue(target, self.clients[name], 4))
        args = [
            urlsplit(target.base).path + "/token",
            target.refresh_body(self.clients[name]),
            *(t["refresh_token"] for t in tokens),
        ]
        return partial(
            wrk, "refresh.lua", target.base, args, duration=self.duration, threads=4, conns=4
        )

    def refresh(self) -> None:
        for name in self.targets:
            self.results.add("refresh", name, measured(self.procs[name], self.refresh_run(name)))
        # The ceiling: the same wrk script against a bare ASGI app with a constant answer.
        args = ["/token", "grant_type=refresh_token&client_id=x", "r", "r", "r", "r"]
        run = partial(
            wrk, "refresh.lua", self.base["floor"], args, duration=self.duration, threads=4, conns=4
        )
        self.results.add("refresh", "floor", measured(self.procs["floor"], run))

    def profile(self) -> None:
        """Refresh against the SQLite and memory servers once more, sampled by py-spy."""
        for name in ("ostiary", "ostiary-mem"):
            run = self.refresh_run(name)
            proc = self.procs[name]
            samples, result = profile.record(
                proc.process.pid, self.duration, partial(measured, proc, run)
            )
            cpu = float(result["cpu_us_per_op"])
            self.results.profiles[name] = (cpu, profile.breakdown(profile.parts(samples), cpu))

    def tools_call(self) -> None:
        for name in ("ostiary-rs", "ostiary", "ostiary-mem", "fastmcp", "sdk-ref", "noauth"):
            url = f"{self.base[name]}/mcp"
            args = tools_call_args(self.access.get(name))
            run = partial(wrk, "post.lua", url, args, duration=self.duration, threads=2, conns=16)
            self.results.add("tools_call", name, measured(self.procs[name], run))
        self.tools_call_dpop()

    def tools_call_dpop(self) -> None:
        """The same call with a DPoP-bound token and a fresh proof per request (RFC 9449 §7),
        on the same ostiary-rs server: the cost of sender-constrained tokens."""
        rs = self.results.cells["tools_call"]["ostiary-rs"]
        rate = max(r["ops_per_s"] for r in rs)
        url = f"{self.base['ostiary-rs']}/mcp"
        count = int(rate * self.duration * 1.5) + 2000
        proofs = self.work / "dpop-proofs.txt"
        token = self.access["ostiary-rs-dpop"]
        started = time.monotonic()
        proofs.write_text(
            "\n".join(self.dpop.proof("POST", url, access_token=token) for _ in range(count))
        )
        print(f"bench: {count} DPoP proofs signed in {time.monotonic() - started:.1f}s", flush=True)
        plain = tools_call_args(None)
        args = [*plain[:3], token, str(proofs), "2", *plain[3:]]
        run = partial(wrk, "dpop.lua", url, args, duration=self.duration, threads=2, conns=16)
        self.results.add("tools_call", "ostiary-rs-dpop", measured(self.procs["ostiary-rs"], run))

    def memory(self, tokens: int) -> None:
        db = self.work / "ostiary" / "ostiary.db"
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
        postgres=postgres_url(),
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
        if "profile" in scenarios:
            if profile.py_spy() is None:
                print("bench: no profile (py-spy not installed)", flush=True)
            else:
                bench.profile()
    bench.results.signing_us = signing_cost_us()
    print_report(
        bench.results, repeat=options.repeat, duration=bench.duration, tokens=options.tokens
    )
    print_profiles(bench.results)


if __name__ == "__main__":
    main()
