"""The code blocks in docs/ work (STYLE §J: executable examples).

Every ``python`` block compiles and every name it imports exists (so a renamed function
breaks the docs build, not a reader); a ``python`` block whose ``title`` says it ``runs`` is
executed in a fresh interpreter in an empty directory, and must exit 0 with no network
(its own ``assert``s are the check). ``json`` and ``toml`` blocks must parse. Shell blocks are
left alone.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)(?P<info>[^`\n]*)$")
TITLE = re.compile(r'title="(?P<title>[^"]*)"')


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    title: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(DOCS)}:{self.line}"

    @property
    def runs(self) -> bool:
        return re.search(r"\bruns\b", self.title) is not None


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of one Markdown file (also inside admonitions and tabs)."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match or not match["info"].strip():
            i += 1
            continue
        indent, fence, info = match["indent"], match["fence"], match["info"].strip()
        language = info.split()[0].strip("{}.").lower()
        title = TITLE.search(info)
        body: list[str] = []
        start = i + 1
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        code = textwrap.dedent("\n".join(body)) + "\n"
        found.append(Block(path, start, language, title["title"] if title else "", code))
        i += 1
    return found


ALL = [block for page in sorted(DOCS.rglob("*.md")) for block in blocks(page)]
PYTHON = [b for b in ALL if b.language in ("python", "py")]


def test_docs_have_runnable_python() -> None:
    assert PYTHON, "no python blocks found in docs/"
    assert any(b.runs for b in PYTHON), 'no python block is marked title="... runs"'


def _check_imports(tree: ast.Module) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module = importlib.import_module(node.module)
            for alias in node.names:
                if hasattr(module, alias.name):
                    continue
                try:
                    importlib.import_module(f"{node.module}.{alias.name}")
                except ImportError:
                    problems.append(f"{node.module} has no {alias.name}")
    return problems


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_block_compiles_and_imports(block: Block) -> None:
    tree = ast.parse(block.code, filename=block.id)
    compile(tree, block.id, "exec")
    assert _check_imports(tree) == []


RUNNABLE = [b for b in PYTHON if b.runs]


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_python_block_runs(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block.code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTIARY_")}
    # Any outbound connection would fail: the examples must run offline.
    env.update({"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"})
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{block.id} failed:\n{done.stdout}\n{done.stderr}"


DATA = [b for b in ALL if b.language in ("json", "toml")]


@pytest.mark.parametrize("block", DATA, ids=[b.id for b in DATA])
def test_data_block_parses(block: Block) -> None:
    if block.language == "json":
        json.loads(block.code)
    else:
        tomllib.loads(block.code)


def test_fence_parser_reads_indented_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        '!!! note\n    ```python title="x.py runs"\n    import os\n    ```\n\n```bash\nls\n```\n'
    )
    assert [(b.language, b.title, b.code, b.runs) for b in blocks(page)] == [
        ("python", "x.py runs", "import os\n", True),
        ("bash", "", "ls\n", False),
    ]
