"""LightGBM's path-dependent TreeSHAP, by tables: the same contributions, 7–9 times faster.

``booster.predict(x, pred_contrib=True)`` walks every tree's paths for every row, about 500 ns
per tree and row for retain's trees (two threads, the 1M bank's churn model). But a tree with
K internal nodes sends a row left or right at each of them, and the row's contributions from
that tree depend on those K decisions alone: at most 2^K patterns. For retain's trees
(7 leaves, depth 3: K ≤ 6) a table of 64 rows per tree holds every contribution the tree can
give, so a row costs K comparisons and a lookup per tree, vectorised over rows
(:class:`ShapTables`).

The tables come from the tree itself. Path-dependent TreeSHAP (Lundberg et al. 2018, what
LightGBM computes) gives the Shapley values of

    v(S) = Σ_leaves value × Π_{nodes on the leaf's path} (1 if the node's feature is in S and
           the row goes the path's way, 0 if it is in S and goes the other way, the share of
           the node's training rows that went the path's way if the feature is not in S).

Each leaf's term is a product over the distinct features of its path: feature f contributes
z_f (does the row go the path's way at every node of f) when in S, R_f (the product of its
nodes' shares) when not. The Shapley value of such a product has a closed form — for f,
value × (z_f − R_f) × Σ_s s!(p−s−1)!/p! × e_s, where e_s sums the products over the other
features with s of them in S (the elementary symmetric polynomial TreeSHAP's EXTEND builds).
Summing the leaves' terms for each pattern fills the tree's table.

Only what the tables can hold is done this way: binary models of numerical splits (no
categorical splits, linear trees or averaged output), every tree with at most
:data:`MAX_NODES` internal nodes. :func:`shap_tables` returns None otherwise, and the caller
keeps LightGBM's own TreeSHAP.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from math import factorial

import numpy as np

from models.boosters import lgb
from models.tree_rules import KINDS, ZERO, missing_goes_left, tree_paths

MAX_NODES = 10  # a table of 2^10 patterns per tree; deeper trees keep LightGBM's TreeSHAP
TREE_BY_TREE_ROWS = 512  # from this many rows, tree by tree (compiled)


@dataclass(frozen=True)
class TreeTable:
    """One tree: its internal nodes' splits and, per pattern of their decisions (bit j set when
    the row goes left at node j), the contribution to each of the tree's features."""

    feature: np.ndarray  # (K,) input column of each internal node
    threshold: np.ndarray  # (K,)
    default_left: np.ndarray  # (K,) where a missing value goes
    kind: np.ndarray  # (K,) LightGBM's missing type, as KINDS numbers it
    columns: np.ndarray  # (F_tree,) input columns the table's columns are
    table: np.ndarray  # (2^K, F_tree)


@dataclass(frozen=True)
class ShapTables:
    """The tables of a whole booster, every tree padded to the same number of internal nodes
    (a padded node sends every row left) and the same number of table columns (a padded column
    adds to a column past the inputs, dropped), so that a few rows can look every tree up in a
    few array operations (a single customer of the API: 0.1 ms against LightGBM's 0.2)."""

    feature: np.ndarray  # (T, K) input column of each node
    threshold: np.ndarray  # (T, K)
    default_left: np.ndarray  # (T, K)
    kind: np.ndarray  # (T, K) missing type: 0 None, 1 Zero, 2 NaN
    columns: np.ndarray  # (T, C) the input column each table column adds to
    table: np.ndarray  # (T × 2^K, C): tree t's row for pattern b at t × 2^K + b
    n_features: int

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """(rows × features) contributions in log-odds, as LightGBM's ``pred_contrib`` without
        its last (bias) column; ``x`` is (rows × features), missing values NaN.

        A few rows look every tree up at once; many rows go tree by tree, a block of rows at a
        time, in the compiled loop of ``models.tree_kernels`` (on every core: 200,000 rows of
        the 1M bank's churn model in 0.3–1.0 s against 1.3–1.5 s by numpy). Either way each
        feature's contributions are added in the trees' order, so both give the same bits."""
        x = np.asarray(x, dtype=np.float64)
        return (self._by_tree if len(x) >= TREE_BY_TREE_ROWS else self._at_once)(x)

    def _at_once(self, x: np.ndarray) -> np.ndarray:
        trees, k = self.feature.shape
        n, width = len(x), self.n_features + 1
        left = self._left(x[:, self.feature], slice(None))  # (rows, T, K)
        pattern = (left << np.arange(k)).sum(axis=2)
        added = self.table[(np.arange(trees)[None, :] << k) + pattern]  # (rows, T, C)
        at = (np.arange(n)[:, None] * width + self.columns.ravel()[None, :]).ravel()
        summed = np.bincount(at, weights=added.ravel(), minlength=n * width)
        return summed.reshape(n, width)[:, : self.n_features]

    def _by_tree(self, x: np.ndarray) -> np.ndarray:
        from models import tree_kernels  # numba: only where many rows are explained

        columns = np.asfortranarray(x)  # a feature's values side by side
        out = np.zeros((len(x), self.n_features + 1))  # the last column: the padding's
        missing_left = missing_goes_left(self.kind, self.threshold, self.default_left)
        nodes = (self.feature, self.threshold, self.kind == KINDS["Zero"], missing_left)

        def run(start: int, stop: int) -> None:
            tree_kernels.contributions(columns, start, stop, *nodes, self.columns, self.table, out)

        tree_kernels.on_threads(len(x), run)
        return out[:, : self.n_features]

    def _left(self, value: np.ndarray, nodes) -> np.ndarray:
        """Does a row go left at a node, as LightGBM decides: a missing value goes the node's
        default way for its missing type; for type None it is 0; a value within ``ZERO`` of 0
        is read as 0 (as the compiled loop reads it). ``value``: the nodes' input values,
        shaped as ``self.<array>[nodes]`` broadcasts against them."""
        threshold, kind = self.threshold[nodes], self.kind[nodes]
        value = np.where(np.abs(value) <= ZERO, 0.0, value)  # NaN stays NaN
        nan = np.isnan(value)
        missing = (nan & (kind == 2)) | ((nan | (value == 0.0)) & (kind == 1))
        compared = np.where(nan & (kind == 0), 0.0, value) <= threshold
        return np.where(missing, self.default_left[nodes], compared).astype(np.intp)


_MADE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # each booster's tables


def tree_shap(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    """(rows × features) path-dependent TreeSHAP contributions of ``booster`` for the input
    matrix ``x``, in log-odds without the bias column: by the booster's tables (made once per
    booster), or by LightGBM itself for a booster beyond them."""
    if booster not in _MADE:
        _MADE[booster] = shap_tables(booster)
    tables = _MADE[booster]
    if tables is None:
        return np.asarray(booster.predict(x, pred_contrib=True))[:, :-1]
    return tables.contributions(x)


def shap_tables(booster: lgb.Booster) -> ShapTables | None:
    """The tables of ``booster`` (the iterations ``predict`` uses), or None when a tree or the
    model is beyond them (see the module's docstring)."""
    model = booster.dump_model()
    if (
        model.get("num_tree_per_iteration", 1) != 1
        or model.get("average_output")
        or any(t.get("num_cat", 0) for t in model["tree_info"])
    ):
        return None
    trees = []
    for info in model["tree_info"]:
        root = info["tree_structure"]
        if "leaf_value" in root:
            continue
        if info["num_leaves"] - 1 > MAX_NODES:
            return None
        tree = _tree_table(root)
        if tree is None:
            return None
        trees.append(tree)
    return _stacked(trees or [_no_tree()], model["max_feature_idx"] + 1)


def _stacked(trees: list[TreeTable], n_features: int) -> ShapTables:
    """Every tree padded to the most internal nodes and table columns of any, and stacked."""
    k = max(len(t.feature) for t in trees)
    c = max(len(t.columns) for t in trees)

    def padded(values: np.ndarray, fill, width: int) -> np.ndarray:
        return np.concatenate([values, np.full(width - len(values), fill, dtype=values.dtype)])

    tables = []
    for t in trees:
        # a padded node sends every row left (bit set): the tree's own rows repeat
        rows = np.arange(2**k) & (2 ** len(t.feature) - 1)
        tables.append(np.pad(t.table[rows], ((0, 0), (0, c - t.table.shape[1]))))
    return ShapTables(
        feature=np.stack([padded(t.feature, 0, k) for t in trees]),
        threshold=np.stack([padded(t.threshold, np.inf, k) for t in trees]),
        default_left=np.stack([padded(t.default_left, True, k) for t in trees]),
        kind=np.stack([padded(t.kind, KINDS["NaN"], k) for t in trees]),
        columns=np.stack([padded(t.columns, n_features, c) for t in trees]),
        table=np.concatenate(tables),
        n_features=n_features,
    )


def _no_tree() -> TreeTable:
    """A tree that moves nothing (a booster whose trees have no split)."""
    none = np.zeros(0)
    return TreeTable(
        none.astype(np.intp),
        none,
        none.astype(bool),
        none.astype(np.intp),
        none.astype(np.intp),
        np.zeros((1, 0)),
    )


def _tree_table(root: dict) -> TreeTable | None:
    """The table of one tree (None for a split the tables do not know)."""
    walked = tree_paths(root)
    if walked is None:
        return None
    nodes, leaves = walked
    k = len(nodes)
    feature = np.array([n["split_feature"] for n in nodes], dtype=np.intp)
    columns = np.unique(feature)
    slot = {int(c): i for i, c in enumerate(columns)}
    bits = (np.arange(2**k)[:, None] >> np.arange(k)[None, :]) & 1  # (patterns, K): went left
    # every leaf's path features, padded to the most any leaf has with features that change
    # nothing (z = R = 1: a null player, which leaves the others' Shapley values as they are)
    paths = [list(dict.fromkeys(int(feature[j]) for j, _, _ in path)) for _, path in leaves]
    p = max(len(features) for features in paths)
    agree = np.ones((2**k, len(leaves), p))  # z_f of every pattern and leaf
    shares = np.ones((len(leaves), p))  # R_f of every leaf
    target = np.full((len(leaves), p), len(columns))  # the table column of each (a pad: none)
    for leaf, ((_, path), features) in enumerate(zip(leaves, paths, strict=True)):
        for j, left, share in path:
            i = features.index(int(feature[j]))
            agree[:, leaf, i] *= bits[:, j] == left
            shares[leaf, i] *= share
        target[leaf, : len(features)] = [slot[f] for f in features]
    values = np.array([value for value, _ in leaves])
    phi = _product_shapley(values, agree, shares).reshape(2**k, -1)  # (patterns, leaves × p)
    onto = np.zeros((phi.shape[1], len(columns) + 1))
    onto[np.arange(phi.shape[1]), target.ravel()] = 1.0
    table = (phi @ onto)[:, : len(columns)]
    return TreeTable(
        feature=feature,
        threshold=np.array([n["threshold"] for n in nodes], dtype=np.float64),
        default_left=np.array([n["default_left"] for n in nodes], dtype=bool),
        kind=np.array([KINDS[n["missing_type"]] for n in nodes], dtype=np.intp),
        columns=columns,
        table=table,
    )


def _product_shapley(value: np.ndarray, z: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Shapley values of each leaf's v(S) = value × Π_{f in S} z_f × Π_{f not in S} R_f:
    ``value`` (leaves,), ``z`` (patterns × leaves × p, 0 or 1), ``shares`` R (leaves × p);
    returns (patterns × leaves × p)."""
    p = z.shape[2]
    weights = np.array([factorial(s) * factorial(p - s - 1) / factorial(p) for s in range(p)])
    phi = np.zeros(z.shape)
    for i in range(p):
        e = np.zeros(z.shape)  # e[..., s]: the other features' products with s of them in S
        e[..., 0] = 1.0
        for g in range(p):
            if g == i:
                continue
            e[..., 1:] = e[..., 1:] * shares[:, g, None] + e[..., :-1] * z[..., g, None]
            e[..., 0] *= shares[:, g]
        phi[..., i] = value * (z[..., i] - shares[:, i]) * (e @ weights)
    return phi
