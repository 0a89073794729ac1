"""``signing`` is a standalone library: it must never import ``backend``."""

from __future__ import annotations

import ast
from pathlib import Path

import signing

SIGNING_DIR = Path(signing.__file__).resolve().parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            names.update(
                a.value
                for a in node.args
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
            )
    return names


def test_signing_never_imports_backend() -> None:
    files = sorted(SIGNING_DIR.rglob("*.py"))
    assert files, "signing sources not found"
    offenders = {
        str(f.relative_to(SIGNING_DIR)): sorted(
            m for m in _imported_modules(f) if m == "backend" or m.startswith("backend.")
        )
        for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_scanner_detects_backend_imports(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import backend.db\nfrom backend import app\n")
    assert {"backend.db", "backend"} <= _imported_modules(sample)
