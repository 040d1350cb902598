"""The dependency rule: imports point inward, and no two ostiary modules import each other.

The layers, innermost first:

* ``ostiary.core`` (sans-IO protocol logic and the ports it needs, such as the ``Storage``
  protocol) with the leaf modules every layer shares (:data:`SHARED`);
* the adapters around it: ``storage`` (backends), ``net`` (fetchers), ``federation``,
  ``resource`` (the resource-server toolkit), ``client``, ``server`` (the authorization
  server's Starlette app), ``gateway`` and ``demo``; each may import the core, none may
  import the ones :data:`FORBIDDEN` names;
* the composition roots ``ostiary.assembly`` and ``ostiary.cli``, which may import anything
  and which nothing else imports.

Which imports count: every ``import`` and ``from … import`` in a module, wherever it stands,
counts for the layer rules: at module level, inside a function (a deferred import is still a
dependency) and under ``if TYPE_CHECKING:`` (the module still names the other). The cycle
rule counts the imports that bind modules together as they load or are type-checked: those
at module level, ``TYPE_CHECKING`` blocks included, but not the ones inside functions, which
run only after every module has loaded. Only composition roots use deferred imports, to load
optional pieces (the demo, uvicorn) on demand; the core has none.

``from a.b import c`` names the module ``a.b.c`` when there is one, else ``a.b``; a parent
package is not counted as imported by its submodules (Python loads it first either way).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

SRC: Final = Path(__file__).resolve().parents[2] / "src"

#: Modules outside the core that the core, and every other layer, may import. They import
#: only each other (checked below), so the core's closure stays free of adapters.
SHARED: Final = frozenset(
    {
        "ostiary._logging",
        "ostiary.errors",
        "ostiary.jsonbody",
        "ostiary.loopback",
        "ostiary.settings",
        "ostiary.ttl_cache",
        "ostiary.www_authenticate",
    }
)

#: Third-party packages the core and the shared modules may use: cryptography, JOSE,
#: password hashing and typed models. No web framework, HTTP client or database driver.
CORE_THIRD_PARTY: Final = frozenset(
    {"argon2", "cryptography", "joserfc", "pydantic", "pydantic_settings"}
)

#: Packages a layer must not import (a prefix matches the package and its modules).
#: Every layer other than the roots also stays out of ``ostiary.assembly`` and
#: ``ostiary.cli`` (see :data:`ROOTS`).
FORBIDDEN: Final[Mapping[str, tuple[str, ...]]] = {
    "ostiary.storage": (
        "ostiary.client",
        "ostiary.demo",
        "ostiary.federation",
        "ostiary.gateway",
        "ostiary.net",
        "ostiary.resource",
        "ostiary.server",
    ),
    "ostiary.net": (
        "ostiary.client",
        "ostiary.demo",
        "ostiary.federation",
        "ostiary.gateway",
        "ostiary.resource",
        "ostiary.server",
        "ostiary.storage",
    ),
    "ostiary.federation": (
        "ostiary.client",
        "ostiary.demo",
        "ostiary.gateway",
        "ostiary.server",
        "ostiary.storage",
    ),
    "ostiary.resource": (
        "ostiary.client",
        "ostiary.demo",
        "ostiary.federation",
        "ostiary.gateway",
        "ostiary.server",
        "ostiary.storage",
        "ostiary.storage_key",
    ),
    "ostiary.client": (
        "ostiary.demo",
        "ostiary.federation",
        "ostiary.gateway",
        "ostiary.resource",
        "ostiary.server",
        "ostiary.storage",
        "ostiary.storage_key",
    ),
    "ostiary.server": ("ostiary.client", "ostiary.demo", "ostiary.gateway"),
    "ostiary.gateway": (
        "ostiary.demo",
        "ostiary.server",
        "ostiary.storage",
        "ostiary.storage_key",
    ),
    "ostiary.demo": ("ostiary.gateway", "ostiary.server"),
}

#: The composition roots: they may import every layer; only the CLI imports the assembly.
ROOTS: Final = ("ostiary.assembly", "ostiary.cli")

ENDPOINTS: Final = "ostiary.server.endpoints"

#: Endpoint-to-endpoint imports allowed (none: shared pages live in ``server/pages.py`` and
#: ``server/admin_pages.py``, route lists in ``endpoints/__init__.py``). Keep it empty.
ENDPOINT_EDGES_PENDING: Final[frozenset[tuple[str, str]]] = frozenset()

#: Layer edges still to be removed (none today). An entry must name an import that exists.
LAYER_EDGES_PENDING: Final[frozenset[tuple[str, str]]] = frozenset()


@dataclass(frozen=True)
class Import:
    """One imported name: ``target`` is an ostiary module or a third-party top-level name."""

    source: str
    target: str
    line: int
    deferred: bool  # inside a function
    type_only: bool  # under ``if TYPE_CHECKING:``

    def __str__(self) -> str:
        where = " (deferred)" if self.deferred else " (TYPE_CHECKING)" if self.type_only else ""
        return f"{self.source}:{self.line} imports {self.target}{where}"


def module_files(src: Path) -> dict[str, Path]:
    """Every module under ``src/ostiary`` by dotted name (a package by its own name)."""
    modules: dict[str, Path] = {}
    for path in sorted((src / "ostiary").rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(
    body: Iterable[ast.stmt], deferred: bool, type_only: bool
) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, deferred, type_only
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _statements(node.body, True, type_only)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _statements(node.body, deferred, True)
            yield from _statements(node.orelse, deferred, type_only)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from _statements([child], deferred, type_only)
            for handler in getattr(node, "handlers", ()):
                yield from _statements(handler.body, deferred, type_only)


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: Iterable[str]
) -> list[str]:
    modules = set(known)
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def scan(src: Path) -> list[Import]:
    """Every import of every module under ``src/ostiary``.

    An ostiary target is the deepest existing module it names; any other target is its
    top-level package name.
    """
    files = module_files(src)
    found: list[Import] = []
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node, deferred, type_only in _statements(tree.body, False, False):
            for target in _targets(node, module, is_package, files):
                if target.split(".")[0] == "ostiary":
                    while target not in files and "." in target:
                        target = target.rpartition(".")[0]
                else:
                    target = target.split(".")[0]
                if target != module:
                    found.append(Import(module, target, node.lineno, deferred, type_only))
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer_violations(imports: Iterable[Import]) -> list[str]:
    """The imports that break a layer rule, as readable lines."""
    problems: list[str] = []
    stdlib = sys.stdlib_module_names
    for imp in imports:
        source, target = imp.source, imp.target
        if (source, target) in LAYER_EDGES_PENDING:
            continue
        inward = _within(source, "ostiary.core") or source in SHARED
        if inward and target.startswith("ostiary."):
            ok = _within(target, "ostiary.core") if source not in SHARED else False
            if not ok and target not in SHARED:
                problems.append(f"{imp}: the core and shared modules import only {sorted(SHARED)}")
        elif inward and target not in stdlib and target not in CORE_THIRD_PARTY:
            problems.append(f"{imp}: not an allowed third-party package of the core")
        if inward and imp.deferred and _within(source, "ostiary.core"):
            problems.append(f"{imp}: the core has no deferred imports")
        if any(_within(source, root) for root in ROOTS):
            continue
        if _within(target, "ostiary.assembly") or _within(target, "ostiary.cli"):
            problems.append(f"{imp}: only the composition roots import {target}")
        for layer, banned in FORBIDDEN.items():
            if _within(source, layer) and any(_within(target, b) for b in banned):
                problems.append(f"{imp}: {layer} must not depend on {target}")
    return problems


def endpoint_edges(imports: Iterable[Import]) -> set[tuple[str, str]]:
    """Endpoint modules importing other endpoint modules (private ``_helpers`` excepted)."""
    return {
        (imp.source, imp.target)
        for imp in imports
        if _within(imp.source, ENDPOINTS)
        and imp.source != ENDPOINTS
        and _within(imp.target, ENDPOINTS)
        and imp.target != ENDPOINTS
        and not imp.target.rpartition(".")[2].startswith("_")
    }


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, …, a]``, or None when the graph has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def load_time_graph(imports: Iterable[Import]) -> dict[str, set[str]]:
    """Module-level imports between ostiary modules (``TYPE_CHECKING`` blocks included)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if not imp.deferred and imp.target.startswith("ostiary"):
            graph.setdefault(imp.source, set()).add(imp.target)
    return graph


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return scan(SRC)


def test_layers_point_inward(imports: list[Import]) -> None:
    """Issue 14: core, adapters, composition roots; no import against the arrow."""
    assert layer_violations(imports) == []


def test_pending_layer_edges_still_exist(imports: list[Import]) -> None:
    """An allowance whose import is gone must leave the list with it."""
    edges = {(imp.source, imp.target) for imp in imports}
    assert LAYER_EDGES_PENDING - edges == set()


def test_endpoints_do_not_import_each_other(imports: list[Import]) -> None:
    """Endpoints share page helpers, not each other's modules (issue 14)."""
    assert endpoint_edges(imports) - ENDPOINT_EDGES_PENDING == set()


def test_no_import_cycle(imports: list[Import]) -> None:
    """No two ostiary modules import each other, directly or around a loop."""
    cycle = find_cycle(load_time_graph(imports))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def test_importing_the_core_and_storage_loads_no_driver_or_framework() -> None:
    """Backends load lazily: the core and the storage package pull in no driver."""
    code = (
        "import sys, ostiary.core, ostiary.core.context, ostiary.core.users, ostiary.storage\n"
        "import ostiary.core.grants.authorization_code, ostiary.core.grants.refresh_token\n"
        "loaded = sorted({'sqlalchemy', 'redis', 'asyncpg', 'aiosqlite', 'starlette',\n"
        "                 'httpx'} & set(sys.modules))\n"
        "print(' '.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


# --- the checker itself, on planted violations -------------------------------------------


def _imp(source: str, target: str, *, deferred: bool = False) -> Import:
    return Import(source, target, 1, deferred, False)


def test_the_checker_catches_a_planted_cycle_and_names_its_path() -> None:
    graph = {"ostiary.a": {"ostiary.b"}, "ostiary.b": {"ostiary.c"}, "ostiary.c": {"ostiary.a"}}
    assert find_cycle(graph) == ["ostiary.a", "ostiary.b", "ostiary.c", "ostiary.a"]
    assert find_cycle({"ostiary.a": {"ostiary.b"}, "ostiary.b": set()}) is None


def test_a_deferred_import_is_not_a_load_time_cycle() -> None:
    imports = [_imp("ostiary.a", "ostiary.b"), _imp("ostiary.b", "ostiary.a", deferred=True)]
    assert find_cycle(load_time_graph(imports)) is None


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("ostiary.core.context", "ostiary.storage.sql"),
        ("ostiary.core.context", "ostiary.storage_key"),
        ("ostiary.core.tokens", "starlette"),
        ("ostiary.core.tokens", "sqlalchemy"),
        ("ostiary.settings", "ostiary.storage"),
        ("ostiary.server.app", "ostiary.demo.app"),
        ("ostiary.gateway.proxy", "ostiary.server.responses"),
        ("ostiary.client.flow", "ostiary.server.app"),
        ("ostiary.resource.middleware", "ostiary.assembly.demo"),
        ("ostiary.storage.sql", "ostiary.server.http"),
    ],
)
def test_the_checker_catches_a_planted_layer_violation(source: str, target: str) -> None:
    assert len(layer_violations([_imp(source, target)])) == 1


def test_the_checker_refuses_a_deferred_import_in_the_core() -> None:
    [problem] = layer_violations([_imp("ostiary.core.tokens", "ostiary.errors", deferred=True)])
    assert problem == (
        "ostiary.core.tokens:1 imports ostiary.errors (deferred): the core has no deferred imports"
    )


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("ostiary.core.context", "ostiary.core.storage"),
        ("ostiary.core.tokens", "joserfc"),
        ("ostiary.storage.sql", "ostiary.core.storage"),
        ("ostiary.assembly.demo", "ostiary.demo.app"),
        ("ostiary.cli.main", "ostiary.assembly.serving"),
    ],
)
def test_the_checker_allows_inward_imports(source: str, target: str) -> None:
    assert layer_violations([_imp(source, target)]) == []


def test_the_checker_sees_endpoint_to_endpoint_imports() -> None:
    imports = [
        _imp("ostiary.server.endpoints.token", "ostiary.server.endpoints.login"),
        _imp("ostiary.server.endpoints.token", "ostiary.server.endpoints._pages"),
        _imp("ostiary.server.app", "ostiary.server.endpoints.token"),
    ]
    assert endpoint_edges(imports) == {
        ("ostiary.server.endpoints.token", "ostiary.server.endpoints.login")
    }
