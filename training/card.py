"""The model card: one markdown page that tells a model-risk reviewer what a model is for, what it
was trained on, how well it does against baselines and the truth, and where it must not be used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from features.targets import CHURN, UPGRADE, Target, cross_sell, from_model
from training.compare import AUC_KEYS, EQUAL, in_words, metric_label, number, position

FLAT = "flat"  # a model trained on a flat table (training/flat.py), not one of the targets
MAX_CUTOFFS_LISTED = 4
# Keys that describe the ceiling, not the model: shown on their own line, not as table rows.
ORACLE_KEYS = ("oracle_auc", "auc_to_oracle")
BASELINE_LABELS = {"lightgbm_defaults": "LightGBM defaults"}


@dataclass(frozen=True)
class SplitSummary:
    """One out-of-time split: its name, cutoffs, row count and positive rate (0–1)."""

    name: str
    rows: int
    cutoffs: tuple[str, ...]
    positive_rate: float


@dataclass(frozen=True)
class ModelCardInfo:
    """Everything the card says; built once by the training run.

    ``test_metrics`` and each ``baseline_metrics[name]`` map metric names (as
    ``training.evaluate`` names them: ``test_auc``, ``pr_auc``, ``ece``, ``lift_at_10``,
    ``capture_at_10``...) to values. The oracle AUC — the AUC of the true probabilities, known
    only on a synthetic bank — is taken from ``oracle_auc`` or else from ``test_metrics``;
    ``auc_to_oracle`` likewise, or else computed. ``limits=None`` means ``default_limits(task)``.
    """

    model_name: str
    task: str
    purpose: str
    splits: tuple[SplitSummary, ...]
    data_fingerprint: str
    label_definition: str
    features: tuple[str, ...]
    catalog_version: str
    params: Mapping[str, object]
    calibration: str
    test_metrics: Mapping[str, float]
    baseline_metrics: Mapping[str, Mapping[str, float]]
    git_sha: str
    run_id: str
    created: str
    data_source: str | None = None
    oracle_auc: float | None = None
    auc_to_oracle: float | None = None
    limits: tuple[str, ...] | None = None
    sensitive_features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_task(self.task)


def check_task(task: str) -> str:
    """Return ``task`` if it is flat or a target's model name (churn, upgrade,
    cross_sell_<product>); else raise."""
    if task == FLAT or from_model(task) is not None:
        return task
    raise ValueError(
        f"unknown task {task!r}: use one of {CHURN.model}, {UPGRADE.model}, {FLAT} or "
        f"{cross_sell('<product>').model} (e.g. {cross_sell('fund').model})"
    )


def _target(task: str) -> Target | None:
    """The target a task is the model of (None for flat)."""
    return from_model(check_task(task))


def default_limits(task: str, synthetic: bool = True) -> list[str]:
    """Caveats every card of this task carries unless the run states its own.

    Parameters
    ----------
    task : churn, upgrade, flat or cross_sell_<product>.
    synthetic : whether the model was trained on the embedded synthetic bank.
    """
    check_task(task)
    limits = []
    if synthetic:
        limits.append(
            "Trained and tested on the embedded synthetic bank: the metrics show the method "
            "works, not how the model will do on a real bank's customers. Retrain and re-validate "
            "on the bank's own data before any use."
        )
    if task == FLAT:
        limits.append(
            "Trained on one flat snapshot table with cross-validation: there is no out-of-time "
            "test, so the metrics are optimistic if customers' behaviour drifts."
        )
    else:
        limits.append(
            "Validated out of time only on the last cutoffs (one for validation, one for test): "
            "performance in other seasons or market regimes has not been measured."
        )
    limits += _task_limits(task)
    limits += [
        "Scores rank customers for relationship managers' outreach. Not for credit, pricing, "
        "collections or any decision with legal or similar effect on the customer.",
        "Sensitive attributes (age, gender, region) may be model inputs but are never shown as "
        "reasons; check contact rates and outcomes by group before the lists are used.",
        "Reasons are SHAP contributions: they explain the model's score, not what causes the "
        "customer's behaviour.",
        "Probabilities are calibrated to the base rate of the test period; when the base rate "
        "moves, recalibrate. Monitor input drift (PSI per feature), AUC and ECE every month and "
        "retrain when they leave the limits agreed with model risk.",
    ]
    return limits


def model_card(info: ModelCardInfo) -> str:
    """Render the card as markdown: Purpose, Data, Definitions, Features, Training, Results,
    Limits and intended use, Provenance."""
    sections = [
        f"# Model card — {info.model_name}",
        _purpose(info),
        _data(info),
        _definitions(info),
        _features(info),
        _training(info),
        _results(info),
        _limits(info),
        _provenance(info),
    ]
    return "\n\n".join(sections) + "\n"


# --- sections ----------------------------------------------------------------------------------


def _purpose(info: ModelCardInfo) -> str:
    return f"## Purpose\n\n{info.purpose.strip()}\n\n**Task:** `{info.task}`"


def _data(info: ModelCardInfo) -> str:
    lines = ["## Data", ""]
    if info.data_source:
        lines += [info.data_source.strip(), ""]
    lines += _table(
        ["split", "cutoffs", "rows", "positive rate"],
        [
            [split.name, _cutoffs(split.cutoffs), f"{split.rows:,}", _percent(split.positive_rate)]
            for split in info.splits
        ],
        numbers_from=2,
    )
    lines += ["", f"**Data fingerprint:** `{info.data_fingerprint}`"]
    return "\n".join(lines)


def _definitions(info: ModelCardInfo) -> str:
    rows = (
        "Rows are customers of one snapshot table, as given."
        if info.task == FLAT
        else "Rows are (customer, cutoff) pairs; features use only data dated on or before the "
        "cutoff, the label only the horizon after it."
    )
    return f"## Definitions\n\n**Label** (`{info.task}`): {info.label_definition.strip()}\n\n{rows}"


def _features(info: ModelCardInfo) -> str:
    lines = [
        "## Features",
        "",
        f"{len(info.features)} features from catalog version `{info.catalog_version}`:",
        "",
        ", ".join(f"`{name}`" for name in info.features) or "(none)",
    ]
    if info.sensitive_features:
        listed = ", ".join(f"`{name}`" for name in info.sensitive_features)
        lines += ["", f"Sensitive inputs, never shown as reasons: {listed}."]
    return "\n".join(lines)


def _training(info: ModelCardInfo) -> str:
    lines = ["## Training", "", f"**Calibration:** {info.calibration}", ""]
    lines += _table(
        ["parameter", "value"],
        [[f"`{key}`", _param(value)] for key, value in sorted(info.params.items())],
    )
    return "\n".join(lines)


def _results(info: ModelCardInfo) -> str:
    oracle_auc, auc_to_oracle = _oracle(info)
    metrics = [name for name in info.test_metrics if name not in ORACLE_KEYS]
    baselines = list(info.baseline_metrics)
    header = ["metric", "**model**", *map(_baseline_label, baselines)]
    if oracle_auc is not None:
        header.append("oracle (true probabilities)")
    header += [f"model − {_baseline_label(name)}" for name in baselines]
    rows = []
    for name in metrics:
        model_value = info.test_metrics[name]
        row = [metric_label(name), f"**{_format_metric(name, model_value)}**"]
        row += [_format_metric(name, info.baseline_metrics[b].get(name)) for b in baselines]
        if oracle_auc is not None:
            row.append(_format_metric(name, oracle_auc) if name in AUC_KEYS else "—")
        row += [
            _difference(name, model_value, info.baseline_metrics[b].get(name)) for b in baselines
        ]
        rows.append(row)
    scope = "Out-of-fold (cross-validation)" if info.task == FLAT else "Out-of-time test set"
    lines = [
        "## Results",
        "",
        f"{scope}; ↓ marks metrics where lower is better; a difference says whether the model "
        "is above or below the baseline.",
    ]
    lines += (
        ["", *_table(header, rows, numbers_from=1)]
        if rows
        else ["", "No test metrics were recorded."]
    )
    if rows and baselines:
        lines += ["", "**How the model compares** (better or worse; lower is better where ↓):", ""]
        for b in baselines:
            words = in_words(
                info.test_metrics,
                info.baseline_metrics[b],
                metrics,
                _baseline_label(b),
                _format_metric,
            )
            lines.append(f"- {words[:1].upper()}{words[1:]}.")
    if oracle_auc is not None:
        reach = f"; the model reaches {auc_to_oracle:.1%} of it" if auc_to_oracle else ""
        lines += [
            "",
            f"**Oracle AUC** (the true probabilities of the synthetic bank, the ceiling any model "
            f"can reach on these rows): {oracle_auc:.4f}{reach}.",
        ]
    return "\n".join(lines)


def _baseline_label(name: str) -> str:
    return BASELINE_LABELS.get(name, name.replace("_", " "))


def _limits(info: ModelCardInfo) -> str:
    limits = info.limits if info.limits is not None else default_limits(info.task)
    lines = ["## Limits and intended use", "", f"**Intended use:** {_intended_use(info.task)}", ""]
    lines += [f"- {limit}" for limit in limits]
    return "\n".join(lines)


def _provenance(info: ModelCardInfo) -> str:
    rows = [
        ["model", info.model_name],
        ["MLflow run", f"`{info.run_id}`"],
        ["git commit", f"`{info.git_sha}`"],
        ["created", info.created],
        ["data fingerprint", f"`{info.data_fingerprint}`"],
        ["feature catalog", f"version `{info.catalog_version}`"],
    ]
    return "\n".join(["## Provenance", "", *_table(["item", "value"], rows)])


# --- wording and numbers -----------------------------------------------------------------------


def _task_limits(task: str) -> list[str]:
    target = _target(task)
    if target == CHURN:
        return [
            "Customers whose assets are already leaving at the cutoff are not scored by the "
            "model: the lists flag them by rule. Churn includes silent attrition (assets fall "
            "below a share of their recent average); a changed definition needs retraining.",
        ]
    if target == UPGRADE:
        return ["Tier moves follow the configured tier ladder; a changed ladder needs retraining."]
    if target is not None:
        return [
            f"Predicts opening {target.product} among customers who do not hold it: a "
            "propensity, not a suitability assessment — product suitability and appropriateness "
            "checks still apply.",
        ]
    return []


def _intended_use(task: str) -> str:
    target = _target(task)
    if target is None or target == CHURN:  # a flat table is a churn table
        return (
            "rank eligible customers by risk of leaving so their relationship managers call first."
        )
    if target == UPGRADE:
        return "find customers likely to move up a tier, for relationship managers to grow."
    return f"rank customers who do not hold {target.product} by their propensity to open it."


def _oracle(info: ModelCardInfo) -> tuple[float | None, float | None]:
    oracle = number(info.oracle_auc)
    if oracle is None:
        oracle = number(info.test_metrics.get("oracle_auc"))
    if oracle is None:
        return None, None
    ratio = number(info.auc_to_oracle)
    if ratio is None:
        ratio = number(info.test_metrics.get("auc_to_oracle"))
    if ratio is None:
        auc = _model_auc(info.test_metrics)
        ratio = auc / oracle if auc is not None and oracle > 0 else None
    return oracle, ratio


def _model_auc(metrics: Mapping[str, float]) -> float | None:
    for key in AUC_KEYS:
        auc = number(metrics.get(key))
        if auc is not None:
            return auc
    return None


def _kind(name: str) -> str:
    if name.startswith("lift"):
        return "ratio"
    if re.search(r"capture|rate|precision|recall|share", name):
        return "percent"
    return "score"


def _format_metric(name: str, value: object) -> str:
    """Missing (not measured) is a dash; NaN (measured but undefined) is n/a."""
    if value is None:
        return "—"
    value = number(value)
    if value is None:
        return "n/a"
    kind = _kind(name)
    if kind == "ratio":
        return f"{value:.2f}×"
    if kind == "percent":
        return f"{value:.1%}"
    return f"{value:.4f}"


def _difference(name: str, model_value: object, baseline_value: object) -> str:
    """The model's value minus the baseline's, and whether it is above or below it."""
    model_value, baseline_value = number(model_value), number(baseline_value)
    if model_value is None or baseline_value is None:
        return "—"
    where = position(model_value, baseline_value)
    if where == EQUAL:
        return EQUAL
    delta = model_value - baseline_value
    kind = _kind(name)
    if kind == "percent":
        return f"{delta * 100:+.1f} pp {where}"
    if kind == "ratio":
        return f"{delta:+.2f}× {where}"
    return f"{delta:+.4f} {where}"


def _percent(value: float) -> str:
    value = number(value)
    return "n/a" if value is None else f"{value:.2%}"


def _cutoffs(cutoffs: Sequence[str]) -> str:
    if not cutoffs:
        return "—"
    if len(cutoffs) <= MAX_CUTOFFS_LISTED:
        return ", ".join(str(c) for c in cutoffs)
    return f"{cutoffs[0]} … {cutoffs[-1]} ({len(cutoffs)} cutoffs)"


def _param(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:g}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], numbers_from: int | None = None
) -> list[str]:
    """Markdown table; columns from ``numbers_from`` on are right-aligned."""
    right = len(header) if numbers_from is None else numbers_from
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---:" if i >= right else "---" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(_cell(str(c)) for c in row) + " |" for row in rows]
    return lines
