"""LightGBM without its scikit-learn layer (models/boosters.py): the processes that score never
load scikit-learn, the project takes ``lgb`` from one place, and the boosters are the same."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import lightgbm
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("features", "synthetic", "models", "training", "serving", "monitoring", "retain")


def in_a_fresh_process(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_what_scores_loads_neither_scikit_learn_nor_scipy_stats():
    loaded = in_a_fresh_process(
        "import sys, json\n"
        "import serving.api.service, serving.batch, retain.score_commands, models.uplift\n"
        "print(json.dumps([m for m in ('lightgbm', 'sklearn', 'scipy.stats') if m in sys.modules]))"
    )
    assert json.loads(loaded) == ["lightgbm"]


def top_level_lightgbm_imports(path: Path) -> list[int]:
    """Lines importing lightgbm at a module's top (not under ``if TYPE_CHECKING``)."""
    lines = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        if any(name.split(".")[0] == "lightgbm" for name in names):
            lines.append(node.lineno)
    return lines


def test_every_module_takes_lightgbm_from_models_boosters():
    found = {
        str(path.relative_to(ROOT)): lines
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name != "boosters.py" and (lines := top_level_lightgbm_imports(path))
    }
    assert found == {}, f"import lightgbm through models.boosters (lgb): {found}"


def test_a_booster_trained_without_scikit_learn_predicts_the_same():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2_000, 5))
    y = (x[:, 0] + rng.normal(size=2_000) > 0).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 3}
    here = lightgbm.train(params, lightgbm.Dataset(x, label=y), num_boost_round=20)
    there = in_a_fresh_process(
        "import json, sys\nimport numpy as np\nfrom models.boosters import lgb\n"
        f"rng = np.random.default_rng(3)\nx = rng.normal(size=(2_000, 5))\n"
        "y = (x[:, 0] + rng.normal(size=2_000) > 0).astype(int)\n"
        f"booster = lgb.train({params!r}, lgb.Dataset(x, label=y), num_boost_round=20)\n"
        "print(json.dumps({'sklearn': 'sklearn' in sys.modules,"
        " 'p': booster.predict(x[:50]).tolist()}))"
    )
    answer = json.loads(there)
    assert answer["sklearn"] is False
    np.testing.assert_array_equal(np.array(answer["p"]), here.predict(x[:50]))
