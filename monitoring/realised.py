"""Performance once labels mature: realised AUC, ECE, lift and value captured of a scored cutoff.

A cutoff's churn label looks ``horizon`` months ahead, so it is known once the warehouse holds
the month ``cutoff + horizon``. The labels are built by the feature code itself
(``features.materialize.write_features`` → ``label_churn``): one definition of churn for
training and monitoring. A matured cutoff's labels never change as months are added, so they
are kept next to its scores (``labels.parquet``, with the churn definition in its metadata) and
built again only when the definition changes.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.metrics import roc_auc_score

from features.atomic import atomic_file
from features.config import BankConfig
from features.engine import open_warehouse
from features.materialize import write_features
from features.targets import CHURN
from training.evaluate import ece, lift_and_capture, value_captured

LABEL = CHURN.label
LABELS_FILE = "labels.parquet"
DEFINITION_KEY = b"retain.churn_definition"


def add_months(day: date, months: int) -> date:
    return (pd.Timestamp(day) + pd.offsets.MonthEnd(months)).date()


def last_month(warehouse: str | Path) -> date:
    """The last month the warehouse holds balances for."""
    _, wh = open_warehouse(warehouse)
    return pd.Timestamp(wh.balances.month.max().execute()).date()


def matured(cutoff: date, last: date, config: BankConfig) -> bool:
    """Whether the churn horizon after ``cutoff`` has ended by ``last``."""
    return add_months(cutoff, config.churn.horizon_months) <= last


def churn_labels(
    warehouse: str | Path, cutoff: date, config: BankConfig, cache: Path | None = None
) -> pd.DataFrame:
    """``customer_id`` and ``label_churn`` at ``cutoff`` (null where the customer is not
    eligible), built with the feature code; read from ``cache`` when it holds the same
    churn definition, written there otherwise."""
    definition = json.dumps(config.churn.model_dump(), sort_keys=True).encode()
    if cache is not None and cache.is_file():
        stored = pq.read_schema(cache).metadata or {}
        if stored.get(DEFINITION_KEY) == definition:
            return pd.read_parquet(cache)
    with tempfile.TemporaryDirectory(prefix="retain-labels-") as tmp:
        path = Path(tmp) / "features.parquet"
        write_features(warehouse, [cutoff], path, config)
        labels = pd.read_parquet(path, columns=["customer_id", LABEL])
    if cache is not None:
        table = pa.Table.from_pandas(labels, preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), DEFINITION_KEY: definition}
        )
        with atomic_file(cache) as staging:
            pq.write_table(table, staging)
    return labels


def realised(y: np.ndarray, p: np.ndarray, value: np.ndarray | None = None) -> dict:
    """Realised figures of one cutoff on customers with a label: AUC (with its Hanley–McNeil
    standard error), ECE, churn rate, lift and capture at 10%, value captured at 10%."""
    y = np.asarray(y, dtype="int64")
    p = np.asarray(p, dtype="float64")
    positives, n = int(y.sum()), len(y)
    out: dict = {"rows": n, "churners": positives, "churn_rate": positives / n if n else None}
    if not 0 < positives < n:
        return out  # one class only: no AUC, no lift
    auc = float(roc_auc_score(y, p))
    out.update(
        {
            "auc": auc,
            "auc_se": hanley_mcneil_se(auc, positives, n - positives),
            "ece": ece(y, p),
            "mean_p": float(p.mean()),
            **{k: v for k, v in lift_and_capture(y, p).items() if k.endswith("_10")},
        }
    )
    if value is not None:
        out["value_captured_at_10"] = value_captured(y, p, value)
    return out


def hanley_mcneil_se(auc: float, positives: int, negatives: int) -> float:
    """Standard error of an AUC (Hanley & McNeil, 1982)."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    ) / (positives * negatives)
    return float(np.sqrt(max(variance, 0.0)))


def with_labels(scored: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """``scored`` with ``label_churn`` joined by customer id (ids compared as the bank has
    them; a scored customer the label build does not know gets no label)."""
    joined = scored.drop(columns=[LABEL], errors="ignore").merge(
        labels[["customer_id", LABEL]], on="customer_id", how="left"
    )
    return joined
