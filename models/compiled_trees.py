"""LightGBM's probabilities for many rows from the trees' leaf tables, compiled: the same bits,
about 8 times faster.

``booster.predict`` walks each tree node by node for each row: three dependent, unpredictable
branches per tree of retain's (depth 3), about 28 ns a tree and row — 19 s of the 1M bank's
monthly scoring (928,411 customers × 9 models, 1,557 trees). A tree with K internal nodes sends
a row to the leaf its K decisions name, so a table of 2^K leaf values per tree
(:class:`LeafTables`) gives the leaf from the pattern of decisions; the decisions at one node are
one comparison over a contiguous run of a column, which the compiled loop
(``models.tree_kernels``, numba, no GIL) does for a block of rows at a time. The leaves are added
tree by tree in the booster's order and the sigmoid is LightGBM's, so each probability is
LightGBM's to the last bit (``tests/models/test_compiled_trees.py``).

Used for binary boosters of numerical splits of at most ``tree_shap.MAX_NODES`` internal nodes
a tree, from :data:`COMPILED_ROWS` rows: a few rows (the API's customers) stay with LightGBM,
and the compilation (cached on disk by numba) is paid by the processes that score many.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from models.boosters import lgb
from models.tree_rules import KINDS, missing_goes_left, tree_paths
from models.tree_shap import MAX_NODES

COMPILED_ROWS = 4_096  # from this many rows: below, LightGBM's own walk (no compiling)


@dataclass(frozen=True)
class LeafTables:
    """Every tree of a booster, in its order, padded to the same K internal nodes (a padded
    node sends every row left: bit set, the tree's own leaves repeat)."""

    feature: np.ndarray  # (T, K) input column of each node
    threshold: np.ndarray  # (T, K)
    zero_missing: np.ndarray  # (T, K) 0 is missing too (LightGBM's type Zero)
    missing_left: np.ndarray  # (T, K) where a missing value goes (type None: where 0 goes)
    leaf: np.ndarray  # (T, 2^K) the leaf value each pattern reaches (bit j: left at node j)
    sigmoid: float  # LightGBM's binary objective: p = 1 / (1 + exp(-sigmoid × raw))

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """LightGBM's ``predict(x)`` for the rows of ``x`` (missing values NaN), on every core
        the process may use."""
        from models import tree_kernels  # numba: only where many rows are scored

        x = np.asfortranarray(x, dtype=np.float64)  # a column's rows side by side
        out = np.empty(len(x))
        nodes = (self.feature, self.threshold, self.zero_missing, self.missing_left)

        def run(start: int, stop: int) -> None:
            tree_kernels.raw_scores(x, start, stop, *nodes, self.leaf, self.sigmoid, out)

        tree_kernels.on_threads(len(x), run)
        return out


_MADE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # each booster's tables


def predict(booster: lgb.Booster, x) -> np.ndarray:
    """``booster.predict(x)``: by the booster's leaf tables (made once per booster) for a
    numerical matrix of :data:`COMPILED_ROWS` rows or more, else by LightGBM itself."""
    if not isinstance(x, np.ndarray) or x.ndim != 2 or len(x) < COMPILED_ROWS:
        return booster.predict(x)
    if booster not in _MADE:
        _MADE[booster] = leaf_tables(booster)
    tables = _MADE[booster]
    return booster.predict(x) if tables is None else tables.probabilities(x)


def leaf_tables(booster: lgb.Booster) -> LeafTables | None:
    """The tables of ``booster`` (the iterations ``predict`` uses), or None when it is not a
    binary model of numerical splits within ``MAX_NODES`` internal nodes a tree."""
    model = booster.dump_model()
    objective = model.get("objective", "").split()
    if (
        objective[:1] != ["binary"]
        or model.get("num_tree_per_iteration", 1) != 1
        or model.get("average_output")
        or not model["tree_info"]
    ):
        return None
    sigmoid = dict(part.split(":", 1) for part in objective[1:] if ":" in part).get("sigmoid")
    trees = [tree_paths(info["tree_structure"]) for info in model["tree_info"]]
    if any(tree is None or len(tree[0]) > MAX_NODES for tree in trees):
        return None
    k = max(len(nodes) for nodes, _ in trees)
    shape = (len(trees), k)
    feature, threshold = np.zeros(shape, np.intp), np.full(shape, np.inf)
    kind, default_left = np.full(shape, KINDS["NaN"]), np.ones(shape, bool)
    leaf = np.zeros((len(trees), 2**k))
    patterns = np.arange(2**k)
    for t, (nodes, leaves) in enumerate(trees):
        for j, node in enumerate(nodes):
            feature[t, j], threshold[t, j] = node["split_feature"], node["threshold"]
            kind[t, j], default_left[t, j] = KINDS[node["missing_type"]], node["default_left"]
        for value, path in leaves:
            reached = np.ones(2**k, dtype=bool)
            for j, left, _ in path:
                reached &= ((patterns >> j) & 1).astype(bool) == left
            leaf[t, reached] = value
    missing_left = missing_goes_left(kind, threshold, default_left)
    zero_missing = kind == KINDS["Zero"]
    return LeafTables(feature, threshold, zero_missing, missing_left, leaf, float(sigmoid or 1.0))
