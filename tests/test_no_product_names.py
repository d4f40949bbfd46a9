"""Products come from the bank's products table: no product name may be written into the
code outside the synthetic generator (docs/design.md §4, §11)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from synthetic.config import DEFAULT_CATALOGUE

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "training", "serving", "models", "retain", "monitoring")
OTHER_BANK = tomllib.loads((ROOT / "docs" / "other_bank.toml").read_text())["synthetic"]


def product_codes() -> set[str]:
    codes = {p.product for p in DEFAULT_CATALOGUE}
    return codes | {p["product"] for p in OTHER_BANK["products"]}


def test_the_grep_finds_a_planted_name(tmp_path) -> None:
    planted = tmp_path / "offers.py"
    planted.write_text('BEST = "mortgage"\n')
    assert literals_in([planted], product_codes()) == [(planted, 1, "mortgage")]


def test_no_product_name_outside_the_generator() -> None:
    files = [
        path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*")
        if path.suffix in (".py", ".html", ".j2", ".sql") and path.is_file()
    ]
    assert len(files) > 30
    found = literals_in(files, product_codes())
    assert not found, "product names written into the code: " + "; ".join(
        f"{path.relative_to(ROOT)}:{line} {code}" for path, line, code in found
    )


def literals_in(files: list[Path], codes: set[str]) -> list[tuple[Path, int, str]]:
    pattern = re.compile(r"\b(" + "|".join(sorted(codes, key=len, reverse=True)) + r")\b")
    found = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            found += [(path, number, match) for match in pattern.findall(line)]
    return found
