"""`retain train --task uplift`: learn whom a call saves from the bank's randomised lists, choose
among the T-, X-, DR-, shift and R-learners on held-out later months, compare with the risk
ranking on the same rows, and log and register the model as ``uplift`` (docs/design.md §14).

The fit (:func:`fit_uplift`) is pure; :func:`log_uplift_run` is the MLflow edge. The learner
is chosen on the earlier held-out month and every figure is measured on the later one's
randomised rows (:func:`choice_months`), each row's effect estimated doubly robustly
(the known ``p_treat`` and outcome models fitted on the training months,
``training.uplift_metrics.dr_effect``):

- ``qini`` and ``auuc`` of τ̂ (with 95% bootstrap intervals);
- ``uplift_at_k``: churn points saved per call in the top share ``k`` (the share of listable
  customers the lists called);
- ``policy_value``: contribution saved per call by calling the top ``k`` by saved value
  (τ̂ × contribution) — against ``risk_policy_value``, the top ``k`` by expected loss (p_churn
  × contribution) on the same rows;
- ``policy_gain``: the difference, with a paired bootstrap interval (both rankings on the same
  resampled rows). The gate (``training.promote``) promotes the uplift model only when the
  interval's lower end is above 0: a model that does not beat the risk ranking beyond the noise
  of its held-out months leaves the lists ranked by risk.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np

from features.config import BankConfig
from models.provenance import code_commit
from models.uplift import UpliftArtifact, log_uplift
from training.uplift_data import UpliftSplit, check_history, split_uplift, uplift_rows
from training.uplift_learners import LEARNERS, Rows, fit_t
from training.uplift_metrics import (
    auuc,
    bootstrap,
    dr_effect,
    ipw_effect,
    policy_value,
    qini,
    uplift_at,
)
from training.uplift_plots import plot_qini, plot_saved_value

EXPERIMENT_RUN = "train uplift"
GATE_METRIC, GATE_BASELINE = "policy_value", "risk_policy_value"
GATE_GAIN = "policy_gain"  # policy value − the risk ranking's, paired


@dataclass(frozen=True)
class FittedUplift:
    split: UpliftSplit
    history: dict
    chosen: UpliftArtifact
    effects: dict[str, np.ndarray]  # τ̂ on the measured rows, by learner
    figures: dict[str, dict[str, float]]  # measures on the measured rows, by learner
    risk: np.ndarray  # expected loss of the measured rows (the risk ranking)
    share: float
    measured: Rows  # the held-out rows the figures and the gate read
    chosen_on: tuple[str, ...]  # the held-out months the learner was chosen on (one: none)

    @property
    def measured_on(self) -> list[str]:
        """The held-out months the figures and the gate read."""
        return sorted(set(self.measured.cutoff))


def measures(
    rows: Rows, tau: np.ndarray, risk: np.ndarray, share: float, psi: np.ndarray | None = None
) -> dict[str, float]:
    """Every figure of a ranking τ̂ on randomised rows, with bootstrap intervals; ``psi`` the
    rows' effect terms (doubly robust, :func:`training.uplift_metrics.dr_effect`), else IPW."""
    y, t, e, v = rows.y, rows.treated, rows.p_treat, rows.value
    psi = ipw_effect(y, t, e) if psi is None else psi

    def value_of(i, score):
        return policy_value(score[i], y[i], t[i], e[i], v[i], share, psi[i])

    everyone = np.arange(len(y))
    out = {
        "qini": qini(tau, y, t, e, psi),
        "auuc": auuc(tau, y, t, e, psi),
        "uplift_at_k": uplift_at(tau, y, t, e, share, psi),
        GATE_METRIC: value_of(everyone, tau * v),
        GATE_BASELINE: value_of(everyone, risk),
        "random_policy_value": policy_value(np.zeros(len(y)), y, t, e, v, 1.0, psi),
    }
    for name, fn in (("qini", qini), ("auuc", auuc)):
        out[f"{name}_low"], out[f"{name}_high"] = bootstrap(
            lambda i, f=fn: f(tau[i], y[i], t[i], e[i], psi[i]), len(y)
        )
    low, high = bootstrap(lambda i: value_of(i, tau * v), len(y))
    out[f"{GATE_METRIC}_low"], out[f"{GATE_METRIC}_high"] = low, high
    out[GATE_GAIN] = out[GATE_METRIC] - out[GATE_BASELINE]
    out[f"{GATE_GAIN}_low"], out[f"{GATE_GAIN}_high"] = bootstrap(
        lambda i: value_of(i, tau * v) - value_of(i, risk), len(y)
    )
    return out


def beats_risk(figures: dict[str, float]) -> bool:
    """The gate: on the same held-out randomised rows the uplift ranking saves more per call
    than the risk ranking beyond the noise of those rows (the paired interval of the gain above
    0), and it is shown to rank the effect at all (the Qini's interval above 0).

    The gain alone is not enough: it weighs each row's effect term by a heavy-tailed
    contribution, so in most draws the risk ranking's few large churners happen to be called
    and its value looks poor, the rare draw that holds them back is not in the sample, and the
    bootstrap cannot see it. On a bank whose calls changed nothing the gain's interval alone
    passed 5 of 20 draws (benchmarks/gate_null.py)."""
    gain = figures.get(f"{GATE_GAIN}_low", float("nan"))
    qini = figures.get("qini_low", float("nan"))
    return bool(np.isfinite(gain) and gain > 0 and np.isfinite(qini) and qini > 0)


def fit_uplift(
    rows: Rows, risk_of, bank: BankConfig, share: float, learners=tuple(LEARNERS)
) -> FittedUplift:
    """Check the history, split out of time, fit each learner on the training months; choose
    one on the earlier held-out month and measure every learner — the gate included — on the
    later one (:func:`choice_months`). ``risk_of(x)`` is the churn champion's probability (the
    risk ranking's)."""
    history = check_history(rows)
    split = split_uplift(rows, bank.churn.horizon_months)
    outcome = fit_t(split.train).boosters  # fitted on the training months only
    artifacts = {name: LEARNERS[name](split.train) for name in learners}
    chosen_on, measured_on = choice_months(split.held_out_cutoffs, len(artifacts))
    best = next(iter(artifacts))
    if chosen_on:
        rows_chosen_on = split.held_out.take(np.isin(split.held_out.cutoff, chosen_on))
        values = policy_values(artifacts, outcome, rows_chosen_on, share)
        best = max(values, key=values.get)
    held = split.held_out.take(np.isin(split.held_out.cutoff, measured_on))
    risk = risk_of(held.x) * held.value
    psi = effect_terms(outcome, held)
    effects = {name: artifact.effect(held.x) for name, artifact in artifacts.items()}
    figures = {name: measures(held, effects[name], risk, share, psi) for name in artifacts}
    return FittedUplift(
        split, history, artifacts[best], effects, figures, risk, share, held, chosen_on
    )


def choice_months(held_out: tuple[str, ...], learners: int) -> tuple[tuple, tuple]:
    """The held-out months a learner is chosen on, and those that measure it. Chosen and
    measured on the same rows, the best of several learners passes the gate on the best of
    their noise: on a bank whose calls changed nothing (benchmarks/gate_null.py, seeds 7–10,
    before this split) the gain's interval let uplift in 3 times in 8 that way. So with
    several learners the earlier half of the held-out months chooses and the later half
    measures; one learner has nothing to choose."""
    if learners < 2 or len(held_out) < 2:
        return (), held_out
    half = len(held_out) // 2
    return held_out[:half], held_out[half:]


def effect_terms(outcome: dict, rows: Rows) -> np.ndarray:
    """The rows' doubly robust effect terms, with the outcome models of the training months."""
    mu0, mu1 = (outcome[arm].predict(rows.x) for arm in ("control", "treated"))
    return dr_effect(rows.y, rows.treated, rows.p_treat, mu0, mu1)


def policy_values(artifacts: dict, outcome: dict, rows: Rows, share: float) -> dict:
    """Each learner's policy value on ``rows`` (point estimates: what the choice reads)."""
    psi = effect_terms(outcome, rows)
    args = (rows.y, rows.treated, rows.p_treat, rows.value, share, psi)
    return {
        name: policy_value(artifact.effect(rows.x) * rows.value, *args)
        for name, artifact in artifacts.items()
    }


def log_uplift_run(fitted: FittedUplift, source: str, tags: dict | None = None) -> dict:
    """Log the fit in a run of its own, draw the curves, write the card, register ``uplift``."""
    chosen = fitted.chosen.learner
    best = fitted.figures[chosen]
    with mlflow.start_run(run_name=EXPERIMENT_RUN) as run:
        mlflow.set_tags(
            {**(tags or {}), "model": "uplift", "task": "uplift", "git_sha": code_commit()}
        )
        mlflow.log_params(
            {
                "learner": chosen,
                "features_path": source,
                "train_cutoffs": ",".join(fitted.split.train_cutoffs),
                "held_out_cutoffs": ",".join(fitted.split.held_out_cutoffs),
                "chosen_on": ",".join(fitted.chosen_on),
                "share_called": round(fitted.share, 4),
                **{f"history_{k}": v for k, v in fitted.history.items()},
            }
        )
        mlflow.log_metrics({k: v for k, v in best.items() if np.isfinite(v)})
        for name, figures in fitted.figures.items():
            mlflow.log_metrics({f"{name}_{k}": v for k, v in figures.items() if np.isfinite(v)})
        with tempfile.TemporaryDirectory() as tmp:
            held = fitted.measured
            plot_qini(held, fitted.effects, Path(tmp) / "qini.png")
            plot_saved_value(held, fitted.effects, fitted.risk, Path(tmp) / "saved_value.png")
            mlflow.log_artifacts(tmp, "plots")
        mlflow.log_text(uplift_card(fitted), "model_card.md")
        mlflow.log_dict(fitted.figures, "uplift_figures.json")
        metadata = {"learner": chosen, "held_out_cutoffs": list(fitted.split.held_out_cutoffs)}
        artifact = UpliftArtifact(
            chosen, fitted.chosen.boosters, fitted.chosen.features, fitted.chosen.weight, metadata
        )
        logged = log_uplift(artifact, fitted.split.train.x.head(5))
    return {
        "model": "uplift",
        "version": logged.version,
        "run_id": run.info.run_id,
        "learner": chosen,
        "figures": fitted.figures,
        "history": fitted.history,
        "train_cutoffs": list(fitted.split.train_cutoffs),
        "held_out_cutoffs": list(fitted.split.held_out_cutoffs),
        "chosen_on": list(fitted.chosen_on),
        "measured_on": fitted.measured_on,
    }


def uplift_card(fitted: FittedUplift) -> str:
    """The model card: what it learned from, each learner's figures, the risk ranking's."""
    lines = [
        "# Model card: uplift (the effect of a retention call on churn)",
        "",
        f"Learned from {fitted.history['randomised_rows']:,} randomised customer-months over "
        f"{fitted.history['months']} months ({fitted.history['control_rows']:,} held back); "
        f"trained on {', '.join(fitted.split.train_cutoffs)}, measured on "
        f"{', '.join(fitted.measured_on)} (embargoed; each customer's effect "
        "estimated doubly robustly with the known probability of a call and outcome models of "
        f"the training months). Chosen learner: **{fitted.chosen.learner}**"
        + (
            f", chosen on {', '.join(fitted.chosen_on)} — a month the figures below do not read."
            if fitted.chosen_on
            else "."
        ),
        "",
        f"Average effect of a call in the would-be lists (control − treated churn): "
        f"{fitted.history['observed_effect']:+.2%} "
        f"({fitted.history['observed_effect_low']:+.2%} … "
        f"{fitted.history['observed_effect_high']:+.2%}).",
        "",
        "| learner | Qini (95% interval) | AUUC | saved per call, top "
        f"{fitted.share:.0%} | risk ranking, same rows |",
        "|---|---|---|---|---|",
    ]
    for name, f in fitted.figures.items():
        lines.append(
            f"| {name} | {f['qini']:.5f} ({f['qini_low']:.5f} – {f['qini_high']:.5f}) | "
            f"{f['auuc']:.5f} | {f['policy_value']:,.0f} ({f['policy_value_low']:,.0f} – "
            f"{f['policy_value_high']:,.0f}) | {f['risk_policy_value']:,.0f} |"
        )
    best = fitted.figures[fitted.chosen.learner]
    verdict = "beats" if beats_risk(best) else "does not beat"
    lines += [
        "",
        f"Against the risk ranking on the same rows, the chosen model saves "
        f"{best[GATE_GAIN]:+,.0f} per call (paired 95% interval {best[GATE_GAIN + '_low']:+,.0f}"
        f" – {best[GATE_GAIN + '_high']:+,.0f}) and its Qini's interval is "
        f"{best['qini_low']:.5f} – {best['qini_high']:.5f}: it **{verdict}** the risk ranking "
        "— the gate promotes it only when both intervals are above 0.",
    ]
    return "\n".join(lines) + "\n"


def train_uplift(
    features_path: Path,
    warehouse: str,
    bank: BankConfig,
    tags: dict | None = None,
    learners=tuple(LEARNERS),
) -> dict:
    """Fit, measure, log and register the uplift model from a feature file (every cutoff of
    the randomised history) and the warehouse's ``list_assignments``."""
    from features.sources.tables import read_location_table
    from models.artifact import load_verified
    from models.registry import CHAMPION
    from training.dataset import read_features

    features = read_features(features_path)
    assignments = read_location_table(
        warehouse, "list_assignments", ["customer_id", "cutoff", "group", "p_treat"]
    )
    rows = uplift_rows(features, assignments)
    churn = load_verified("churn", CHAMPION)
    called = assignments["group"].isin(["treated", "explore"]).mean()
    fitted = fit_uplift(rows, churn.predict, bank, float(called), learners)
    return log_uplift_run(fitted, str(features_path), tags)
