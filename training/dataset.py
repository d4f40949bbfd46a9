"""From a feature file to model-ready splits: out of time, inputs from the catalog only.

The last cutoff whose label is complete is the test set, the one before it validation, all
earlier cutoffs training — never a random split across time. Inputs are the catalog's
features; ids, the cutoff, labels and ``truth_*`` columns never are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.catalog import feature_names

FORBIDDEN_PREFIXES = ("label_", "truth_")
PERFECT_AUC = 0.999


class DatasetError(ValueError):
    """A feature file that cannot be trained on (with what to do about it)."""


class LeakageError(DatasetError):
    """Something in the inputs knows the answer."""


@dataclass(frozen=True)
class Split:
    """Inputs ``x``, label ``y`` and the full rows (for baselines, value and truth)."""

    x: pd.DataFrame
    y: np.ndarray
    rows: pd.DataFrame
    cutoffs: tuple[str, ...]

    @property
    def positive_rate(self) -> float:
        return float(self.y.mean()) if len(self.y) else float("nan")


@dataclass(frozen=True)
class Dataset:
    label: str
    inputs: tuple[str, ...]
    train: Split
    valid: Split
    test: Split

    def fingerprint(self) -> dict:
        """Rows, cutoffs and a hash of the training inputs and labels, for the model record."""
        digest = pd.util.hash_pandas_object(self.train.x, index=False).sum()
        digest = int(digest + int(self.train.y.sum())) & 0xFFFFFFFFFFFFFFFF
        return {
            "rows": {
                "train": len(self.train.y),
                "valid": len(self.valid.y),
                "test": len(self.test.y),
            },
            "cutoffs": {
                "train": list(self.train.cutoffs),
                "valid": list(self.valid.cutoffs),
                "test": list(self.test.cutoffs),
            },  # fmt: skip
            "hash": f"{digest:016x}",
        }


def read_features(path: Path) -> pd.DataFrame:
    if not Path(path).is_file():
        raise DatasetError(f"feature file {path} does not exist; build it with `retain features`")
    return pd.read_parquet(path)


def model_inputs(frame: pd.DataFrame) -> list[str]:
    """The catalog features present in ``frame``, as numbers (never ids, labels or truth)."""
    names = [c for c in feature_names() if c in frame.columns]
    if not names:
        raise DatasetError("the feature file has none of the catalog's features")
    bad = [c for c in names if c.startswith(FORBIDDEN_PREFIXES)]
    if bad:  # the catalog itself must never name a label or truth column
        raise LeakageError(f"inputs {bad} look like labels or truth columns")
    return names


def as_inputs(frame: pd.DataFrame, inputs: list[str]) -> pd.DataFrame:
    """Inputs as float64: booleans become 0/1, and any value may be missing at scoring time."""
    return frame[list(inputs)].astype("float64")


def _split(rows: pd.DataFrame, label: str, inputs: list[str], cutoffs: list) -> Split:
    part = rows[rows["cutoff"].isin(cutoffs)]
    return Split(
        x=as_inputs(part, inputs),
        y=part[label].to_numpy(dtype=np.int8),
        rows=part,
        cutoffs=tuple(str(c) for c in sorted(cutoffs)),
    )


# per split: calibration folds and a test AUC on fewer positives than this are noise
MIN_POSITIVES = 10


def split_out_of_time(frame: pd.DataFrame, label: str) -> Dataset:
    """Train / validation / test by cutoff, on rows where ``label`` is known."""
    if label not in frame.columns:
        labels = sorted(c for c in frame.columns if c.startswith("label_"))
        raise DatasetError(f"no column {label!r} in the feature file; it has {labels}")
    cutoffs = labelled_cutoffs(frame, label)
    if len(cutoffs) < 3:
        raise DatasetError(
            f"{label}: {len(cutoffs)} cutoff(s) with complete labels; out-of-time training needs "
            "at least 3 (train, validation, test) — build features for more cutoffs"
        )
    return dataset_at(frame, label, cutoffs[:-2], cutoffs[-2], cutoffs[-1])


def labelled_cutoffs(frame: pd.DataFrame, label: str) -> list:
    return sorted(frame.loc[frame[label].notna(), "cutoff"].unique())


def dataset_at(frame: pd.DataFrame, label: str, train: list, valid, test) -> Dataset:
    """Train on the ``train`` cutoffs, stop and calibrate on ``valid``, test on ``test``."""
    rows = frame[frame[label].notna()]
    inputs = model_inputs(frame)
    dataset = Dataset(
        label=label,
        inputs=tuple(inputs),
        train=_split(rows, label, inputs, list(train)),
        valid=_split(rows, label, inputs, [valid]),
        test=_split(rows, label, inputs, [test]),
    )
    for name, part in (("train", dataset.train), ("validation", dataset.valid),
                       ("test", dataset.test)):  # fmt: skip
        if len(np.unique(part.y)) < 2:
            raise DatasetError(f"{label}: the {name} cutoffs {part.cutoffs} hold a single class")
        if int(part.y.sum()) < MIN_POSITIVES:
            raise DatasetError(
                f"{label}: the {name} cutoffs {part.cutoffs} hold {int(part.y.sum())} positive(s); "
                f"at least {MIN_POSITIVES} are needed to stop, calibrate and test honestly"
            )
    return dataset


def refuse_perfect_predictors(x: pd.DataFrame, y: np.ndarray) -> None:
    """A two-valued input that alone separates the classes is a copied label, not a feature.

    Continuous inputs may legitimately separate a class (private banking is opened exactly
    when AUM crosses its threshold); a yes/no column that matches the label does not."""
    for column in x.columns:
        values = x[column].to_numpy(dtype="float64", na_value=np.nan)
        known = ~np.isnan(values)
        if known.sum() < 10 or len(np.unique(y[known])) < 2:
            continue
        if len(np.unique(values[known])) > 2:
            continue
        auc = roc_auc_score(y[known], values[known])
        if max(auc, 1 - auc) >= PERFECT_AUC:
            raise LeakageError(
                f"input {column!r} alone predicts the label with AUC {max(auc, 1 - auc):.4f}: "
                "it is the label or derived from it (leakage). Remove it from the feature file."
            )
