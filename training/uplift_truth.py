"""What a ranking's lists save, computed exactly from a synthetic bank's two potential outcomes
(docs/design.md §14; docs/synthetic_campaign.md).

On a synthetic bank with a call effect, each customer-month has ``p_churn_3m`` (no call) and
``p_churn_3m_called`` (assigned a call at that cutoff), so the effect of calling a customer is
known, τ = ``p_churn_3m`` − ``p_churn_3m_called``, and so is what a list saves:

    saved per call = Σ over the called of τ × value / number called.

No draw, no inverse-propensity weight: the figure is exact for the customers the ranking puts
within each list's capacity. Truth columns are never model inputs; this module only reads them
to judge a ranking (the benchmark ``benchmarks/campaign.py`` and the proof's tests).
:class:`ChurnBefore` is the risk ranking's model at a month, trained as ``retain train`` would
have trained it then.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.targets import CHURN
from training.calibrate import fit_calibrator
from training.dataset import (
    DatasetError,
    as_inputs,
    dataset_at,
    embargoed_cutoffs,
    labelled_cutoffs,
)
from training.train import TrainConfig, fit_booster


def true_effect(frame: pd.DataFrame, horizon: int = 3) -> np.ndarray:
    """τ per row: the churn probability a call assigned at the cutoff removes (negative where
    it pushes the customer away)."""
    missing = [c for c in (CHURN.truth(horizon), CHURN.truth_called(horizon)) if c not in frame]
    if missing:
        raise ValueError(
            f"the feature file has no {', '.join(missing)}: the saved value of a ranking is "
            "known only on a synthetic bank generated with a campaign ([synthetic.campaign])"
        )
    uncalled = frame[CHURN.truth(horizon)].to_numpy(dtype="float64")
    return uncalled - frame[CHURN.truth_called(horizon)].to_numpy(dtype="float64")


def top_of_lists(score: np.ndarray, lists: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Which rows each list calls: its ``capacity`` (per row, the capacity of its list) highest
    scores; ties by position, so the same input always calls the same rows."""
    score, lists = np.asarray(score, dtype="float64"), pd.factorize(np.asarray(lists))[0]
    order = np.lexsort((np.arange(len(score)), -score, lists))
    ordered = lists[order]
    starts = np.r_[0, np.flatnonzero(ordered[1:] != ordered[:-1]) + 1] if len(order) else []
    counts = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, counts)
    chosen = np.zeros(len(score), dtype=bool)
    chosen[order] = rank < np.asarray(capacity)[order]
    return chosen


def saved_by(
    score: np.ndarray,
    tau: np.ndarray,
    value: np.ndarray,
    lists: np.ndarray,
    capacity: np.ndarray,
) -> dict[str, float]:
    """What calling the top of each list by ``score`` saves: contribution per call, churn
    points per call, and the number of calls."""
    chosen = top_of_lists(score, lists, capacity)
    calls = int(chosen.sum())
    if calls == 0:
        return {"saved_per_call": float("nan"), "points_per_call": float("nan"), "calls": 0}
    return {
        "saved_per_call": float((tau[chosen] * value[chosen]).sum() / calls),
        "points_per_call": float(100 * tau[chosen].mean()),
        "calls": calls,
    }


class ChurnBefore:
    """The churn model a bank would have had at ``month``: trained on the labelled cutoffs at
    least ``horizon`` months before it (embargoed validation, as ``retain train`` does),
    calibrated; ``predict(frame)`` → p_churn."""

    def __init__(self, frame: pd.DataFrame, month, horizon: int, config: TrainConfig) -> None:
        cutoffs = labelled_cutoffs(frame, CHURN.label)
        train, valid = embargoed_cutoffs([c for c in cutoffs if c < month], month, horizon)
        if not train:
            raise DatasetError(
                f"no labelled cutoff {horizon} months before the validation months before "
                f"{month}: build features for earlier cutoffs"
            )
        ds = dataset_at(frame, CHURN.label, train, valid, valid[-1])
        self.inputs = list(ds.inputs)
        self.booster = fit_booster(ds.train.x, ds.train.y, ds.valid.x, ds.valid.y, config)
        months = ds.valid.rows["cutoff"].astype(str).to_numpy()
        raw = self.booster.predict(ds.valid.x)
        self.calibrator, _ = fit_calibrator(raw, ds.valid.y, months=months)
        self.train_cutoffs, self.valid_cutoffs = list(train), list(valid)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.calibrator.apply(self.booster.predict(as_inputs(frame, self.inputs)))
