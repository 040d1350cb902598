"""Where a refresh's server CPU goes: py-spy samples of one server under wrk, by part.

The bench's ratios say how far ostiary is from the peers; this says why. While wrk drives
the refresh scenario against one ostiary server, ``py-spy record`` samples its stacks (raw
format: one line per distinct stack with its count). A sample belongs to the part of its
innermost ostiary frame, the code that was running or that called the library that was:

* **signing**: the RFC 9068 JWT (``core/jws_signer.py``), which the peers do not do;
* **storage**: ``ostiary/storage/`` (for SQL: statements, the transaction, the commit);
* **audit log**: the audit event written for every token (``_logging.py``);
* **grant logic**: the rest of ``ostiary/core`` (checks, minting, sealing the successor);
* **token endpoint**: ``server/`` code of the request itself (form parsing, client
  authentication, the JSON answer);
* **HTTP stack**: uvicorn and Starlette, with ostiary's pass-through middleware (request
  ids, activity, metrics, per-address bounds, the combined app's routing).

Each part's share of the samples times the measured CPU per refresh gives microseconds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: (part, where its code lives), the innermost ostiary frame of a sample decides.
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("signing", ("ostiary/core/jws_signer.py",)),
    ("storage", ("ostiary/storage/",)),
    ("audit log", ("ostiary/_logging.py",)),
    ("grant logic", ("ostiary/core/",)),
    ("token endpoint", ("ostiary/server/endpoints/", "ostiary/server/http.py",
                        "ostiary/server/responses.py")),
)  # fmt: skip
OTHER = "HTTP stack"
#: Threads that only wait (the default executor's idle workers) are not the request's CPU.
IDLE_FRAMES = ("_worker (concurrent/futures/thread.py",)


def py_spy() -> str | None:
    """The py-spy executable next to this Python, or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(pid: int, seconds: int, run: Callable[[], dict[str, Any]]) -> tuple[Path, Any]:
    """Sample ``pid`` for ``seconds`` while ``run()`` (one wrk run) drives it."""
    executable = py_spy()
    assert executable is not None
    out = Path(tempfile.mkdtemp(prefix="ostiary-profile-")) / "samples.txt"
    argv = [executable, "record", "-p", str(pid), "-d", str(seconds), "-r", "200"]
    spy = subprocess.Popen(  # noqa: S603
        [*argv, "-f", "raw", "-o", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        result = run()
    finally:
        spy.wait(timeout=seconds + 60)
    return out, result


def parts(samples: Path) -> Counter[str]:
    """Samples per part (see the module docstring) from a py-spy raw file."""
    counts: Counter[str] = Counter()
    for line in samples.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if any(frame.startswith(IDLE_FRAMES) for frame in frames[-1:]):
            continue
        counts[_part(frames)] += int(count)
    return counts


def _part(frames: list[str]) -> str:
    for frame in reversed(frames):
        if "ostiary/" not in frame:
            continue
        for name, places in PARTS:
            if any(place in frame for place in places):
                return name
        return OTHER  # a pass-through middleware: what runs below it is the HTTP stack
    return OTHER


def breakdown(counts: Counter[str], cpu_us_per_op: float) -> list[tuple[str, float, float]]:
    """(part, share, µs per op) for every part, in the order of PARTS then the rest."""
    total = sum(counts.values()) or 1
    names = [name for name, _ in PARTS] + [OTHER]
    return [(n, counts[n] / total, counts[n] / total * cpu_us_per_op) for n in names]
