"""Champion and challenger: score both on the challenger's logged test rows, promote only if no
worse; or put any verified version back as champion (rollback).

Everything comes from the registry: the models and the rows they are compared on
(``evaluation/test_rows.parquet`` of the challenger's run), never a local file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from models.artifact import VerifiedModel, load_verified
from models.registry import CHALLENGER, CHAMPION, EVALUATION_ROWS, RegistryError, set_champion
from models.uplift import UPLIFT, load_uplift
from training.compare import in_words, verdicts
from training.evaluate import evaluate
from training.uplift_run import GATE_BASELINE, GATE_GAIN, GATE_METRIC, beats_risk

MAX_AUC_LOSS = 0.002
MAX_ECE_GAIN = 0.01
# what promotion reports of both models (the gate decides on auc and ece): the card's figures
REPORTED = ("auc", "pr_auc", "ece", "brier", "lift_at_10", "capture_at_10", "value_captured_at_10")
VALUE = "contribution_12m"  # what a lost customer is worth, for value captured


def evaluation_rows(model: VerifiedModel) -> pd.DataFrame:
    """The test rows logged with ``model``'s run, downloaded from the store."""
    run_id = MlflowClient().get_model_version(model.name, model.version).run_id
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=EVALUATION_ROWS, dst_path=tmp
            )
            return pd.read_parquet(Path(path))
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        raise RegistryError(
            f"{model.name} v{model.version} (run {run_id}) has no {EVALUATION_ROWS} to compare "
            "on: retrain it with this version of retain, or promote it with --force"
        ) from exc


def no_worse(challenger: dict, champion: dict) -> tuple[bool, float, float]:
    """The gate: AUC not worse by more than 0.002 and ECE not worse by more than 0.01."""
    auc_change = challenger["auc"] - champion["auc"]
    ece_change = challenger["ece"] - champion["ece"]
    passes = auc_change >= -MAX_AUC_LOSS - 1e-12 and ece_change <= MAX_ECE_GAIN + 1e-12
    return passes, auc_change, ece_change


def measure(model: VerifiedModel, rows: pd.DataFrame, label: str) -> dict:
    """Every figure the model card reports of ``model`` on ``rows`` (``auc`` is ROC AUC; value
    captured where the rows hold each customer's contribution)."""
    missing = [f for f in model.features if f not in rows.columns]
    if missing:
        raise RegistryError(
            f"{model.name} v{model.version} needs {len(missing)} inputs the test rows lack, "
            f"e.g. {missing[:5]}: compare it with --force or roll back with --version"
        )
    y = rows[label].to_numpy(dtype=int)
    p = model.predict(rows)
    value = rows[VALUE].to_numpy(dtype="float64") if VALUE in rows else None
    figures = evaluate(y, p, value=value)
    figures["auc"] = figures.pop("test_auc")
    return {"version": model.version, **{k: figures[k] for k in REPORTED if k in figures}}


def compared(measured: dict[str, dict], role: str, other: str) -> dict:
    """``measured`` (role → figures) with how ``role`` compares with ``other`` on every
    figure: ``verdicts`` (metric → better / worse / equal) and ``in_words``."""
    mine, theirs = measured[role], measured[other]
    whom = f"{other} v{theirs['version']}"
    return {
        "comparison": measured,
        "verdicts": verdicts(mine, theirs, REPORTED),
        "in_words": f"{role} v{mine['version']} " + in_words(mine, theirs, REPORTED, whom),
    }


def promote(name: str, force: bool = False) -> dict:
    """Move ``champion`` to the challenger if its AUC is not worse by more than 0.002 and its
    ECE not worse by more than 0.01 on the challenger's test rows (or if ``force``); the
    uplift model by its own gate (:func:`promote_uplift`)."""
    if name == UPLIFT:
        return promote_uplift(force)
    challenger = load_verified(name, CHALLENGER)
    try:
        champion = load_verified(name, CHAMPION)
    except RegistryError:
        champion = None
    decision = {"model": name, "challenger": challenger.version}
    if champion is None or champion.version == challenger.version:
        reason = "no champion yet" if champion is None else "already champion"
        if champion is None:
            set_champion(name, challenger.version, reason)
        return {**decision, "champion": challenger.version, "promoted": True, "reason": reason}
    label = challenger.metadata["label"]
    rows = evaluation_rows(challenger)
    rows = rows[rows[label].notna()]
    roles = {"challenger": challenger, "champion": champion}
    measured = {role: measure(model, rows, label) for role, model in roles.items()}
    passes, auc_change, ece_change = no_worse(measured["challenger"], measured["champion"])
    promoted = passes or force
    reason = (
        "no worse than the champion"
        if passes
        else (
            f"worse than the champion (AUC {auc_change:+.4f}, ECE {ece_change:+.4f})"
            + (" — promoted anyway (--force)" if force else "")
        )
    )
    if promoted:
        set_champion(name, challenger.version, reason)
    return {
        **decision,
        "champion": challenger.version if promoted else champion.version,
        "promoted": promoted,
        "reason": reason,
        **rows_described(rows),
        **compared(measured, "challenger", "champion"),
    }


def promote_uplift(force: bool = False) -> dict:
    """Make the uplift challenger champion only if, on its run's held-out randomised months, the
    lists it ranks save more per call than the risk ranking's on the same rows — the paired
    bootstrap interval of the gain above 0, and the Qini's above 0
    (``training.uplift_run.beats_risk``) — or if
    ``force``. Otherwise the champion stays as it was: without an uplift champion the lists rank
    by risk."""
    challenger = load_uplift(alias=CHALLENGER)  # hashes checked: never a model that fails them
    client = MlflowClient()
    run_id = client.get_model_version(UPLIFT, challenger.version).run_id
    figures = client.get_run(run_id).data.metrics
    if f"{GATE_GAIN}_low" not in figures:
        raise RegistryError(
            f"{UPLIFT} v{challenger.version} (run {run_id}) logged no {GATE_GAIN}_low to decide "
            "on: retrain it with this version of retain, or promote it with --force"
        )
    passes = beats_risk(figures)
    gain = (
        f"{figures[GATE_GAIN]:+,.0f} per call against the risk ranking (95% "
        f"{figures[f'{GATE_GAIN}_low']:+,.0f} … {figures[f'{GATE_GAIN}_high']:+,.0f}), "
        f"Qini {figures.get('qini', float('nan')):.4f} (95% "
        f"{figures.get('qini_low', float('nan')):.4f} … "
        f"{figures.get('qini_high', float('nan')):.4f})"
    )
    if passes:
        reason = f"beats the risk ranking: {gain}"
    else:
        reason = f"does not beat the risk ranking: {gain}" + (
            " — promoted anyway (--force)" if force else " — the lists stay as they are"
        )
    if passes or force:
        set_champion(UPLIFT, challenger.version, reason)
    gate = {
        k: figures[k]
        for k in (GATE_METRIC, GATE_BASELINE, GATE_GAIN, f"{GATE_GAIN}_low", "qini", "qini_low")
        if k in figures
    }
    return {
        "model": UPLIFT,
        "challenger": challenger.version,
        "champion": challenger.version if passes or force else _champion_version(UPLIFT),
        "promoted": passes or force,
        "reason": reason,
        "gate": gate,
    }


def _champion_version(name: str) -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except mlflow.exceptions.MlflowException:
        return None


def rows_described(rows: pd.DataFrame) -> dict:
    """How many rows two models were compared on, and their (last) test cutoff."""
    cutoffs = sorted(str(c) for c in rows["cutoff"].unique()) if "cutoff" in rows else []
    return {"rows": len(rows), "test_cutoff": cutoffs[-1] if cutoffs else None}


def rollback(name: str, version: str) -> dict:
    """Make ``version`` champion without the gate — after its hashes are checked, so the
    champion is always a model that loads — and measure it beside the champion it replaces,
    on the test rows of the newer of the two (the latest test period); a comparison that
    cannot be made is noted, never in the way of the rollback."""
    target = load_verified(name, version=str(version))
    try:
        before = load_verified(name, CHAMPION)
    except RegistryError:
        before = None
    replaced = before.version if before else None
    change = set_champion(name, target.version, f"set to version {target.version} (--version)")
    if replaced is None:
        reason = f"version {target.version} is champion (there was none)"
    elif replaced == target.version:
        reason = f"version {target.version} was already champion"
    else:
        reason = f"version {target.version} is champion, replacing version {replaced}"
    decision = {
        "model": name,
        "champion": target.version,
        "previous": replaced,
        "promoted": True,
        "reason": reason,
        "by": change["by"],
        "at": change["at"],
    }
    if before is None or replaced == target.version:
        return decision
    try:
        return {**decision, **side_by_side(target, before)}
    except RegistryError as exc:
        return {**decision, "comparison_note": f"not compared: {exc}"}


def side_by_side(champion: VerifiedModel, replaced: VerifiedModel) -> dict:
    """The new champion and the version it replaced, measured on the test rows of the newer."""
    newer = max(champion, replaced, key=lambda m: int(m.version))
    label = newer.metadata["label"]
    rows = evaluation_rows(newer)
    rows = rows[rows[label].notna()]
    measured = {
        "champion": measure(champion, rows, label),
        "replaced": measure(replaced, rows, label),
    }
    return {
        **rows_described(rows),
        "rows_of": newer.version,
        **compared(measured, "champion", "replaced"),
    }
