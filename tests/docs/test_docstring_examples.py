"""The ``>>>`` examples in ``src/ostiary`` docstrings run, and say what they show (STYLE §J).

One test per module that has examples, run with the standard :mod:`doctest` rather than
pytest's ``--doctest-modules``: ``testpaths`` stays ``tests``, and the walk can leave out what
cannot be imported on its own (Alembic's migration environment, ``__main__`` entry points).
A module whose optional dependency is absent (FastMCP) is skipped with that reason.

``ELLIPSIS`` is on everywhere, so an example may elide a long message with ``...``.
``# doctest: +SKIP`` is kept for examples that need a network peer or a database server
(an MCP server to call, Redis, PostgreSQL); everything else runs offline.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import io
import pkgutil
from types import ModuleType

import pytest

import ostiary

#: Not importable on their own: Alembic's env.py needs a running migration context; the
#: ``__main__`` modules start a program.
EXCLUDED = ("ostiary.storage.migrations", "__main__")


def _module_names() -> list[str]:
    names = [
        info.name
        for info in pkgutil.walk_packages(ostiary.__path__, prefix="ostiary.")
        if not any(part in info.name for part in EXCLUDED)
    ]
    return ["ostiary", *sorted(names)]


def _with_examples(names: list[str]) -> list[str]:
    """Modules whose source has a ``>>>`` (decided from the text, without importing)."""
    found = []
    for name in names:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec else None
        if origin and origin.endswith(".py"):
            with open(origin, encoding="utf-8") as source:
                if ">>>" in source.read():
                    found.append(name)
    return found


MODULES = _with_examples(_module_names())


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("fastmcp",):
            pytest.skip(f"{name} needs the optional {exc.name}")
        raise


def test_examples_are_found() -> None:
    assert "ostiary.resource.mcp_sdk" in MODULES
    assert len(MODULES) >= 30


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = _import(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report = io.StringIO()
    tests = [t for t in finder.find(module, name) if t.examples]
    # Every ">>>" line starts an example: a commented-out one ("# app = ...") would not run.
    prompts = sum(line.lstrip().startswith(">>>") for line in inspect.getsource(module).split("\n"))
    assert sum(len(t.examples) for t in tests) == prompts, f"{name}: a '>>>' line is no example"
    for test in sorted(tests, key=lambda t: t.name):
        runner.run(test, out=report.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, report.getvalue()
