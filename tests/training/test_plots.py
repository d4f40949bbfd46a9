"""Diagnostic plots: each writes a readable PNG of sensible size; gains are right."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from training.plots import (
    _gains_curve,
    plot_backtest,
    plot_calibration,
    plot_gains,
    plot_importance,
    plot_roc,
    plot_shap_summary,
)

MIN_BYTES = 5_000


@pytest.fixture(scope="module")
def problem() -> dict:
    """2,000 customers whose label is a logistic of two features, plus a category column."""
    rng = np.random.default_rng(3)
    n = 2_000
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    p = 1 / (1 + np.exp(-(-1.5 + 1.5 * x1 - x2)))
    y = (rng.random(n) < p).astype("int64")
    frame = pd.DataFrame(
        {
            "aum_change_3m": x1,
            "months_since_last_login": x2,
            "segment": pd.Categorical(rng.choice(["mass", "affluent", "private"], n)),
        }
    )
    return {"y": y, "p": p, "frame": frame, "x1": x1, "x2": x2}


def assert_png(path: Path, min_width: int = 400, min_height: int = 300) -> None:
    assert path.exists(), f"{path} was not written"
    assert path.stat().st_size > MIN_BYTES, f"{path} is only {path.stat().st_size} bytes"
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert width >= min_width and height >= min_height, f"{path}: {width}×{height}"
    leftovers = [f.name for f in path.parent.iterdir() if f.name.endswith(".tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def test_roc_draws_every_scorer(problem: dict, tmp_path: Path) -> None:
    scores = {
        "model": problem["p"],
        "logistic regression": problem["x1"] - problem["x2"],
        "rule of thumb": (problem["x1"] > 1).astype(float),
        "oracle": problem["p"],
    }
    out = plot_roc(problem["y"], scores, tmp_path / "nested" / "roc.png")
    assert out == tmp_path / "nested" / "roc.png"
    assert_png(out)


def test_gains_and_lift(problem: dict, tmp_path: Path) -> None:
    scores = {"model": problem["p"], "rule of thumb": (problem["x1"] > 1).astype(float)}
    assert_png(plot_gains(problem["y"], scores, tmp_path / "gains.png"), min_width=800)


def test_calibration(problem: dict, tmp_path: Path) -> None:
    assert_png(plot_calibration(problem["y"], problem["p"], tmp_path / "calibration.png"))


def test_importance_shows_top_features(tmp_path: Path) -> None:
    names = [f"feature_{i}" for i in range(30)]
    gain = np.random.default_rng(0).gamma(1.0, size=30)
    assert_png(plot_importance(names, gain, tmp_path / "importance.png", top=20))


@pytest.mark.filterwarnings("ignore:The set_.* function will be deprecated")
def test_shap_summary_from_lightgbm_contributions(problem: dict, tmp_path: Path) -> None:
    frame, y = problem["frame"], problem["y"]
    params = {"objective": "binary", "num_leaves": 7, "verbosity": -1, "seed": 0}
    booster = lgb.train(params, lgb.Dataset(frame, label=y), num_boost_round=50)
    contributions = booster.predict(frame, pred_contrib=True)
    assert contributions.shape == (len(frame), frame.shape[1] + 1)
    global_rng = np.random.get_state()[1].copy()

    out = plot_shap_summary(contributions, frame, tmp_path / "shap.png")
    assert_png(out, min_height=250)
    sampled = plot_shap_summary(
        contributions, frame, tmp_path / "shap_sampled.png", sample_rows=300
    )
    assert_png(sampled, min_height=250)
    assert np.array_equal(np.random.get_state()[1], global_rng), "global numpy RNG was changed"


def test_shap_summary_refuses_contributions_of_other_rows(problem: dict, tmp_path: Path) -> None:
    frame = problem["frame"]
    without_bias = np.zeros((len(frame), frame.shape[1]))
    with pytest.raises(ValueError, match="pred_contrib=True"):
        plot_shap_summary(without_bias, frame, tmp_path / "shap.png")


def test_backtest(tmp_path: Path) -> None:
    cutoffs = list(pd.date_range("2023-01-31", periods=6, freq="ME"))
    auc = [0.80, 0.81, 0.79, 0.82, 0.80, 0.81]
    ece = [0.010, 0.012, 0.020, 0.015, 0.009, 0.030]
    assert_png(plot_backtest(cutoffs, auc, ece, tmp_path / "backtest.png", ece_limit=0.02))
    with pytest.raises(ValueError, match="one AUC and one ECE per cutoff"):
        plot_backtest(cutoffs, auc[:-1], ece, tmp_path / "bad.png")


def test_bad_inputs_say_what_is_wrong(problem: dict, tmp_path: Path) -> None:
    y, p = problem["y"], problem["p"]
    with_nan = p.copy()
    with_nan[:3] = np.nan
    with pytest.raises(ValueError, match="'rule of thumb': 3 of 2,000 are NaN"):
        plot_roc(y, {"model": p, "rule of thumb": with_nan}, tmp_path / "roc.png")
    with pytest.raises(ValueError, match="labels must be 0/1"):
        plot_gains(np.where(y == 1, 2, 0), {"model": p}, tmp_path / "gains.png")
    with pytest.raises(ValueError, match="both classes"):
        plot_roc(np.zeros_like(y), {"model": p}, tmp_path / "roc.png")
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        plot_calibration(y, p * 3, tmp_path / "calibration.png")
    with pytest.raises(ValueError, match="3 feature names but 2 gain values"):
        plot_importance(["a", "b", "c"], np.array([1.0, 2.0]), tmp_path / "importance.png")
    assert not list(tmp_path.iterdir()), "a failed plot left a file behind"


def test_gains_treat_tied_scores_as_one_group() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0, 1])
    contacted, captured = _gains_curve(y, np.ones(len(y)))
    assert contacted.tolist() == [0.0, 1.0] and captured.tolist() == [0.0, 1.0]
    contacted, captured = _gains_curve(y, np.array([3, 3, 2, 2, 1, 1, 1, 1.0]))
    assert contacted.tolist() == [0.0, 0.25, 0.5, 1.0]
    assert captured == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
