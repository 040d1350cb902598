"""scripts/coverage_gate.py: per-area thresholds and the overall floor over ``coverage json``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "coverage_gate.py"


@pytest.fixture(scope="module")
def gate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("coverage_gate", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


def _file(statements: int, covered: int, branches: int, covered_branches: int) -> dict[str, Any]:
    return {
        "summary": {
            "num_statements": statements,
            "covered_lines": covered,
            "num_branches": branches,
            "covered_branches": covered_branches,
        }
    }


def _report(core: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta": {"branch_coverage": True},
        "files": {
            "src/ostiary/core/pkce.py": core,
            "/abs/site-packages/ostiary/resource/middleware.py": _file(100, 100, 20, 20),
            "src/ostiary/errors.py": _file(10, 10, 0, 0),
            "src/ostiary/server/app.py": _file(100, 80, 0, 0),
        },
    }


def test_the_gate_passes_when_every_area_meets_its_threshold(gate: ModuleType) -> None:
    lines = gate.check(_report(_file(90, 90, 10, 6)))
    assert lines == [
        "ok   src/ostiary/core/         96.00 % (>= 95 %)  branches 6/10 (60.00 %)",
        "ok   src/ostiary/resource/    100.00 % (>= 95 %)  branches 20/20 (100.00 %)",
        "ok   src/ostiary/errors.py    100.00 % (>= 95 %)  branches 0/0 (100.00 %)",
        "ok   overall                   92.73 % (>= 92 %)  branches 26/30 (86.67 %)",
    ]


def test_the_gate_fails_an_area_below_its_threshold(gate: ModuleType, tmp_path: Path) -> None:
    report = tmp_path / "coverage.json"
    report.write_text(json.dumps(_report(_file(90, 90, 10, 4))))
    assert gate.main(["coverage_gate.py", str(report)]) == 1
    assert gate.check(_report(_file(90, 90, 10, 4)))[0].startswith("FAIL src/ostiary/core/ ")


def test_the_gate_refuses_data_measured_without_branches(
    gate: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "coverage.json"
    report.write_text(json.dumps({**_report(_file(1, 1, 0, 0)), "meta": {}}))
    assert gate.main(["coverage_gate.py", str(report)]) == 1
    assert capsys.readouterr().out == (
        f"FAIL {report}: measured without branch coverage ([tool.coverage.run] branch)\n"
    )


def test_an_area_with_nothing_measured_fails(gate: ModuleType, tmp_path: Path) -> None:
    report = _report(_file(90, 90, 10, 10))
    del report["files"]["src/ostiary/errors.py"]
    assert gate.check(report)[2].startswith("FAIL src/ostiary/errors.py ")
    path = tmp_path / "coverage.json"
    path.write_text(json.dumps(_report(_file(90, 90, 10, 10))))
    assert gate.main(["coverage_gate.py", str(path)]) == 0


def test_a_second_copy_of_the_package_fails_the_gate(gate: ModuleType) -> None:
    """A subprocess running ostiary from another checkout must not dilute the figures."""
    report = _report(_file(90, 90, 10, 10))
    report["files"]["/tmp/clone/src/ostiary/core/pkce.py"] = _file(90, 0, 10, 0)

    assert gate.check(report) == [
        "FAIL 1 modules measured from more than one copy of the package, e.g. "
        "src/ostiary/core/pkce.py: /tmp/clone/src/ostiary/core/pkce.py, src/ostiary/core/pkce.py"
    ]
