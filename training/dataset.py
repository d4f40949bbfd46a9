"""From a feature file to model-ready splits: out of time, embargoed, catalog inputs only.

The last cutoff whose label is complete is the test set. A label looks ``h`` months ahead, so
a row whose label window (c, c + h] overlaps the test window would teach the model the very
exits it is tested on (docs/design.md §5, the embargo): validation is the latest cutoff ≤ test − h,
training every cutoff ≤ validation − h — what a bank has on the day it scores. Never a random
split across time. Inputs are the catalog's features; ids, the cutoff, labels, context and
``truth_*`` columns never are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.catalog import feature_names
from features.targets import LABEL_PREFIX, TRUTH_PREFIX

FORBIDDEN_PREFIXES = (LABEL_PREFIX, TRUTH_PREFIX)
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
            },
            "hash": f"{digest:016x}",
        }


def feature_file(path: Path) -> Path:
    """``path``, when it is a parquet file (its footer read: the commands check it before
    loading what trains); else the :class:`DatasetError` that says so."""
    if not Path(path).is_file():
        raise DatasetError(f"feature file {path} does not exist; build it with `retain features`")
    try:
        pq.read_metadata(path)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from exc
    return Path(path)


def read_features(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(feature_file(path))
    except (pa.ArrowException, OSError) as exc:  # a footer intact, pages cut short
        raise _unreadable(path, exc) from exc


def _unreadable(path: Path, exc: Exception) -> DatasetError:
    return DatasetError(
        f"feature file {path} cannot be read as parquet ({exc}); build it with `retain features`"
    )


def products_in(frame: pd.DataFrame) -> list[str]:
    """The product codes a feature file was built with (one ``balance_<product>`` each)."""
    return [c.removeprefix("balance_") for c in frame.columns if c.startswith("balance_")]


def model_inputs(frame: pd.DataFrame) -> list[str]:
    """The catalog features present in ``frame``, as numbers (never ids, labels or truth)."""
    names = [c for c in feature_names(products_in(frame)) if c in frame.columns]
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
# validation months pooled for early stopping and calibration: calibration fitted on one
# month's ~100-300 churners did not hold out of time (CBPE 0.02-0.04 off the realised AUC)
VALIDATION_MONTHS = 2


def months_between(earlier, later) -> int:
    earlier, later = pd.Timestamp(earlier), pd.Timestamp(later)
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def embargoed_cutoffs(
    cutoffs: list, test, horizon: int, valid_months: int = VALIDATION_MONTHS
) -> tuple[list, list]:
    """(training cutoffs, validation cutoffs) for ``test`` with ``horizon``-month embargoes:
    validation the latest ``valid_months`` cutoffs ≤ test − h (early stopping and calibration
    pool them: one month of a bank holds a few hundred churners), training every cutoff ≤ the
    first validation cutoff − h."""
    before = sorted(c for c in cutoffs if months_between(c, test) >= horizon)
    if not before:
        return [], []
    valid = before[-valid_months:]
    return [c for c in cutoffs if months_between(c, valid[0]) >= horizon], valid


def split_out_of_time(frame: pd.DataFrame, label: str, horizon: int) -> Dataset:
    """Train / validation / test by cutoff with the embargo, on rows where ``label`` is known."""
    cutoffs = labelled_cutoffs(frame, label)
    test = cutoffs[-1] if cutoffs else None
    train, valid = embargoed_cutoffs(cutoffs, test, horizon) if cutoffs else ([], [])
    if not train:
        raise DatasetError(
            f"{label}: {len(cutoffs)} cutoff(s) with complete labels; out-of-time training with "
            f"a {horizon}-month embargo needs training cutoffs ≤ validation − {horizon} months "
            f"and validation ≤ test − {horizon} months (at least {2 * horizon + 1} consecutive "
            f"monthly cutoffs, {2 * horizon + VALIDATION_MONTHS} to pool {VALIDATION_MONTHS} "
            "validation months) — build features for more cutoffs"
        )
    return dataset_at(frame, label, train, valid, test)


def labelled_cutoffs(frame: pd.DataFrame, label: str) -> list:
    """The cutoffs where ``label`` is known; a label the file lacks is named with those it has."""
    if label not in frame.columns:
        labels = sorted(c for c in frame.columns if c.startswith(LABEL_PREFIX))
        raise DatasetError(f"no column {label!r} in the feature file; it has {labels}")
    return sorted(frame.loc[frame[label].notna(), "cutoff"].unique())


def dataset_at(frame: pd.DataFrame, label: str, train: list, valid, test) -> Dataset:
    """Train on the ``train`` cutoffs, stop and calibrate on ``valid`` (a cutoff or a list),
    test on ``test``."""
    valid = list(valid) if isinstance(valid, list | tuple) else [valid]
    rows = frame[frame[label].notna()]
    inputs = model_inputs(frame)
    dataset = Dataset(
        label=label,
        inputs=tuple(inputs),
        train=_split(rows, label, inputs, list(train)),
        valid=_split(rows, label, inputs, valid),
        test=_split(rows, label, inputs, [test]),
    )
    for name, part in (
        ("train", dataset.train),
        ("validation", dataset.valid),
        ("test", dataset.test),
    ):
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
    from sklearn.metrics import roc_auc_score  # 2 s to import: not at the commands' checks

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
