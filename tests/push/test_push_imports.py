"""`push` is a standalone library: the backend imports it, never the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

import push

PACKAGE_DIR = Path(push.__file__).parent


def _imported_modules(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", ""))
            in {
                "import_module",
                "__import__",
            }
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def test_push_never_imports_backend() -> None:
    files = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(files) >= 6
    offenders = {
        str(path.relative_to(PACKAGE_DIR)): sorted(
            m for m in _imported_modules(path.read_text()) if m.split(".")[0] == "backend"
        )
        for path in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_scanner_would_notice() -> None:
    found = _imported_modules(
        "import backend.app\nfrom backend import settings\n"
        "import importlib\nimportlib.import_module('backend.db')\n"
    )
    assert {"backend.app", "backend", "backend.db"} <= found
