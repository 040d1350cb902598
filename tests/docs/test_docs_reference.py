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
    return load_generator().render()


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
        'audit("b.two", subject=s)\nself.ctx.audit("a.one", grant=g)\nctx.audit(name)\n'
    )
    events = generator.audit_events(package)
    assert events == {
        "a.one": ({"pkg", "pkg.sub.mod"}, {"client_id", "grant"}),
        "b.two": ({"pkg.sub.mod"}, {"subject"}),
    }
