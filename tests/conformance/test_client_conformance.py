"""The official MCP conformance suite drives ``python -m ostiary.client.conformance``.

One suite run per MCP revision (``--requirements <revision>`` runs exactly the scenarios
that revision scores, plus the extension scenarios unscored), one ``--suite auth`` run and
the two 2025-03-26 back-compat scenarios. Every scored scenario must pass, and so must every
extension scenario (client credentials, DPoP, enterprise-managed authorization, workload
identity). There is no expected-failures file. The suite's summary is parsed line by line
and its exit status must agree.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache

import pytest

from tests._services import ROOT, conformance_cli

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

CLIENT_COMMAND = f"{sys.executable} -m ostiary.client.conformance"
RUN_TIMEOUT_SECONDS = 240

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SUMMARY_LINE = re.compile(r"^([✓✗]) (\S+): (\d+) passed, (\d+) failed")
_UNSCORED_LINE = re.compile(r"^\s+([✓✗]) (\S+) \(([^)]+)\)$")

#: Unscored scenarios (extensions, added after the revision) that must pass as well.
SUPPORTED_EXTENSIONS = (
    "auth/client-credentials-basic",
    "auth/client-credentials-jwt",
    "auth/dpop",
    "auth/dpop-nonce",
    "auth/enterprise-managed-authorization",
    "auth/wif-jwt-bearer",
    "json-schema-2020-12-preservation",
)

#: The auth scenarios each revision scores (suite 0.2.0-alpha.12), so a scenario that
#: silently disappears from the run is noticed.
EXPECTED_AUTH = {
    "2025-11-25": {
        "auth/metadata-default",
        "auth/metadata-var1",
        "auth/metadata-var2",
        "auth/metadata-var3",
        "auth/basic-cimd",
        "auth/scope-from-www-authenticate",
        "auth/scope-from-scopes-supported",
        "auth/scope-omitted-when-undefined",
        "auth/scope-step-up",
        "auth/scope-retry-limit",
        "auth/token-endpoint-auth-basic",
        "auth/token-endpoint-auth-post",
        "auth/token-endpoint-auth-none",
        "auth/pre-registration",
    },
}
EXPECTED_AUTH["2026-07-28"] = EXPECTED_AUTH["2025-11-25"] | {
    "auth/resource-mismatch",
    "auth/offline-access-scope",
    "auth/offline-access-not-supported",
    "auth/authorization-server-migration",
    "auth/iss-supported",
    "auth/iss-not-advertised",
    "auth/iss-supported-missing",
    "auth/iss-wrong-issuer",
    "auth/iss-unexpected",
    "auth/iss-normalized",
    "auth/metadata-issuer-mismatch",
}


@dataclass(frozen=True)
class SuiteRun:
    returncode: int
    passed: dict[str, bool]
    unscored: frozenset[str]
    output: str

    @property
    def scored(self) -> dict[str, bool]:
        return {name: ok for name, ok in self.passed.items() if name not in self.unscored}


def parse_summary(output: str) -> tuple[dict[str, bool], frozenset[str]]:
    """Scenario → passed, and the names the suite says it did not score."""
    passed: dict[str, bool] = {}
    unscored: set[str] = set()
    in_summary = in_unscored = False
    for raw in output.splitlines():
        line = _ANSI.sub("", raw)
        if line.startswith("=== SUITE SUMMARY ==="):
            in_summary = True
            continue
        if line.startswith("Not scored for"):
            in_unscored = True
            continue
        if in_unscored and (match := _UNSCORED_LINE.match(line)):
            unscored.add(match.group(2))
        elif in_summary and (match := _SUMMARY_LINE.match(line)):
            ok = match.group(1) == "✓" and match.group(4) == "0"
            passed[match.group(2)] = ok
    return passed, frozenset(unscored)


def _run(*args: str) -> tuple[int, str]:
    command = [*conformance_cli(), "client", "--command", CLIENT_COMMAND, *args]
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    return done.returncode, _ANSI.sub("", done.stdout + done.stderr)


@cache
def run_suite(*args: str) -> SuiteRun:
    returncode, output = _run(*args)
    passed, unscored = parse_summary(output)
    assert passed, f"no suite summary in the output:\n{output[-3000:]}"
    return SuiteRun(returncode, passed, unscored, output)


def run_requirements(revision: str) -> SuiteRun:
    return run_suite("--requirements", revision)


@pytest.mark.parametrize("revision", ["2026-07-28", "2025-11-25"])
def test_every_scored_auth_scenario_is_run(revision: str) -> None:
    run = run_requirements(revision)
    assert {name for name in run.scored if name.startswith("auth/")} == EXPECTED_AUTH[revision]


@pytest.mark.parametrize("revision", ["2026-07-28", "2025-11-25"])
def test_every_scored_scenario_passes(revision: str) -> None:
    run = run_requirements(revision)
    assert [name for name, ok in sorted(run.scored.items()) if not ok] == []
    assert run.returncode == 0


@pytest.mark.parametrize("revision", ["2026-07-28", "2025-11-25"])
def test_supported_extension_scenarios_pass(revision: str) -> None:
    run = run_requirements(revision)
    assert {name: run.passed.get(name) for name in SUPPORTED_EXTENSIONS} == dict.fromkeys(
        SUPPORTED_EXTENSIONS, True
    )
    assert set(SUPPORTED_EXTENSIONS) <= run.unscored


def test_parse_summary_reads_scored_and_unscored_lines() -> None:
    sample = (
        "=== SUITE SUMMARY ===\n\n"
        "\x1b[32m✓ auth/a: 3 passed, 0 failed\x1b[0m\n"
        "✗ auth/b: 2 passed, 1 failed\n"
        "✓ auth/c: 5 passed, 0 failed\n\n"
        "Not scored for 2026-07-28: 1 scenario(s) run, 0 failing.\n"
        "  ✓ auth/c (extension)\n"
    )
    assert parse_summary(sample) == (
        {"auth/a": True, "auth/b": False, "auth/c": True},
        frozenset({"auth/c"}),
    )


def test_auth_suite_passes() -> None:
    run = run_suite("--suite", "auth")
    assert run.passed == dict.fromkeys(EXPECTED_AUTH["2025-11-25"], True)
    assert run.returncode == 0


@pytest.mark.parametrize(
    "scenario",
    ["auth/2025-03-26-oauth-metadata-backcompat", "auth/2025-03-26-oauth-endpoint-fallback"],
)
def test_2025_03_26_back_compat_scenarios_pass(scenario: str) -> None:
    returncode, output = _run("--scenario", scenario, "--spec-version", "2025-03-26")
    result = re.search(r"^Passed: (\d+)/(\d+), (\d+) failed, (\d+) warnings$", output, re.M)
    assert result is not None, output[-3000:]
    passed, total, failed, warnings = map(int, result.groups())
    assert (passed, failed, warnings) == (total, 0, 0)
    assert "OVERALL: PASSED" in output
    assert returncode == 0
