"""`retain score`: every customer of a warehouse scored at one cutoff by the champion models,
with reasons, next best offers and one ranked list per RM — written atomically.

The output directory (replaced only when everything succeeded):

- ``scores.parquet``: one row per customer at the cutoff;
- ``features.parquet``: the features behind those scores (what the API looks customers up in);
- ``lists/<list_id>.csv`` and ``.xlsx``;
- ``rms.parquet``: RM capacities, so the API can rebuild any list;
- ``report.html``: the portfolio report;
- ``summary.json``: what the CLI prints, plus the model versions.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from mlflow.tracking import MlflowClient

from features.atomic import atomic_dir, write_json
from features.build import HOLDS_PREFIX, CutoffError
from features.config import BankConfig, RiskBands
from features.materialize import write_features
from features.products import products_from_json, read_products_metadata
from features.sources.tables import read_location_table
from models.artifact import VerifiedModel, load_verified
from models.registry import CHAMPION, RegistryError
from serving.explain import TOP_K, Reasons, explain, inputs, reason_columns
from serving.lists import (
    build_growth_lists,
    build_lists,
    growth_listed,
    list_groups,
    mask_name,
)
from serving.offers import UPGRADE as TIER_UPGRADE
from serving.offers import growth_offers, product_values, retention_offers
from serving.report import write_report
from serving.sheets import write_list_files

CHURN, UPGRADE, CROSS_SELL = "churn", "upgrade", "cross_sell_"


@dataclass
class ModelSet:
    """The champion models, loaded and verified: churn, upgrade and one per cross-sell product."""

    churn: VerifiedModel
    upgrade: VerifiedModel
    cross_sell: dict[str, VerifiedModel] = field(default_factory=dict)

    def all(self) -> list[VerifiedModel]:
        return [self.churn, *self.cross_sell.values(), self.upgrade]

    @property
    def versions(self) -> dict[str, str]:
        return {m.name: m.version for m in self.all()}


def load_champions(alias: str = CHAMPION) -> ModelSet:
    """Load every model the scoring needs under ``alias``, or raise naming what is missing.

    Required: ``churn``, ``upgrade`` and every registered ``cross_sell_<product>`` model.
    """
    names = sorted(m.name for m in MlflowClient().search_registered_models())
    missing = [n for n in (CHURN, UPGRADE) if n not in names]
    if missing:
        raise RegistryError(
            f"no registered model {', '.join(missing)} in the registry: train it "
            f"(retain train --task all) and promote it first"
        )
    cross = {
        n.removeprefix(CROSS_SELL): load_verified(n, alias)
        for n in names
        if n.startswith(CROSS_SELL)
    }
    return ModelSet(load_verified(CHURN, alias), load_verified(UPGRADE, alias), cross)


DEFAULT_BANDS = RiskBands()


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

    def predict(model: VerifiedModel) -> np.ndarray:
        index = [column[f] for f in model.features]
        return model.predict_inputs(x if index == list(range(len(names))) else x[:, index])

    p_churn = predict(models.churn)
    out = {
        "customer_id": features["customer_id"].to_numpy(),
        "p_churn": p_churn,
        "risk_band": risk_band(p_churn, bands),
    }
    for product, model in models.cross_sell.items():
        out[f"propensity_{product}"] = predict(model)
    out["p_upgrade"] = predict(models.upgrade)
    return pd.DataFrame(out)


def explain_churn(
    models: ModelSet, features: pd.DataFrame, scores: pd.DataFrame, above: float
) -> Reasons:
    """Top-3 actionable churn reasons for eligible customers with ``p_churn >= above`` and for
    customers already leaving (the list candidates)."""
    eligible = features["eligible_churn"].fillna(False).to_numpy(dtype=bool)
    leaving = features["leaving_now"].fillna(False).to_numpy(dtype=bool)
    rows = np.flatnonzero((eligible & (scores["p_churn"].to_numpy() >= above)) | leaving)
    churn = models.churn
    products = products_from_json(churn.metadata.get("products", []))
    return explain(
        churn.booster, features, churn.metadata["features"], rows, TOP_K, products, actionable=True
    )


def explain_growth(
    models: ModelSet, features: pd.DataFrame, offers: pd.Series, langs
) -> dict[str, np.ndarray]:
    """Reasons for growth offers from the offered model itself (the upgrade model for a tier
    upgrade, the product's cross-sell model for a product): ``growth_reason_k_text_<lang>``."""
    n = len(features)
    columns = {
        f"growth_reason_{r}_text_{lang}": np.full(n, None, dtype=object)
        for r in range(1, TOP_K + 1)
        for lang in langs
    }
    by_model = {TIER_UPGRADE: models.upgrade, **models.cross_sell}
    for offer, model in by_model.items():
        rows = np.flatnonzero(offers.to_numpy(dtype=object) == offer)
        if not len(rows):
            continue
        products = products_from_json(model.metadata.get("products", []))
        reasons = explain(
            model.booster, features, model.metadata["features"], rows, TOP_K, products
        )
        for rank in range(TOP_K):
            for lang in langs:
                columns[f"growth_reason_{rank + 1}_text_{lang}"][rows] = reasons.texts(rank, lang)
    return columns


def holdings(features: pd.DataFrame, products: list[str]) -> pd.DataFrame:
    """Which products each customer holds at the cutoff (the feature build's ``holds_``
    columns: one definition of holding a product), one boolean column per product."""
    columns = {p: features[f"{HOLDS_PREFIX}{p}"].fillna(False).astype(bool) for p in products}
    return pd.DataFrame(columns, index=features.index)


def reason_fidelity(features: pd.DataFrame, scores: pd.DataFrame, reasons: Reasons) -> dict | None:
    """Among true churners in the top decile of p_churn (eligible customers), the share whose
    true churn driver is evidenced by one of their top-3 reasons. Churners whose exit has no
    driver (truth "none") have nothing to find and are left out; None without truth."""
    if "truth_churn_driver" not in features:
        return None
    eligible = features["eligible_churn"].fillna(False).to_numpy(dtype=bool)
    p = scores["p_churn"].to_numpy()
    threshold = np.quantile(p[eligible], 0.9) if eligible.any() else np.inf
    driver = features["truth_churn_driver"].to_numpy(dtype=object)
    explained = {row: shown for row, shown in zip(reasons.rows, reasons.drivers(), strict=True)}
    hits = total = 0
    for row in np.flatnonzero(eligible & (p >= threshold)):
        if driver[row] is None or driver[row] in ("none",) or pd.isna(driver[row]):
            continue
        total += 1
        hits += driver[row] in explained.get(row, set())
    return {"reason_fidelity": hits / total if total else None, "fidelity_churners": total}


def score_warehouse(
    warehouse: Path,
    cutoff: date,
    out: Path,
    config: BankConfig,
    lang: str = "zh",
    k: int | None = None,
    explain_above: float = 0.0,
    step: Callable[[str], None] = lambda _: None,
    features_path: Path | None = None,
    engine: str = "duckdb",
    spark_master: str = "local[2]",
    spark_memory: str | None = None,
) -> dict:
    """Score ``warehouse`` at ``cutoff`` into ``out``; return the summary.

    ``features_path``: features at ``cutoff`` built already (by ``retain run``), used instead
    of building them again. With ``engine="spark"`` the features are built, scored and
    explained in Spark (``serving.spark_scoring``) by the same functions; the rest is the same."""
    started = time.perf_counter()
    step("loading champion models")
    models = load_champions()
    timings = {}
    with atomic_dir(out) as staging:
        tick = time.perf_counter()
        if features_path is None:
            write_features(
                warehouse,
                [cutoff],
                staging / "features.parquet",
                config,
                engine,
                spark_master,
                step,
                spark_memory=spark_memory,
            )
        else:
            _reuse_features(Path(features_path), staging / "features.parquet", cutoff)
        features = pd.read_parquet(staging / "features.parquet")
        config = config.with_products(read_products_metadata(staging / "features.parquet"))
        timings["features"] = time.perf_counter() - tick
        if features.empty:
            raise RegistryError(f"no customers at cutoff {cutoff} in {warehouse}")
        step("scoring")
        tick = time.perf_counter()
        growth_reasons, spark = explain_growth, None
        if engine == "spark":
            from serving.spark_scoring import SparkScorer

            path = staging / "features.parquet"
            spark = SparkScorer(models, path, features, spark_master, spark_memory)
            scores, reasons = spark.score_and_explain(config.lists.risk_bands, explain_above)
            growth_reasons = spark.explain_growth
            timings["scoring_and_reasons"] = time.perf_counter() - tick
        else:
            scores = score_frame(models, features, config.lists.risk_bands)
            timings["scoring"] = time.perf_counter() - tick
            step("reasons")
            tick = time.perf_counter()
            reasons = explain_churn(models, features, scores, explain_above)
            timings["reasons"] = time.perf_counter() - tick
        step("offers and lists")
        try:
            scored = _assemble(
                warehouse, cutoff, config, models, features, scores, reasons, growth_reasons
            )
        finally:
            if spark is not None:
                spark.close()
        scored = with_language(scored, lang)
        rms = read_location_table(warehouse, "rms", ["rm_id", "capacity"])
        lists = build_lists(scored, rms, config.lists, k)
        growth = build_growth_lists(scored, rms, config.lists, lists)
        rms.to_parquet(staging / "rms.parquet", index=False)  # the API builds lists from it
        _write_scores(staging, scored, models)
        lists.to_parquet(staging / "lists.parquet", index=False)
        growth.to_parquet(staging / "growth.parquet", index=False)
        write_list_files(staging / "lists", lists, growth, lang, config)
        step("report")
        write_report(
            staging / "report.html", scored, lists, growth, cutoff, models.versions, lang, config
        )
        summary = {
            "cutoff": cutoff.isoformat(),
            "customers_scored": len(scores),
            "customers_explained": len(reasons.rows),
            "lists": int(lists["list_id"].nunique()),
            "listed_customers": len(lists),
            "leaving_now_listed": int(lists["leaving_now"].sum()),
            "growth_listed": len(growth),
            "control_customers": int((scored["list_group"] == "control").sum()),
            "models": models.versions,
            "seconds": round(time.perf_counter() - started, 2),
            "timings": {name: round(s, 2) for name, s in timings.items()},
            **(reason_fidelity(features, scores, reasons) or {}),
            "out": str(out),
        }
        write_json(staging / "summary.json", summary)
    return summary


def _reuse_features(source: Path, target: Path, cutoff: date) -> None:
    """Link (else copy) a features file built for ``cutoff``; files are replaced, never
    rewritten in place, so a hard link is safe."""
    cutoffs = pq.read_table(source, columns=["cutoff"]).column("cutoff").unique().to_pylist()
    if cutoffs and cutoffs != [cutoff]:
        raise CutoffError(f"{source} holds cutoffs {cutoffs[:3]}, not {cutoff}")
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _assemble(
    warehouse, cutoff, config, models, features, scores, reasons, growth_reasons=explain_growth
) -> pd.DataFrame:
    """One frame with ids, scores, reasons, offers, actions and list groups for every customer."""
    keep = [
        "rm_id",
        "outlet_id",
        "branch_id",
        "sub_branch_id",
        "tier",
        "pyramid_level",
        "do_not_contact",
        "eligible_churn",
        "leaving_now",
        "contribution_12m",
        "open_complaints",
        "maturing_30d",
        "maturing_product",
        "maturing_date",
    ]
    scored = pd.concat([scores, features[keep].reset_index(drop=True)], axis=1)
    scored["expected_loss"] = scored["p_churn"] * scored["contribution_12m"].clip(lower=0)
    scored = scored.assign(**reason_columns(reasons, len(scored), config.languages))
    products = [p for p in config.products if p.product in models.cross_sell]
    held = holdings(features, [p.product for p in products]).set_axis(scored.index)
    values = product_values(tuple(products), features)
    scored = scored.join(retention_offers(scored, held, values, config))
    growth = growth_offers(scored, held, values, config)
    scored = scored.join(
        growth.add_prefix("growth_").rename(
            columns={"growth_growth_offer": "growth_offer", "growth_value_added": "value_added"}
        )
    )
    groups = list_groups(scored, config.lists, cutoff.isoformat())
    # growth reasons only for the customers on a growth list (200k customers: 58k listed of
    # 197k with an offer; lists do not grow with the bank): the API reads them for those only
    listed = growth_listed(scored.assign(list_group=groups), config.lists)
    offers = scored["growth_offer"].where(listed)
    scored = scored.assign(**growth_reasons(models, features, offers, config.languages))
    scored["list_group"] = groups
    names = read_location_table(warehouse, "customers", ["customer_id", "name"])
    masked = names.set_index("customer_id")["name"].map(mask_name)
    scored["customer_name"] = scored["customer_id"].map(masked).fillna("***")
    return scored


def with_language(scored: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The display columns lists read (``reason_k``, and for growth rows their own reasons) in
    ``lang``; the stored scores keep both languages."""
    out = scored.copy()
    for rank in range(1, TOP_K + 1):
        out[f"reason_{rank}"] = out[f"reason_{rank}_text_{lang}"]
        out[f"growth_reason_{rank}"] = out[f"growth_reason_{rank}_text_{lang}"]
    return out


def _write_scores(folder: Path, scored: pd.DataFrame, models: ModelSet) -> None:
    shown = [f"{kind}reason_{r}" for kind in ("", "growth_") for r in range(1, TOP_K + 1)]
    frame = scored.drop(columns=shown)
    for name, version in models.versions.items():
        frame[f"model_version_{name}"] = version
    frame.to_parquet(folder / "scores.parquet", index=False)
