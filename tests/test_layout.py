"""The package's layout holds (docs/architecture.md): each stage imports only itself and lower stages, no module
imports another module's private name, no module is over 300 lines, and every subpackage says what it owns."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "ftstudy"
STAGES = ["core", "config", "data", "plan", "train", "eval", "study", "cli"]  # lowest first
MODULES = sorted(p for p in PKG.rglob("*.py") if "tool_env_scripts" not in p.parts and "demo_data" not in p.parts)


def _name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(imported module, imported name or None) for every `import ftstudy...` / `from ftstudy... import x`."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ftstudy"):
            for alias in node.names:
                yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ftstudy"):
                    yield alias.name, None


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_the_stages_are_the_packages_folders():
    assert {p.name for p in PKG.iterdir() if (p / "__init__.py").is_file()} == set(STAGES)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_a_module_imports_only_its_own_or_lower_stages_and_no_private_names(path):
    me = _stage(_name(path))
    for module, name in _imports(path):
        target = module + "." + name if name and (PKG.parent / (module + "." + name).replace(".", "/")).exists() \
            or name and (PKG.parent / ((module + "." + name).replace(".", "/") + ".py")).exists() else module
        them = _stage(target)
        if me and them:
            assert STAGES.index(them) <= STAGES.index(me), f"{_name(path)} ({me}) imports {target} ({them}), a later stage"
        assert not (name or "").startswith("_") or name == "__version__", f"{_name(path)} imports the private {module}.{name}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_no_module_reaches_for_a_private_name_of_a_module_it_imported(path):
    tree = ast.parse(path.read_text())
    aliases = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
               and (n.module or "").startswith("ftstudy") for a in n.names}
    reached = [f"{n.value.id}.{n.attr}" for n in ast.walk(tree) if isinstance(n, ast.Attribute)
               and isinstance(n.value, ast.Name) and n.value.id in aliases and n.attr.startswith("_")
               and not n.attr.startswith("__")]
    assert not reached, f"{_name(path)} uses private names of other modules: {reached}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_no_module_is_over_300_lines(path):
    assert len(path.read_text().splitlines()) <= 300


@pytest.mark.parametrize("init", sorted(PKG.glob("*/**/__init__.py")), ids=lambda p: str(p.parent.relative_to(PKG)))
def test_every_subpackage_says_what_it_owns_and_may_import(init):
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    assert "may import" in doc.lower() or init.parent.parent != PKG, doc
    assert len(doc) > 40, f"{init}: no docstring saying what the subpackage owns"


def test_the_architecture_doc_names_every_stage_and_the_readme_links_it():
    doc = (PKG.parent / "docs" / "architecture.md").read_text()
    assert all(f"{s}/" in doc for s in STAGES)
    assert "docs/architecture.md" in (PKG.parent / "README.md").read_text()
