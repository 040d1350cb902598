"""Medians, ratios and target verdicts of a bench run, as plain text."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

PEERS = ("fastmcp", "sdk-ref")
TITLES = {
    "dcr": "DCR: POST /register (wrk, 2 threads x 8 connections)",
    "flow": "full flow: GET /authorize -> POST /token, one access token per op "
    "(wrk + Lua, 4 x 1, 2 requests each; ostiary: signed-in user with remembered consent; "
    "peers auto-approve)",
    "refresh": "token endpoint: refresh_token grant with rotation (wrk + Lua, 4 x 1)",
    "tools_call": "protected tools/call echo, stateless streamable HTTP (wrk, 2 x 16; "
    "ostiary-rs-dpop: the same server, DPoP-bound token and a fresh proof per call)",
}


@dataclass
class Results:
    cells: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    memory: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    signing_us: float | None = None
    #: Per server: (CPU us per refresh while sampled, [(part, share, us per op)]).
    profiles: dict[str, tuple[float, list[tuple[str, float, float]]]] = field(default_factory=dict)

    def add(self, scenario: str, server: str, result: dict[str, Any]) -> None:
        self.cells.setdefault(scenario, {}).setdefault(server, []).append(result)


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def _print_ceiling(floor: float, fastest: float, signing_us: float | None) -> None:
    """What the HTTP server alone can do, and the budget the fastest peer leaves."""
    print(
        f"ceiling: a bare ASGI app with a constant answer (floor) serves {floor:.0f}/s; "
        f"the fastest peer {fastest:.0f}/s = {fastest / floor:.0%} of it"
    )
    if signing_us is not None:
        budget = 1e6 / fastest - 1e6 / floor
        print(
            f"per request at the fastest peer's rate: {1e6 / fastest:.0f} us, of which the "
            f"server alone takes {1e6 / floor:.0f} us, leaving {budget:.0f} us; one ES256 "
            f"access token signature (ostiary's signer) takes {signing_us:.0f} us"
        )


def _cpu(runs: list[dict[str, Any]]) -> float:
    return _median(runs, "cpu_us_per_op")


def _verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def _targets(scenario: str, rows: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Issue 12's targets for one scenario, from this run's medians."""
    ops = {name: _median(runs, "ops_per_s") for name, runs in rows.items()}
    cpu = {name: _cpu(runs) for name, runs in rows.items()}
    peer = max(PEERS, key=lambda p: ops[p])
    lines = []
    if "ostiary-mem" in ops:
        ok = ops["ostiary-mem"] >= ops[peer] and cpu["ostiary-mem"] <= cpu[peer]
        lines.append(
            f"target memory >= 1.0 x {peer} in ops/s ({ops['ostiary-mem'] / ops[peer]:.2f}) "
            f"and CPU/op ({cpu[peer] / cpu['ostiary-mem']:.2f}): {_verdict(ok)}"
        )
    if "ostiary" in ops:
        floor = 0.8 if scenario == "dcr" else 0.6
        ok = ops["ostiary"] >= floor * ops[peer] and cpu["ostiary"] <= cpu[peer] / floor
        lines.append(
            f"target SQLite >= {floor} x {peer} in ops/s ({ops['ostiary'] / ops[peer]:.2f}) "
            f"and CPU/op ({cpu[peer] / cpu['ostiary']:.2f}): {_verdict(ok)}"
        )
    if scenario == "refresh" and "ostiary-pg" in cpu and "ostiary" in cpu:
        ratio = cpu["ostiary-pg"] / cpu["ostiary"]
        verdict = _verdict(ratio <= 1.5)
        lines.append(f"target PostgreSQL CPU/refresh <= 1.5 x SQLite's: {ratio:.2f}, {verdict}")
    if scenario == "refresh" and "ostiary" in rows:
        p50, p99 = _median(rows["ostiary"], "p50_us"), _median(rows["ostiary"], "p99_us")
        lines.append(
            f"target SQLite refresh p99 <= 5 x p50: {p99 / p50:.1f}, {_verdict(p99 <= 5 * p50)}"
        )
    return lines


def print_report(results: Results, *, repeat: int, duration: int, tokens: int) -> None:
    print(f"\nostiary bench: medians over {repeat} runs of {duration}s each; load by wrk")
    print("CPU/op: user + system CPU of the server process and its workers (/proc), per op")
    for scenario, rows in results.cells.items():
        print(f"\n== {TITLES[scenario]}")
        print(
            f"{'server':<12}{'ops/s':>9}{'CPU us/op':>11}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}"
            "  ops/s per run"
        )
        for name, runs in rows.items():
            failed = sum(r["bad"] + r["socket_errors"] for r in runs)
            print(
                f"{name:<12}{_median(runs, 'ops_per_s'):>9.0f}{_cpu(runs):>11.0f}"
                f"{_median(runs, 'p50_us') / 1000:>9.2f}{_median(runs, 'p99_us') / 1000:>9.2f}"
                f"{failed:>8}  " + " ".join(f"{r['ops_per_s']:.0f}" for r in runs)
            )
        ops = {name: _median(runs, "ops_per_s") for name, runs in rows.items()}
        if scenario == "tools_call":
            for ours in ("ostiary-rs", "ostiary", "ostiary-mem"):
                ratios = ", ".join(
                    f"/{peer} {ops[ours] / ops[peer]:.2f}" for peer in ("noauth", *PEERS)
                )
                print(f"ratio {ours}{ratios}")
            verdict = _verdict(ops["ostiary-rs"] >= 0.95 * ops["noauth"])
            print(f"target ostiary-rs >= 0.95 x noauth (same server, same tool): {verdict}")
            if "ostiary-rs-dpop" in ops:
                ratio = ops["ostiary-rs-dpop"] / ops["ostiary-rs"]
                cpu = _cpu(rows["ostiary-rs"]) / _cpu(rows["ostiary-rs-dpop"])
                print(
                    f"target DPoP >= 0.85 x Bearer on ostiary-rs: {ratio:.2f} in ops/s, "
                    f"{cpu:.2f} in CPU/op: {_verdict(ratio >= 0.85)}"
                )
            continue
        fastest = max(ops[p] for p in PEERS)
        if "floor" in ops:
            _print_ceiling(ops["floor"], fastest, results.signing_us)
        for ours in (n for n in rows if n.startswith("ostiary")):
            print(f"ratio {ours}" + ", ".join(f"/{p} {ops[ours] / ops[p]:.2f}" for p in PEERS))
        for line in _targets(scenario, rows):
            print(line)
    if results.memory:
        print(f"\n== memory per live token: RSS growth over {tokens} full flows")
        for name, (rss, disk) in results.memory.items():
            extra = f"; SQLite file +{disk:.0f} B/token" if disk is not None else ""
            print(f"{name:<12}RSS {rss:+.0f} B/token{extra}")


def print_profiles(results: Results) -> None:
    """Where a refresh's CPU goes, per profiled server (bench/profile.py)."""
    if not results.profiles:
        return
    print("\n== where a refresh's server CPU goes (py-spy samples under wrk, by part)")
    for name, (cpu, rows) in results.profiles.items():
        print(f"{name}: {cpu:.0f} us of CPU per refresh while sampled")
        for part, share, us in rows:
            print(f"  {part:<16}{share:>6.0%}{us:>8.0f} us")
