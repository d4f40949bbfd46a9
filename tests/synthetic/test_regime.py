"""A regime change from a month on (synthetic.config.RegimeChange): the months before it are
the unchanged bank's, row for row; from it on, payments to other banks are scaled and withdrawn
products run off — and the outflow features the models read move with them."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.build import build_features, select_output
from features.catalog import feature_names
from features.config import BankConfig
from features.engine import connect, load_warehouse
from synthetic.bank import write_bank
from synthetic.config import (
    DEFAULT_CATALOGUE,
    RegimeChange,
    SynthConfig,
    SynthConfigError,
    as_products,
    synth_config_from_toml,
)
from tests import retain_process

SIZE = {"customers": 2_000, "months": 12, "seed": 7}  # window 2024-01-31 .. 2024-12-31
START = date(2024, 7, 31)
START_TS = pd.Timestamp("2024-07-01")  # events dated from here on belong to the regime
# sha256 over the parquet files of write_bank(SynthConfig(**SIZE)): the bank without a regime
# must not change by a byte when regimes change. First computed with the generator before
# regime changes existed; re-pinned when customers came to be simulated from their open date
# (generator version 3: before it, young customers banked months before they opened)
UNCHANGED_SHA256 = "4b1f8982df4a991e813037e9c15283fdca48297fa01438c2e5af39c5dab50b38"
WITHDRAWN = ("time_deposit", "mutual_fund", "consumer_loan")  # maturing, run-off, loan
FACTOR = 2.5
EVENT_TABLES = {  # table → its date column and the columns that may look past it
    "balances": ("month", ()),
    "transactions": ("ts", ()),
    "interactions": ("ts", ()),
    "complaints": ("ts", ("resolved_ts",)),
    "rm_assignments": ("valid_from", ("valid_to",)),
}
CONFIG = BankConfig().with_products(as_products(DEFAULT_CATALOGUE))


def _tree_sha256(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.parquet")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _read(bank: Path, table: str) -> pd.DataFrame:
    frame = pd.read_parquet(bank / table)
    for column in ("month", "valid_from", "valid_to", "exit_month", "maturity_date"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column])
    return frame


@pytest.fixture(scope="module")
def banks(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("regime")
    configs = {
        "unchanged": SynthConfig(**SIZE),
        "outflow": SynthConfig(**SIZE, regime=RegimeChange(start=START, outflow_factor=FACTOR)),
        "shifted": SynthConfig(
            **SIZE,
            regime=RegimeChange(
                start=START, outflow_factor=2.0, withdrawn=WITHDRAWN, outflow_start_factor=3.0
            ),
        ),
    }
    for name, config in configs.items():
        write_bank(config, root / name)
    return {name: root / name for name in configs}


def test_the_bank_without_a_regime_is_byte_identical_to_before(banks):
    assert _tree_sha256(banks["unchanged"]) == UNCHANGED_SHA256
    meta = json.loads((banks["unchanged"] / "_meta.json").read_text())
    assert "regime" not in meta["config"]


@pytest.mark.parametrize("name", ["outflow", "shifted"])
def test_rows_before_the_regime_are_the_unchanged_banks(banks, name):
    base, shifted = banks["unchanged"], banks[name]
    for table in ("org", "rms", "products"):
        assert (base / f"{table}.parquet").read_bytes() == (
            shifted / f"{table}.parquet"
        ).read_bytes()
    assert _read(base, "customers").equals(_read(shifted, "customers"))
    for table, (when, looking_ahead) in EVENT_TABLES.items():
        a, b = _read(base, table), _read(shifted, table)
        a, b = (f[f[when] < START_TS].reset_index(drop=True) for f in (a, b))
        assert len(a) > 0, table
        for column in looking_ahead:  # a date after the regime month is the regime's to decide
            a[column], b[column] = (f[column].where(f[column] < START_TS) for f in (a, b))
        pd.testing.assert_frame_equal(a, b, obj=table)
    # the truth looks 3 months ahead: identical up to START - 3 months, but for the exit date of
    # customers who leave after the regime started
    a, b = _read(base, "truth"), _read(shifted, "truth")
    before = a["month"] < pd.Timestamp("2024-04-01")
    a, b = a[before].reset_index(drop=True), b[before].reset_index(drop=True)
    for f in (a, b):
        f["exit_month"] = f["exit_month"].where(f["exit_month"] < START_TS)
    pd.testing.assert_frame_equal(a, b, obj="truth")


def test_after_the_regime_payments_to_other_banks_are_scaled(banks):
    a, b = _read(banks["unchanged"], "transactions"), _read(banks["outflow"], "transactions")
    # scaling draws no random number: the same events, only their amounts differ
    pd.testing.assert_frame_equal(a.drop(columns="amount"), b.drop(columns="amount"))
    scaled = (a["ts"] >= START_TS) & (a["direction"] == "out") & (a["counterparty"] == "other_bank")
    assert scaled.sum() > 500
    assert a.loc[~scaled, "amount"].equals(b.loc[~scaled, "amount"])
    # amounts are rounded to cents before (base) and after (regime) scaling, so the scaled amount
    # is within 0.005 × (1 + FACTOR) of FACTOR × the unchanged one; amounts floored at 1 CNY are
    # the only other difference and none of these is that small
    assert a.loc[scaled, "amount"].min() > 1.0
    error = (b.loc[scaled, "amount"] - FACTOR * a.loc[scaled, "amount"]).abs()
    assert error.max() <= 0.005 * (1 + FACTOR) + 1e-9
    ratio = b.loc[scaled, "amount"].sum() / a.loc[scaled, "amount"].sum()
    assert ratio == pytest.approx(FACTOR, rel=1e-6)


def test_the_outflow_features_move_by_the_factor(banks):
    """The change reaches what the models read: a month's outflow to other banks after the
    regime is FACTOR × the unchanged bank's for every customer (before it, the rows and so the
    features are the unchanged bank's: see above)."""
    names = feature_names(CONFIG.products)

    def features(bank: Path) -> pd.DataFrame:
        rows = build_features(load_warehouse(connect(), bank), [date(2024, 9, 30)], CONFIG)
        return select_output(rows, names).to_pandas().set_index("customer_id").sort_index()

    a, b = features(banks["unchanged"]), features(banks["outflow"])
    assert a.index.equals(b.index)
    paying = a["outflow_to_other_banks_1m"] > 0
    assert paying.sum() > 100
    ratio = b.loc[paying, "outflow_to_other_banks_1m"] / a.loc[paying, "outflow_to_other_banks_1m"]
    # each customer's monthly sum of cent-rounded amounts (≥ 1 CNY each): within 0.1%
    np.testing.assert_allclose(ratio, FACTOR, rtol=1e-3)
    assert b.loc[~paying, "outflow_to_other_banks_1m"].eq(0).all()
    for share in ("outflow_to_other_banks_share_3m", "outflow_to_other_banks_to_aum_3m"):
        assert b[share].mean() > 1.2 * a[share].mean(), share


def test_withdrawn_products_get_no_new_holders_and_run_off(banks):
    a, b = _read(banks["unchanged"], "balances"), _read(banks["shifted"], "balances")
    last_before = pd.Timestamp(START) - pd.offsets.MonthEnd(1)
    for product in WITHDRAWN:
        rows = b[(b["product"] == product) & (b["month"] >= last_before)]
        holders = rows.groupby("month")["customer_id"].apply(set)
        # no new holders: each month's holders were holders the month before
        for earlier, later in zip(holders.iloc[:-1], holders.iloc[1:], strict=True):
            assert later <= earlier, product
        balance = rows.groupby("month")["avg_daily_balance"].sum()
        unchanged = a[(a["product"] == product) & (a["month"] >= last_before)]
        unchanged_balance = unchanged.groupby("month")["avg_daily_balance"].sum()
        # five months of run-off: a fund closed by 15% of holders a month keeps ~0.85^5 = 44%,
        # a deposit not rolled over ~half (terms of 3–36 months), a loan repaid 3% a month and
        # closed by 3% of holders keeps ~74%; the unchanged bank keeps its level (±15%)
        assert balance.iloc[-1] < 0.85 * balance.iloc[0], product
        assert balance.iloc[-1] < 0.85 * unchanged_balance.iloc[-1], product
    truth = _read(banks["shifted"], "truth")
    sold_out = truth["month"] >= last_before  # purchases decided from the month before
    for product in WITHDRAWN:
        assert truth.loc[sold_out, f"p_buy_3m_{product}"].max() == 0.0
        before = ~sold_out & (truth["month"] < pd.Timestamp("2024-04-01"))
        assert truth.loc[before, f"p_buy_3m_{product}"].max() > 0.0


def test_more_customers_moving_savings_out_raise_churn_with_them(banks):
    """outflow_start_factor shifts who is in the outflow driver, not what it does: the truth's
    churn rises with it (a covariate shift), and only from the regime on."""
    a, b = _read(banks["unchanged"], "truth"), _read(banks["shifted"], "truth")
    after = a["month"] >= pd.Timestamp(START)
    outflow_exits = lambda f: (f["churn_driver"] == "outflow_other_bank").sum()  # noqa: E731
    # measured on this bank: 163 → 280 rows (×1.7) and mean p_churn_3m ×1.32 for a factor of 3
    # (episodes take months to build up and other drivers are unchanged, so less than ×3)
    assert outflow_exits(b[after]) > 1.5 * outflow_exits(a[after])
    assert b.loc[after, "p_churn_3m"].mean() > 1.15 * a.loc[after, "p_churn_3m"].mean()
    out = lambda f: f.query("direction == 'out' and counterparty == 'other_bank'")  # noqa: E731
    paid = [out(_read(banks[n], "transactions")) for n in ("unchanged", "shifted")]
    after = [f["ts"] >= START_TS for f in paid]
    # payments ×2 and three times as many customers draining savings to other banks
    assert paid[1].loc[after[1], "amount"].sum() > 2.0 * paid[0].loc[after[0], "amount"].sum()


def _synth(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return retain_process.run(
        ["synth", "--customers", "300", "--months", "6", *args], cwd=cwd, timeout=120
    )


BAD_REGIMES = [  # (regime table, what the error says)
    ({"start": "2023-07-31"}, "outside the window 2024-07-31..2024-12-31"),
    ({"start": "2024-09-15"}, "synthetic.regime.start: start must be a month-end date"),
    ({"start": "2024-09-30", "withdrawn": ["gold_bar"]}, "unknown product code(s) gold_bar"),
    ({"start": "2024-09-30", "withdrawn": ["demand_deposit"]}, "cannot be withdrawn"),
    (
        {"start": "2024-09-30", "outflow_factor": 0},
        "regime.outflow_factor: Input should be greater than 0",
    ),
    ({"start": "2024-09-30", "outflow_start_factor": -1}, "regime.outflow_start_factor: Input"),
    ({"outflow_factor": 2}, "synthetic.regime.start: Field required"),
    ({"start": "2024-09-30", "stop": "2024-10-31"}, "synthetic.regime.stop: unknown key"),
    ({"start": "2024-09-30", "withdrawn": ["insurance", "insurance"]}, "given twice: insurance"),
]


@pytest.mark.parametrize(("regime", "message"), BAD_REGIMES)
def test_bad_regimes_are_one_line_errors(regime, message):
    with pytest.raises(SynthConfigError) as error:
        synth_config_from_toml({"synthetic": {"months": 6, "regime": regime}})
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_the_command_reports_a_bad_regime_in_one_line(tmp_path):
    result = _synth("--shift-from", "2024-09-30", "--withdraw", "gold_bar", cwd=tmp_path)
    assert result.returncode == 2
    error = " ".join(result.stderr.split())  # rich wraps a long line at the terminal width
    assert error.startswith("error: synthetic: regime.withdrawn: unknown product code(s) gold_bar")
    assert error.count("error:") == 1 and "Traceback" not in error
    assert not (tmp_path / "data").exists()  # nothing written


def test_cli_and_toml_give_the_regime_and_the_summary_names_it(tmp_path):
    (tmp_path / "retain.toml").write_text(
        '[synthetic.regime]\nstart = 2024-10-31\nwithdrawn = ["mutual_fund"]\noutflow_factor = 3\n'
    )
    options = ["--outflow-factor", "2", "--withdraw", "insurance", "--json", "summary.json"]
    result = _synth("--config", "retain.toml", *options, "--out", "bank", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    # options win key by key over [synthetic.regime]
    expected = {
        "start": "2024-10-31",
        "outflow_factor": 2.0,
        "withdrawn": ["insurance"],
        "outflow_start_factor": 1.0,
    }
    assert summary["regime"] == expected
    assert summary["config"]["regime"] == expected
    meta = json.loads((tmp_path / "bank" / "_meta.json").read_text())
    assert meta["config"]["regime"] == expected
    holders = _read(tmp_path / "bank", "balances").query("product == 'insurance'")
    assert holders["month"].max() >= pd.Timestamp("2024-10-31")  # held ones run off, not vanish


def test_a_toml_regime_is_read_and_placed_in_the_window():
    config = synth_config_from_toml({"synthetic": {"months": 12, "regime": {"start": START}}})
    assert config.regime == RegimeChange(start=START) and config.regime_month == 6
