"""`retain score` end to end: lists checked against the raw warehouse tables, not our features."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from features.sources.files import read_table
from serving.lists import LIST_COLUMNS, OUTLET_PREFIX
from tests.conftest import SCORED_CUTOFF, run_retain

CUTOFF = pd.Timestamp(SCORED_CUTOFF)


@pytest.fixture(scope="module")
def lists(scored) -> pd.DataFrame:
    files = sorted((scored.out / "lists").glob("*.csv"))
    assert files
    return pd.concat([pd.read_csv(f).assign(list_id=f.stem) for f in files], ignore_index=True)


@pytest.fixture(scope="module")
def scores(scored) -> pd.DataFrame:
    return pd.read_parquet(scored.out / "scores.parquet")


def rm_as_of_cutoff(bank: Path) -> pd.Series:
    a = read_table(bank, "rm_assignments")
    valid_from, valid_to = pd.to_datetime(a["valid_from"]), pd.to_datetime(a["valid_to"])
    current = a[(valid_from <= CUTOFF) & (valid_to.isna() | (valid_to > CUTOFF))]
    assert current["customer_id"].is_unique
    return current.set_index("customer_id")["rm_id"].astype(str)


def test_the_summary_counts_what_was_written(scored, scores, lists):
    s = scored.summary
    assert s["customers_scored"] == len(scores) == scores["customer_id"].nunique()
    assert s["lists"] == lists["list_id"].nunique()
    assert s["seconds"] > 0 and set(s["models"]) >= {"churn", "upgrade"}
    assert any(name.startswith("cross_sell_") for name in s["models"])


def test_scores_have_every_model_and_structured_reasons(scores, scored):
    for name in scored.summary["models"]:
        assert scores[f"model_version_{name}"].eq(scored.summary["models"][name]).all()
    products = [n.removeprefix("cross_sell_") for n in scored.summary["models"]
                if n.startswith("cross_sell_")]  # fmt: skip
    for column in ["p_churn", "p_upgrade", *(f"propensity_{p}" for p in products)]:
        assert scores[column].between(0, 1).all(), column
    assert set(scores["risk_band"]) <= {"low", "medium", "high"}
    explained = scores["reason_1_feature"].notna()
    assert explained.sum() > 0.5 * scores["eligible_churn"].sum()
    assert (scores.loc[explained, "reason_1_contribution"] > 0).all()


def test_each_list_is_ranked_by_expected_loss_within_capacity(lists, scored):
    capacity = read_table(scored.bank, "rms").set_index("rm_id")["capacity"]
    capacity.index = capacity.index.astype(str)
    for list_id, rows in lists.groupby("list_id"):
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
        assert rows["expected_loss"].is_monotonic_decreasing, list_id
        assert np.allclose(rows["expected_loss"], rows["p_churn"] * rows["contribution_12m"])
        if not list_id.startswith(OUTLET_PREFIX):
            assert len(rows) <= capacity[list_id]


def test_lists_hold_only_the_rms_own_customers_as_of_the_cutoff(lists, scored):
    owner = rm_as_of_cutoff(scored.bank)
    customers = read_table(scored.bank, "customers").set_index("customer_id")
    for list_id, rows in lists.groupby("list_id"):
        ids = rows["customer_id"]
        if list_id.startswith(OUTLET_PREFIX):
            assert not ids.isin(owner.index).any()
            assert (customers.loc[ids, "outlet_id"].astype(str) == list_id.removeprefix(
                OUTLET_PREFIX)).all()  # fmt: skip
        else:
            assert (owner.reindex(ids) == list_id).all(), list_id
    # both kinds exist in this bank, so both branches above ran
    assert lists["list_id"].str.startswith(OUTLET_PREFIX).any()
    assert (~lists["list_id"].str.startswith(OUTLET_PREFIX)).any()


def test_no_do_not_contact_customer_is_listed(lists, scored):
    customers = read_table(scored.bank, "customers").set_index("customer_id")
    assert customers["do_not_contact"].sum() > 0
    assert not customers.loc[lists["customer_id"], "do_not_contact"].any()


def test_offers_are_never_held_products_nor_made_during_an_open_complaint(lists, scored):
    b = read_table(scored.bank, "balances")
    held = b[(pd.to_datetime(b["month"]) == CUTOFF) & (b["status"] == "open")]
    held = set(zip(held["customer_id"], held["product"], strict=True))
    offered = lists[lists["next_best_offer"].notna()]
    assert len(offered) > 0.5 * len(lists)
    clash = [(c, p) for c, p in zip(offered["customer_id"], offered["next_best_offer"],
                                    strict=True) if (c, p) in held]  # fmt: skip
    assert not clash
    c = read_table(scored.bank, "complaints")
    ts, resolved = pd.to_datetime(c["ts"]), pd.to_datetime(c["resolved_ts"])
    open_at_cutoff = set(c.loc[(ts <= CUTOFF + pd.Timedelta(days=1) - pd.Timedelta(
        microseconds=1)) & (resolved.isna() | (resolved > CUTOFF + pd.Timedelta(days=1)
        - pd.Timedelta(microseconds=1))), "customer_id"])  # fmt: skip
    complaining = lists[lists["customer_id"].isin(open_at_cutoff)]
    assert len(complaining) > 0
    assert complaining["next_best_offer"].isna().all()
    assert (complaining["action"] == "resolve_complaint_first").all()
    assert set(lists["action"]) <= {"resolve_complaint_first", "offer_renewal", "retention_call"}


def test_list_files_have_the_contract_columns_and_a_formatted_sheet(scored, lists):
    one = next((scored.out / "lists").glob("*.csv"))
    assert tuple(pd.read_csv(one).columns) == LIST_COLUMNS
    assert lists["customer_name"].str.contains(r"\*").all()
    sheet = load_workbook(one.with_suffix(".xlsx")).active
    assert sheet.freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    assert header[0] == "Rank" and "Churn probability" in header
    p_col = header.index("Churn probability") + 1
    assert sheet.cell(row=2, column=p_col).number_format == "0.0%"
    assert sheet.column_dimensions["I"].width > 30  # reason columns are wide


def test_the_report_is_self_contained(scored):
    page = (scored.out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 3
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "Pareto" in page and "Model versions" in page


def test_reasons_find_the_true_driver_of_top_decile_churners(scored):
    s = scored.summary
    # the target (DESIGN §9): the true driver among the top-3 reasons of 85% of the true
    # churners in the top decile. A 6k bank has ~60 of them at one cutoff; measured 0.95-1.0
    # here and 0.97 on the 20k demo, so the binomial standard error (~0.03) leaves room
    assert s["fidelity_churners"] >= 30
    assert s["reason_fidelity"] >= 0.85


def test_a_missing_model_fails_cleanly_and_keeps_the_previous_outputs(scored, tmp_path):
    out = tmp_path / "scores"
    shutil.copytree(scored.out, out)
    before = _digest(out)
    env = {**scored.env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}"}
    result = run_retain(["score", "--warehouse", str(scored.bank), "--cutoff", SCORED_CUTOFF,
                         "--out", str(out)], env)  # fmt: skip
    assert result.returncode == 1
    assert "no registered model churn, upgrade" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert _digest(out) == before


def test_a_tampered_booster_fails_cleanly_and_keeps_the_previous_outputs(scored, tmp_path):
    booster = booster_file(scored.store, "churn")
    original = booster.read_bytes()
    out = tmp_path / "scores"
    shutil.copytree(scored.out, out)
    before = _digest(out)
    try:
        booster.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
        result = run_retain(["score", "--warehouse", str(scored.bank), "--cutoff",
                             SCORED_CUTOFF, "--out", str(out)], scored.env)  # fmt: skip
    finally:
        booster.write_bytes(original)
    assert result.returncode == 1
    assert "does not match the training tag" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert _digest(out) == before


def test_a_date_outside_the_warehouse_is_a_clear_error(scored, tmp_path):
    result = run_retain(["score", "--warehouse", str(scored.bank), "--cutoff", "2030-01-31",
                         "--out", str(tmp_path / "x")], scored.env)  # fmt: skip
    assert result.returncode == 1 and "outside the warehouse" in result.stderr
    assert not (tmp_path / "x").exists()


def booster_file(store: Path, name: str) -> Path:
    """The champion's booster file in the store: the one whose hash is the training tag."""
    from mlflow.tracking import MlflowClient

    from models.artifact import sha256_file
    from models.registry import SHA_TAG

    uri = f"sqlite:///{store / 'mlflow.db'}"  # this store, whatever MLFLOW_TRACKING_URI says
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    expected = client.get_model_version_by_alias(name, "champion").tags[SHA_TAG]
    hits = [p for p in store.rglob("model.lgb") if sha256_file(p) == expected]
    assert hits, f"no booster of {name}@champion under {store}"
    return hits[0]


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return h.hexdigest()


def test_cutoff_constant_is_a_month_end():
    d = date.fromisoformat(SCORED_CUTOFF)
    assert (pd.Timestamp(d) + pd.offsets.MonthEnd(0)).date() == d


def test_the_demo_runs_the_whole_chain_to_lists(demo):
    root, summary = demo
    assert (root / "warehouse" / "customers").exists() and (root / "features.parquet").exists()
    assert set(summary["training"]["models"]) >= {"churn", "upgrade"}
    assert all(d["champion"] == d["challenger"] for d in summary["promotions"])
    scoring = summary["scoring"]
    assert scoring["cutoff"] == "2024-12-31" and scoring["customers_scored"] > 5_000
    lists = list((root / "scores" / "lists").glob("*.csv"))
    assert len(lists) == scoring["lists"] > 0
    assert len(list((root / "scores" / "lists").glob("*.xlsx"))) == len(lists)
    assert (root / "scores" / "report.html").stat().st_size > 10_000
