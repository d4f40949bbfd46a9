"""The scoring core: every model's score for every customer, the reasons, and the month's
answer per customer — pure functions over frames, no files, no registry.

``retain score`` (DuckDB or Spark workers) and the API call the same functions, so a number
is computed one way. The answer frame is what ``scores.parquet`` stores and what every surface
reads: scores, the already-leaving rule applied (p_churn = 1, band high, expected loss =
contribution), reasons, offers, actions, list groups and ``p_treat``. What a customer's own row
decides (:func:`answer_rows`, :func:`with_saved_value`, :func:`driver_evidence`) is computed
batch by batch; what compares customers — :func:`offers` against the month's averages, the
assignment and lists, :func:`reason_fidelity`'s top decile — over the whole bank.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalog import NO_DRIVER
from features.config import BankConfig, ListPolicy, RiskBands
from features.products import products_from_json
from features.targets import CHURN, ELIGIBLE_CHURN, holds_column, truth_column
from serving.champions import ModelSet
from serving.explain import TOP_K, Reasons, explain, inputs, reason_columns
from serving.lists import growth_listed, leaving_adjusted
from serving.offers import UPGRADE as TIER_UPGRADE
from serving.offers import Basis, basis_of, growth_offers, retention_offers

DEFAULT_BANDS = RiskBands()
OFFER_ROWS = 200_000  # customers whose offers are chosen together (10M at once took GBs)
# what the answer keeps of the feature row besides the scores (never a model input)
CONTEXT = (
    "rm_id",
    "outlet_id",
    "branch_id",
    "sub_branch_id",
    "tier",
    "pyramid_level",
    "do_not_contact",
    ELIGIBLE_CHURN,
    "leaving_now",
    "contribution_12m",
    "open_complaints",
    "maturing_30d",
    "maturing_product",
    "maturing_date",
)


def risk_band(p: np.ndarray, bands: RiskBands = DEFAULT_BANDS) -> np.ndarray:
    """Calibrated churn probability → "high", "medium" or "low" by the list policy's bands."""
    band = np.full(len(p), "low", dtype=object)
    band[p >= bands.medium] = "medium"
    band[p >= bands.high] = "high"
    return band


def score_frame(
    models: ModelSet, features: pd.DataFrame, bands: RiskBands = DEFAULT_BANDS
) -> pd.DataFrame:
    """Calibrated scores of every model for every row, next to the ids.

    The inputs become one float64 matrix once (booleans 0/1, missing NaN — what the model
    artifact's own ``predict`` builds), and every model reads its columns from it: for a
    single customer the conversions, not the trees, were most of the time."""
    names = list(dict.fromkeys(f for m in models.all() for f in m.features))
    x = inputs(features, names)
    column = {name: i for i, name in enumerate(names)}

    def predict(model) -> np.ndarray:
        index = [column[f] for f in model.features]
        return model.predict_inputs(x if index == list(range(len(names))) else x[:, index])

    out = {"customer_id": features["customer_id"].to_numpy()}
    for target, model in models.targets():
        out[target.score] = predict(model)
        if target == CHURN:
            out["risk_band"] = risk_band(out[target.score], bands)
    return pd.DataFrame(out)


def explain_churn(
    models: ModelSet, features: pd.DataFrame, scores: pd.DataFrame, above: float
) -> Reasons:
    """Top-3 actionable churn reasons for eligible customers with ``p_churn >= above`` and for
    customers already leaving (the list candidates)."""
    eligible = features[ELIGIBLE_CHURN].fillna(False).to_numpy(dtype=bool)
    leaving = features["leaving_now"].fillna(False).to_numpy(dtype=bool)
    rows = np.flatnonzero((eligible & (scores[CHURN.score].to_numpy() >= above)) | leaving)
    churn = models.churn
    products = products_from_json(churn.metadata.get("products", []))
    return explain(
        churn.booster, features, churn.metadata["features"], rows, TOP_K, products, actionable=True
    )


def growth_reason_columns(n: int, langs) -> dict[str, np.ndarray]:
    """Empty ``growth_reason_<k>_text_<lang>`` columns for ``n`` rows."""
    return {
        f"growth_reason_{r}_text_{lang}": np.full(n, None, dtype=object)
        for r in range(1, TOP_K + 1)
        for lang in langs
    }


def explain_growth(
    models: ModelSet, features: pd.DataFrame, offers: pd.Series, langs
) -> dict[str, np.ndarray]:
    """Reasons for growth offers from the offered model itself (the upgrade model for a tier
    upgrade, the product's cross-sell model for a product), in growth words (why the offer
    fits: ``serving.explain``, ``growth``): ``growth_reason_k_text_<lang>``."""
    columns = growth_reason_columns(len(features), langs)
    by_model = {TIER_UPGRADE: models.upgrade, **models.cross_sell}
    for offer, model in by_model.items():
        rows = np.flatnonzero(offers.to_numpy(dtype=object) == offer)
        if not len(rows):
            continue
        products = products_from_json(model.metadata.get("products", []))
        reasons = explain(
            model.booster, features, model.metadata["features"], rows, TOP_K, products, growth=True
        )
        for rank in range(TOP_K):
            for lang in langs:
                columns[f"growth_reason_{rank + 1}_text_{lang}"][rows] = reasons.texts(rank, lang)
    return columns


def holdings(features: pd.DataFrame, products: list[str]) -> pd.DataFrame:
    """Which products each customer holds at the cutoff (the feature build's ``holds_``
    columns: one definition of holding a product), one boolean column per product."""
    columns = {p: features[holds_column(p)].fillna(False).astype(bool) for p in products}
    return pd.DataFrame(columns, index=features.index)


def driver_evidence(features: pd.DataFrame, reasons: Reasons) -> np.ndarray | None:
    """Per row of ``features``: 1 when the customer's true churn driver is evidenced by one of
    their actionable reasons, 0 when it is not, -1 when there is no driver to find (none, or
    :data:`NO_DRIVER`); None without truth. Row by row, so batches can be put end to end."""
    driver_column = truth_column("churn_driver")
    if driver_column not in features:
        return None
    driver = features[driver_column].to_numpy(dtype=object)
    found = np.zeros(len(features), dtype=np.int8)
    found[reasons.rows] = reasons.evidence(driver[reasons.rows])
    unknown = pd.isna(driver) | (driver == NO_DRIVER)
    return np.where(unknown, np.int8(-1), found)


def reason_fidelity(scored: pd.DataFrame, evidence: np.ndarray | None) -> dict | None:
    """Among true churners in the top decile of p_churn (eligible customers), the share whose
    true churn driver is evidenced by one of their top-3 reasons (``evidence``:
    :func:`driver_evidence` of every row of ``scored``). Churners whose exit has no driver are
    left out; None without truth."""
    if evidence is None:
        return None
    eligible = scored[ELIGIBLE_CHURN].fillna(False).to_numpy(dtype=bool)
    p = scored[CHURN.score].to_numpy()
    threshold = np.quantile(p[eligible], 0.9) if eligible.any() else np.inf
    judged = eligible & (p >= threshold) & (evidence >= 0)
    total = int(judged.sum())
    hits = int((evidence[judged] == 1).sum())
    return {"reason_fidelity": hits / total if total else None, "fidelity_churners": total}


def answer_rows(
    features: pd.DataFrame, scores: pd.DataFrame, reasons: Reasons, config: BankConfig
) -> pd.DataFrame:
    """The part of the month's answer each customer's own row decides: ids and context, scores
    with the already-leaving rule applied, churn reasons. The offers (:func:`offers`, which
    compare a customer with the whole bank), masked names, the assignment and the growth
    reasons follow."""
    scored = pd.concat([scores, features[list(CONTEXT)].reset_index(drop=True)], axis=1)
    scored = leaving_adjusted(scored)
    return scored.assign(**reason_columns(reasons, len(scored), config.languages))


def offered_products(models: ModelSet, config: BankConfig) -> list[str]:
    """The products an offer can name: the configured ones with a cross-sell model."""
    return [p.product for p in config.products if p.product in models.cross_sell]


def offers(
    scored: pd.DataFrame,
    held: pd.DataFrame,
    values: dict[str, float],
    config: BankConfig,
    rows: int = OFFER_ROWS,
) -> pd.DataFrame:
    """Retention and growth offers with their actions of every row of ``scored`` (all the bank's
    customers: a product is offered against the month's average propensity, an upgrade by the
    tiers' median contributions — ``serving.offers.basis_of``); ``held``: :func:`holdings`,
    ``values``: ``serving.offers.product_values`` of the bank. Chosen ``rows`` customers at a
    time: what a choice compares is the bank's, the rest is each row's own."""
    basis = basis_of(scored, values)
    pieces = [
        _offers_of(
            scored.iloc[start : start + rows], held.iloc[start : start + rows], basis, config
        )
        for start in range(0, len(scored), rows)
    ] or [_offers_of(scored, held, basis, config)]
    # one column at a time from the pieces' values: the columns' types are then inferred from
    # the bank's values, as for one piece
    columns = {c: np.concatenate([p[c].to_numpy() for p in pieces]) for c in pieces[0].columns}
    return pd.DataFrame(columns, index=scored.index)


def _offers_of(scored, held, basis: Basis, config: BankConfig) -> pd.DataFrame:
    retention = retention_offers(scored, held, basis.values, config, basis)
    growth = growth_offers(scored, held, basis.values, config, basis).add_prefix("growth_")
    growth = growth.rename(
        columns={"growth_growth_offer": "growth_offer", "growth_value_added": "value_added"}
    )
    return pd.concat([retention, growth], axis=1)


def with_saved_value(
    scored: pd.DataFrame, models: ModelSet, features: pd.DataFrame, policy: ListPolicy
) -> pd.DataFrame:
    """With an uplift champion: each customer's ``uplift`` (τ̂, the churn probability a call
    removes) and ``saved_value = τ̂ × contribution − call cost`` (docs/design.md §14); else
    unchanged."""
    if models.uplift is None:
        return scored
    tau = models.uplift.effect(features)
    value = scored["contribution_12m"].clip(lower=0).to_numpy(dtype="float64")
    return scored.assign(uplift=tau, saved_value=tau * value - policy.call_cost)


def listed_growth_offers(scored: pd.DataFrame, policy: ListPolicy) -> pd.Series:
    """The growth offer of each customer on a growth list, missing for everybody else: growth
    reasons are explained for these only (200k customers had 197k offers and 58k
    growth-listed). ``scored`` is assigned."""
    return scored["growth_offer"].where(growth_listed(scored, policy))


def with_language(scored: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The display columns lists read (``reason_k``, and for growth rows their own reasons) in
    ``lang``; the stored scores keep both languages."""
    out = scored.copy()
    for rank in range(1, TOP_K + 1):
        out[f"reason_{rank}"] = out[f"reason_{rank}_text_{lang}"]
        out[f"growth_reason_{rank}"] = out[f"growth_reason_{rank}_text_{lang}"]
    return out
