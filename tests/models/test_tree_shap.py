"""TreeSHAP by tables (models.tree_shap) gives LightGBM's own contributions, row for row."""

from __future__ import annotations

import numpy as np
import pytest

from models.boosters import lgb
from models.tree_rules import ZERO
from models.tree_shap import MAX_NODES, TREE_BY_TREE_ROWS, shap_tables, tree_shap

ROWS = 3_000


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Six columns with what makes LightGBM's splits differ: missing values, exact zeros,
    repeated values, a column the trees split twice on one path."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ROWS, 6))
    x[rng.random(ROWS) < 0.2, 1] = np.nan  # missing: NaN missing type
    x[rng.random(ROWS) < 0.3, 2] = 0.0  # zeros (missing type Zero with zero_as_missing)
    x[:, 3] = rng.integers(0, 4, ROWS)  # few distinct values
    x[rng.random(ROWS) < 0.1, 4] = np.nan
    logit = x[:, 0] ** 2 - 1 + np.nan_to_num(x[:, 1]) + 0.5 * x[:, 3] - (x[:, 2] == 0)
    y = rng.random(ROWS) < 1 / (1 + np.exp(-logit))
    return x, y


def _booster(leaves: int = 7, depth: int = 3, rounds: int = 60, **params) -> lgb.Booster:
    x, y = _data()
    settings = {
        "objective": "binary",
        "num_leaves": leaves,
        "max_depth": depth,
        "min_data_in_leaf": 5,
        "verbose": -1,
        "num_threads": 1,
        **params,
    }
    return lgb.train(settings, lgb.Dataset(x, label=y), rounds)


def _splits(booster: lgb.Booster) -> list[tuple[int, float]]:
    """(feature, threshold) of every split of every tree."""
    splits = []

    def walk(node):
        if "split_feature" in node:
            splits.append((node["split_feature"], node["threshold"]))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return splits


def _lightgbm(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    return np.asarray(booster.predict(x, pred_contrib=True))[:, :-1]


BOOSTERS = [
    {},  # retain's trees: 7 leaves, depth 3
    {"zero_as_missing": True},  # missing type Zero
    {"use_missing": False},  # missing type None: NaN is read as 0
    {"leaves": 11, "depth": -1},  # the most internal nodes a table takes
    {"leaves": 2, "depth": 1},  # stumps
]


@pytest.mark.parametrize("params", BOOSTERS)
def test_the_tables_give_lightgbms_contributions(params):
    booster = _booster(**params)
    tables = shap_tables(booster)
    assert tables is not None
    x, _ = _data(seed=1)  # other rows than the training ones
    reference = _lightgbm(booster, x)
    by_tree = tables.contributions(x)  # 3,000 rows: tree by tree
    at_once = np.vstack(  # a few rows at a time: every tree at once
        [tables.contributions(x[i : i + 7]) for i in range(0, ROWS, 7)]
    )
    assert len(x) >= TREE_BY_TREE_ROWS > 7
    assert np.abs(by_tree - reference).max() < 1e-12
    # each feature's contributions are added in the trees' order both ways: the same bits
    assert np.array_equal(by_tree, at_once)


@pytest.mark.parametrize("params", [{"zero_as_missing": True}, {}])
def test_values_on_a_threshold_and_near_zero_go_where_lightgbm_sends_them(params):
    booster = _booster(**params)  # {}: a split at -1e-35 between negatives and zeros
    splits = _splits(booster)
    x, _ = _data(seed=2)
    x = x[: len(splits)].copy()
    for row, (feature, threshold) in enumerate(splits):  # each row sits on one threshold
        x[row, feature] = threshold
    x[::5, 2] = 1e-36  # zero for a Zero missing type, though not 0.0
    x[1::5, 2] = -1e-36
    x[2::5, 2] = -ZERO  # read as 0 by LightGBM: not left of a split at -ZERO
    x = np.vstack([x] * (TREE_BY_TREE_ROWS // len(x) + 1))  # enough rows to go tree by tree
    reference = _lightgbm(booster, x)
    assert np.abs(tree_shap(booster, x) - reference).max() < 1e-12
    assert np.abs(tree_shap(booster, x[:50]) - reference[:50]).max() < 1e-12  # all at once


def test_a_tree_beyond_the_tables_keeps_lightgbms_own_treeshap():
    deep = _booster(leaves=MAX_NODES + 5, depth=-1, rounds=10)
    assert shap_tables(deep) is None
    x, _ = _data(seed=3)
    assert np.array_equal(tree_shap(deep, x), _lightgbm(deep, x))


def test_a_categorical_split_keeps_lightgbms_own_treeshap():
    x, y = _data()
    x[:, 3] = np.abs(x[:, 3])
    data = lgb.Dataset(x, label=y, categorical_feature=[3])
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "min_data_per_group": 5}
    booster = lgb.train({**params, "cat_smooth": 1, "num_threads": 1}, data, 30)
    assert any(t["num_cat"] for t in booster.dump_model()["tree_info"])
    assert shap_tables(booster) is None
    assert np.array_equal(tree_shap(booster, x[:50]), _lightgbm(booster, x[:50]))


def test_a_booster_without_a_split_moves_nothing():
    x = np.zeros((50, 3))
    y = np.arange(50) % 2 == 0
    params = {"objective": "binary", "verbose": -1, "min_data_in_leaf": 40, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(x, label=y), 3)
    assert not tree_shap(booster, x).any()
    assert tree_shap(booster, x).shape == (50, 3)
