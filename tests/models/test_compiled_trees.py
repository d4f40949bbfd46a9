"""Probabilities from leaf tables (models.compiled_trees) are LightGBM's own, to the last bit."""

from __future__ import annotations

import numpy as np
import pytest

from models import compiled_trees
from models.artifact import ModelArtifact
from models.boosters import lgb
from models.calibration import Calibrator
from models.compiled_trees import COMPILED_ROWS, leaf_tables
from models.tree_shap import MAX_NODES
from tests.models.test_tree_shap import BOOSTERS, _booster, _data, _splits


def _rows(booster: lgb.Booster, seed: int) -> np.ndarray:
    """Other rows than the training ones, more than the compiled path's floor, with a row on
    every threshold of the booster and values a hair from zero (zero for type Zero)."""
    x = np.vstack([_data(seed)[0], _data(seed + 1)[0]])
    assert len(x) >= COMPILED_ROWS
    for row, (feature, threshold) in enumerate(_splits(booster)):
        x[row, feature] = threshold
    x[::5, 2] = 1e-36
    x[1::5, 2] = -1e-36
    return x


@pytest.mark.parametrize("params", [*BOOSTERS, {"sigmoid": 0.7}])  # and LightGBM's sigmoid
def test_the_tables_give_lightgbms_probabilities_to_the_bit(params):
    booster = _booster(**params)
    tables = leaf_tables(booster)
    assert tables is not None
    x = _rows(booster, seed=1)
    # one thread's rows and two threads' (each a contiguous run)
    assert np.array_equal(tables.probabilities(x[:1000]), booster.predict(x[:1000]))
    assert np.array_equal(compiled_trees.predict(booster, x), booster.predict(x))


def test_a_booster_of_leaves_alone_gives_its_leaves():
    x = np.zeros((COMPILED_ROWS, 3))
    y = np.arange(COMPILED_ROWS) % 3 == 0
    params = {"objective": "binary", "verbose": -1, "min_data_in_leaf": 3000, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(x, label=y), 3)
    assert {t["num_leaves"] for t in booster.dump_model()["tree_info"]} == {1}
    assert np.array_equal(compiled_trees.predict(booster, x), booster.predict(x))
    assert compiled_trees._MADE[booster] is not None


def test_what_the_tables_do_not_hold_stays_with_lightgbm():
    deep = _booster(leaves=MAX_NODES + 5, depth=-1, rounds=10)
    assert leaf_tables(deep) is None
    x = np.vstack([_data(3)[0], _data(4)[0]])
    assert np.array_equal(compiled_trees.predict(deep, x), deep.predict(x))
    regression = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(x, x[:, 0]), 5)
    assert leaf_tables(regression) is None


def test_a_model_scores_many_rows_compiled_and_a_few_with_lightgbm():
    booster = _booster()
    calibrator = Calibrator("platt", {"a": 1.3, "b": -0.2})
    model = ModelArtifact(booster, calibrator, [f"f{i}" for i in range(6)])
    x = _rows(booster, seed=5)
    expected = calibrator.apply(booster.predict(x))
    assert np.array_equal(model.predict_inputs(x[:50]), expected[:50])
    assert booster not in compiled_trees._MADE  # a few rows: LightGBM's own walk
    assert np.array_equal(model.predict_inputs(x), expected)
    assert compiled_trees._MADE[booster] is not None  # many: the tables
