"""The checker's modules: NumPy only (never ``verigrad.nn`` nor torch), each with a module docstring."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import verigrad.check

CHECK_DIR = Path(verigrad.check.__file__).parent
MODULES = sorted(CHECK_DIR.glob("*.py"))


def _imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):  # function-level (lazy) imports too
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_the_split_modules_exist():
    have = {p.stem for p in MODULES}
    assert {"api", "options", "arrays", "adapters", "complex_step", "fn_check", "assembly", "upcast"} <= have


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_imports_neither_nn_nor_torch(path):
    imported = _imported(ast.parse(path.read_text()))
    bad = sorted(n for n in imported if n == "verigrad.nn" or n.startswith("verigrad.nn.")
                 or n in ("verigrad.torch", "torch") or n.startswith(("torch.", "verigrad.torch.")))
    assert not bad, f"verigrad/check/{path.name} imports {bad}: the checker depends on NumPy only"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_has_a_docstring(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and len(doc) > 40, f"verigrad/check/{path.name} needs a module docstring saying what it holds"


def test_public_names_unchanged_by_the_split():
    from verigrad.check import api

    for name in ("check_gradients", "check_params", "gradient_check", "check_layers"):
        assert getattr(verigrad.check, name) is getattr(api, name)
    assert api.METHODS == ("auto", "central", "complex", "richardson")
    assert api.MODES == ("full", "sample", "fast")
