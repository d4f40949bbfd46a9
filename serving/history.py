"""retain's own assignments back into the warehouse, as the history the uplift model learns
from (docs/design.md §14): ``assignments.parquet`` of a scored month → a part of the warehouse's
optional ``list_assignments`` table.

Only the randomised rows go back (0 < ``p_treat`` < 1: the ranked places with their control
draw, the customers below the cut with their exploration draw); the already leaving (called by
rule) and a list without draws teach nothing about the effect of a call. A cutoff the table
holds already is never added twice.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.atomic import atomic_file

TABLE = "list_assignments"
COLUMNS = ("customer_id", "cutoff", "list_id", "group", "p_treat", "rank")


class HistoryError(ValueError):
    """Assignments that cannot go back into the warehouse (the message says why)."""


def randomised(assignments: pd.DataFrame) -> pd.DataFrame:
    """The rows of an assignment whose call was drawn: 0 < p_treat < 1."""
    drawn = assignments[(assignments["p_treat"] > 0) & (assignments["p_treat"] < 1)]
    return drawn[list(COLUMNS)].reset_index(drop=True)


def export_assignments(scores: Path, warehouse: Path) -> tuple[Path | None, int]:
    """Append the randomised assignments of the scored month in ``scores`` (a `retain score`
    output) to ``warehouse``'s ``list_assignments``; return the part written (None when the
    cutoff is there already or nothing was drawn) and its rows."""
    source = Path(scores) / "assignments.parquet"
    if not source.is_file():
        raise HistoryError(f"{scores} has no assignments.parquet (retain score writes it)")
    rows = randomised(pd.read_parquet(source))
    if rows.empty:
        return None, 0
    folder = Path(warehouse) / TABLE
    cutoffs = {str(c) for c in rows["cutoff"].unique()}
    if folder.is_dir() and any(folder.glob("*.parquet")):
        held = pd.read_parquet(folder, columns=["cutoff"])["cutoff"].astype(str).unique()
        if cutoffs & set(held):
            return None, 0
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"part-retain-{'-'.join(sorted(cutoffs))}.parquet"
    with atomic_file(part) as tmp:
        rows.to_parquet(tmp, index=False)
    return part, len(rows)
