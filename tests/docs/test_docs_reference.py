"""The generated reference pages (docs/reference/) match the code (STYLE §E, §J drift check).

A new setting, CLI option, error class or audit event changes what ``scripts/gen_docs.py``
generates; until the pages are regenerated and committed this test fails ``make test``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_docs", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    rendered: dict[str, str] = load_generator().render()
    return rendered


@pytest.mark.parametrize("name", ["settings.md", "cli.md", "errors.md", "audit-events.md"])
def test_reference_page_matches_code(generated: dict[str, str], name: str) -> None:
    committed = (ROOT / "docs" / "reference" / name).read_text(encoding="utf-8")
    assert committed == generated[name], (
        f"docs/reference/{name} is stale: run `.venv/bin/python scripts/gen_docs.py` "
        "and commit the result"
    )


def test_every_setting_has_a_description_and_a_row(generated: dict[str, str]) -> None:
    from pydantic import BaseModel

    from ostiary.settings import Settings

    def walk(model: type[BaseModel], path: tuple[str, ...]) -> list[tuple[str, str | None]]:
        found = []
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found += walk(annotation, (*path, name))
            else:
                found.append((".".join((*path, name)), field.description))
        return found

    fields = walk(Settings, ())
    assert [name for name, description in fields if not description] == []
    for name, _ in fields:
        env = "OSTIARY_" + name.replace(".", "__").upper()
        assert f"| `{name}` | `{env}` |" in generated["settings.md"]


def test_audit_scan_finds_calls_in_every_form(tmp_path: Path) -> None:
    generator = load_generator()
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text('ctx.audit("a.one", client_id=1)\n')
    (package / "sub" / "mod.py").write_text(
        "def f(ok):\n"
        '    audit("b.two", subject=s)\n'
        '    self.ctx.audit("a.one", grant=g)\n'
        '    ctx.audit("c.yes" if ok else "c.no", by=1)\n'
        "def g(ok):\n"
        '    event = "d.on" if ok else "d.off"\n'
        "    ctx.audit(event, kid=1)\n"
        "def h():\n"
        '    event = "e.other"\n'
    )
    events = generator.audit_events(package)
    assert events == {
        "a.one": ({"pkg", "pkg.sub.mod"}, {"client_id", "grant"}),
        "b.two": ({"pkg.sub.mod"}, {"subject"}),
        "c.yes": ({"pkg.sub.mod"}, {"by"}),
        "c.no": ({"pkg.sub.mod"}, {"by"}),
        "d.on": ({"pkg.sub.mod"}, {"kid"}),
        "d.off": ({"pkg.sub.mod"}, {"kid"}),
    }


def test_audit_scan_refuses_an_event_name_it_cannot_read(tmp_path: Path) -> None:
    generator = load_generator()
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "m.py").write_text("def f(name):\n    ctx.audit(name)\n")
    with pytest.raises(SystemExit, match=r"m\.py:2: audit event name is not a string literal"):
        generator.audit_events(package)
