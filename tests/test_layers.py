"""Imports point down only (DESIGN §2): features/ and synthetic/ know nothing above them, the
model artifact at most features/, training/ and serving/ never each other, nothing retain/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "synthetic", "models", "training", "serving", "monitoring", "retain")
ALLOWED = {
    "features": {"features"},
    "synthetic": {"synthetic", "features"},
    "models": {"models", "features"},
    "training": {"training", "features", "models"},
    "serving": {"serving", "features", "models"},
    "monitoring": {"monitoring", "features", "models", "training", "serving"},
    "retain": set(PACKAGES),
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(PACKAGES)


def test_a_planted_upward_import_is_found(tmp_path) -> None:
    planted = tmp_path / "x.py"
    planted.write_text("def f():\n    from serving.batch import score_frame\n")
    assert imported_packages(planted) == {"serving"}


def test_imports_point_down_only() -> None:
    wrong = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in sorted(imported_packages(path) - allowed):
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "; ".join(wrong)
