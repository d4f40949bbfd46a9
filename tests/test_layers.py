"""The shape of the code (docs/design.md §2): imports point down only, no module circles, no
private names borrowed across packages, serving's inner layers, short functions. Each check
first proves on a planted package that it can fail."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.code_shape import (
    Import,
    Layers,
    circles,
    import_graph,
    layer_violations,
    long_functions,
    private_imports,
)

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
PACKAGE_LAYERS = Layers(groups={package: (package,) for package in ALLOWED}, allowed=ALLOWED)

# serving/ (docs/design.md §3): the scoring core — models, scores, reasons, lists, offers, the
# customer's answer, words and charts — imports only itself; the writers of `retain score`'s
# files import the core; the HTTP service (api/, ui/) imports the core, never the writers.
SERVING_LAYERS: Layers | None = Layers(
    groups={
        "core": (
            "serving.champions",
            "serving.score",
            "serving.assign",
            "serving.explain",
            "serving.lists",
            "serving.offers",
            "serving.answer",
            "serving.texts",
            "serving.charts",
            "serving.outcomes",
        ),
        "writers": (
            "serving.batch",
            "serving.answer_batches",
            "serving.spark_scoring",
            "serving.sheets",
            "serving.sheets_split",
            "serving.report",
            "serving.history",
        ),
        "http": ("serving.api", "serving.ui"),
    },
    allowed={"core": {"core"}, "writers": {"core", "writers"}, "http": {"core", "http"}},
    package="serving",
)

MAX_FUNCTION_LINES = 80
LONG_FUNCTIONS_ALLOWED = {
    "features/catalog.py::_entries": "the feature catalog: a data table, one entry per feature",
    "synthetic/dynamics.py::simulate": "the simulator's month loop: two dozen arrays of state "
    "change together each month, and the order of its random draws fixes the bank",
}


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    found = import_graph(ROOT, PACKAGES)
    assert len(found) > 300, f"only {len(found)} project imports found under {ROOT}"
    return found


def plant(root: Path, files: dict[str, str]) -> Path:
    """Write small fake packages under ``root``: {relative path: source}."""
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return root


def test_a_planted_circle_is_found(tmp_path) -> None:
    root = plant(
        tmp_path,
        {
            "a/__init__.py": "",
            "a/x.py": "import a.y\n",
            "a/y.py": "def later():\n    from a import x\n",  # a lazy import closes it
            "b/__init__.py": "",
            "b/p.py": "from .q import thing\n",
            "b/q.py": "from . import p\nthing = 1\n",
            "b/r.py": "from b.q import thing\n",  # points into a circle, is not in one
        },
    )
    assert circles(import_graph(root, ("a", "b"))) == [["a.x", "a.y", "a.x"], ["b.p", "b.q", "b.p"]]


def test_no_import_circles(graph) -> None:
    found = circles(graph)
    assert not found, "modules import each other: " + "; ".join(" → ".join(c) for c in found)


def test_a_planted_private_import_is_found(tmp_path) -> None:
    root = plant(
        tmp_path,
        {
            "a/__init__.py": "",
            "a/x.py": "from b.q import _hidden, __version__, shown\nfrom a.y import _own\n",
            "a/y.py": "_own = 1\n\ndef f():\n    from b._inner import helper\n",
            "b/__init__.py": "",
            "b/q.py": "_hidden = shown = 1\n__version__ = '1'\n",
            "b/_inner.py": "helper = 1\n",
        },
    )
    found = private_imports(import_graph(root, ("a", "b")))
    assert [(f.importer, f.target, f.name) for f in found] == [
        ("a.x", "b.q", "_hidden"),
        ("a.y", "b._inner", "helper"),
    ]


def test_no_private_names_borrowed_across_packages(graph) -> None:
    found = private_imports(graph)
    assert not found, "private names used across packages: " + "; ".join(map(str, found))


def test_a_planted_upward_import_is_found(tmp_path) -> None:
    root = plant(
        tmp_path,
        {
            "features/x.py": "def f():\n    from serving.batch import score_frame\n",
            "serving/batch.py": "from features import x\nscore_frame = 1\n",
        },
    )
    found = layer_violations(import_graph(root, PACKAGES), PACKAGE_LAYERS)
    assert found == [
        "features.x imports serving.batch (score_frame) at line 2 (features may not import serving)"
    ]


def test_imports_point_down_only(graph) -> None:
    found = layer_violations(graph, PACKAGE_LAYERS)
    assert not found, "; ".join(found)


# The intended shape of serving's layers, proven here on a planted package.
PLANTED_SERVING_LAYERS = Layers(
    groups={
        "core": ("serving.explain", "serving.lists", "serving.offers", "serving.scoring"),
        "writers": ("serving.sheets", "serving.report", "serving.batch"),
        "http": ("serving.api", "serving.ui"),
    },
    allowed={
        "core": {"core"},
        "writers": {"writers", "core"},
        "http": {"http", "core"},
    },
    package="serving",
)


def test_a_planted_inner_serving_violation_is_found(tmp_path) -> None:
    root = plant(
        tmp_path,
        {
            "serving/__init__.py": "",
            "serving/explain.py": "from serving.api.routes import app\n",  # core → http
            "serving/sheets.py": "from serving.explain import reasons\n",
            "serving/api/__init__.py": "",
            "serving/api/routes.py": "from serving import explain, sheets\napp = 1\n",
            "serving/stray.py": "from serving.explain import reasons\n",
        },
    )
    found = layer_violations(import_graph(root, ("serving",)), PLANTED_SERVING_LAYERS)
    assert found == [
        "serving.api.routes imports serving.sheets (sheets) at line 1 "
        "(http may not import writers)",
        "serving.explain imports serving.api.routes (app) at line 1 (core may not import http)",
        "serving.stray is in no group of serving's layers",
    ]


def test_serving_layers(graph) -> None:
    if SERVING_LAYERS is None:
        pytest.skip("SERVING_LAYERS is not set yet (TODO in tests/test_layers.py)")
    found = layer_violations(graph, SERVING_LAYERS)
    assert not found, "; ".join(found)


def test_a_planted_long_function_is_found(tmp_path) -> None:
    fits = "def fits():\n" + "    x = 1\n" * 79  # 80 lines: the limit itself
    runs = "class Job:\n    async def runs(self):\n" + "        x = 1\n" * 80
    root = plant(tmp_path, {"a/x.py": f"{fits}\n{runs}"})
    found = long_functions(root, ("a",), MAX_FUNCTION_LINES)
    assert [(f.key, f.line, f.length) for f in found] == [("a/x.py::Job.runs", 83, 81)]


def test_functions_are_short() -> None:
    found = long_functions(ROOT, PACKAGES, MAX_FUNCTION_LINES)
    stale = set(LONG_FUNCTIONS_ALLOWED) - {f.key for f in found}
    assert not stale, f"allowed to be long but gone or short now: {sorted(stale)}"
    too_long = [f for f in found if f.key not in LONG_FUNCTIONS_ALLOWED]
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines: " + "; ".join(
        f"{f.key} (line {f.line}, {f.length} lines)" for f in too_long
    )
