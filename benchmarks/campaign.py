"""Proof on the truth (docs/design.md §14): what each ranking's lists save, month after month, on
synthetic banks with a history of randomised retention lists — computed exactly from the two
potential outcomes of the synthetic truth, never estimated.

Each bank (an effect structure × an exploration share, docs/synthetic_campaign.md) runs the
earlier rule-of-thumb lists with a 10% control from 2022-10-31 to 2024-11-30. At each of the
last ``--months`` cutoffs, among the listable customers (eligible, contactable, not already
leaving), every RM's and outlet's list calls its capacity (the RM's, × the campaign's 0.5) by:

- **rule of thumb**: the AUM that left over three months (decline × AUM);
- **risk**: p_churn × value, the churn model trained as ``retain train`` would have then (the
  labelled cutoffs before the month, embargoed validation, calibrated);
- **uplift (h months)**: τ̂ × value, the uplift model (``--learner``) trained on the last h
  months of randomised history matured by then (cutoffs ≤ month − 3);
- **gated (h months)**: the uplift ranking if the gate of ``retain promote`` passes on that
  history (``training.uplift_run.fit_uplift`` with the same learner: trained on the history
  but its last 2 + 3 months, measured on its last 2 against the risk ranking, paired interval
  above 0), else the risk ranking;
- **oracle**: τ × value with the true τ; **random**.

Saved per call = Σ over the called of (p_churn_3m − p_churn_3m_called) × contribution_12m at
the cutoff / calls. Ratios are of sums over the months. The power calculation
(``training.uplift_data.history_power``: control customers in the would-be lists a 2-point
average effect needs at 80% power, and the months that takes) is reported against each
history.

Writes ``<name>.json`` and the plot ``<name>.png`` in the benchmarks' results folder (``--plot``
elsewhere). The default (20,000 customers, the last month, five banks) takes about 10 minutes
on 2 cores the first time (the banks are kept under ``--work``), about a minute after.
docs/uplift.md reports ``--months 2 --plot docs/img/uplift_learning_curve.png``, and the banks
with the power the calculation asks for: ``--customers 200000 --banks heterogeneous`` (bank and
features 6 minutes, the month 21, peak RSS 7.5 GB, at a load average of 6–11 on 2 cores) and
``--customers 100000 --banks sleeping_dogs_among_risky,follows_risk --compare r``.
``--compare`` adds other learners' rankings on the same histories; ``--no-gate`` skips the gate
and reads the churn model's probabilities kept by an earlier run.
Usage: python benchmarks/campaign.py [--customers 20000] [--seed 11] [--months 1]
       [--banks heterogeneous,follows_risk,...] [--histories 1,3,6,12] [--learner shift]
       [--compare t,x,dr,r] [--no-gate] [--control-share 0.1] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from common import RESULTS, ROOT, report
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(ROOT))  # the project's packages, not benchmarks/features.py

from features.build import parse_cutoffs
from features.config import BankConfig, ListPolicy
from features.materialize import write_features
from features.sources.files import read_table
from serving.lists import capacities, list_owner
from synthetic.bank import write_bank
from synthetic.config import Campaign, SynthConfig
from training.train import TrainConfig
from training.uplift_data import UpliftHistoryError, history_before, history_power, uplift_rows
from training.uplift_learners import LEARNERS
from training.uplift_run import GATE_GAIN, beats_risk, fit_uplift
from training.uplift_truth import ChurnBefore, saved_by, top_of_lists, true_effect

HORIZON = 3
START, FIRST_FEATURES, LAST = "2022-10-31", "2022-10-31", date(2024, 11, 30)
WINDOW_MONTHS = 30  # 2022-07 … 2024-12: a 12-month history before the first evaluated months
CAPACITY_SHARE = 0.5  # the share of each RM's capacity the campaign used (synthetic default)
SMALL_LIST = 0.05  # the second comparison: each list calls 5% of its listable
BANKS = {  # name: (structure, exploration share)
    "heterogeneous": ("heterogeneous", 0.10),
    "heterogeneous 0% exploration": ("heterogeneous", 0.0),
    "heterogeneous 20% exploration": ("heterogeneous", 0.20),
    "follows_risk": ("follows_risk", 0.10),
    "sleeping_dogs_among_risky": ("sleeping_dogs_among_risky", 0.10),
}
DEFAULT_CONTROL = Campaign().control_share
FIXED = ("rule of thumb", "risk", "risk (true p)", "oracle", "random")


def bank_features(name: str, args) -> tuple[Path, Path]:
    """The bank's warehouse and feature file, made once and kept under ``--work``."""
    structure, exploration = BANKS[name]
    size = f"{args.customers}_{args.seed}"
    if args.control_share != DEFAULT_CONTROL:
        size += f"_control{args.control_share:g}"
    where = args.work / size / name.replace(" ", "_").replace("%", "")
    features = where / "features.parquet"
    if not features.is_file():
        campaign = Campaign(
            start=START,
            structure=structure,
            exploration_share=exploration,
            control_share=args.control_share,
        )
        config = SynthConfig(
            customers=args.customers, months=WINDOW_MONTHS, seed=args.seed, campaign=campaign
        )
        write_bank(config, where / "warehouse")
        cutoffs = parse_cutoffs(f"{FIRST_FEATURES}:{LAST}")
        write_features(where / "warehouse", cutoffs, features, BankConfig())
    return where / "warehouse", features


def listable(frame: pd.DataFrame, month: date) -> pd.DataFrame:
    """Who a retention list may call at ``month`` besides the already leaving (called by rule
    in every ranking): eligible and contactable."""
    rows = frame[frame["cutoff"] == month]
    keep = (
        rows["eligible_churn"].fillna(False).astype(bool)
        & ~rows["leaving_now"].fillna(False).astype(bool)
        & ~rows["do_not_contact"].fillna(True).astype(bool)
    )
    return rows[keep].reset_index(drop=True)


def list_capacity(pop: pd.DataFrame, rms: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each row's list (its RM, or its outlet) and that list's capacity."""
    owners = list_owner(pop)
    per_list = capacities(rms, owners, None, ListPolicy())
    capacity = owners.map(per_list).to_numpy(dtype="float64") * CAPACITY_SHARE
    return owners.to_numpy(), np.round(capacity).astype(int)


def small_lists(lists: np.ndarray) -> np.ndarray:
    """Each row's list capacity when every list calls ``SMALL_LIST`` of its listable (at least
    one): the comparison where capacity is scarce."""
    sizes = pd.Series(lists).map(pd.Series(lists).value_counts()).to_numpy()
    return np.maximum(np.round(SMALL_LIST * sizes), 1).astype(int)


def called_types(score, pop: pd.DataFrame, lists, capacity) -> dict[str, float]:
    """The true response types of the customers a ranking calls (shares)."""
    chosen = top_of_lists(score, lists, capacity)
    types = pop.loc[chosen, "truth_response_type"].value_counts(normalize=True)
    return {str(k): round(float(v), 4) for k, v in types.items()}


def gate(history, churn: ChurnBefore, share: float, learner: str) -> dict:
    """What ``retain promote`` would decide on this history (and the Qini on its held-out
    months), or why there is nothing to decide."""
    try:
        fitted = fit_uplift(history, churn.predict, BankConfig(), share, (learner,))
    except UpliftHistoryError as exc:
        return {"passes": False, "reason": str(exc)}
    figures = fitted.figures[learner]
    keep = ("qini", "qini_low", "qini_high", "policy_value", "risk_policy_value", GATE_GAIN)
    return {
        "passes": beats_risk(figures),
        **{k: figures[k] for k in (*keep, f"{GATE_GAIN}_low", f"{GATE_GAIN}_high")},
        "held_out": list(fitted.split.held_out_cutoffs),
    }


def churn_risk(frame, pop: pd.DataFrame, month: date, folder: Path, args):
    """The churn model at ``month`` and its p_churn of ``pop``. The probabilities are kept in
    ``folder``: without the gate (which needs the model itself) a later run reads them back
    instead of training the model again (None for the model then)."""
    path = folder / f"p_churn_{month}.parquet"
    if path.is_file() and not args.gate:
        kept = pd.read_parquet(path)
        if kept["customer_id"].tolist() == pop["customer_id"].tolist():
            return None, kept["p_churn"].to_numpy(dtype="float64")
    churn = ChurnBefore(frame, month, HORIZON, TrainConfig())
    p_churn = churn.predict(pop)
    pd.DataFrame({"customer_id": pop["customer_id"], "p_churn": p_churn}).to_parquet(path)
    return churn, p_churn


def month_figures(frame, rows, rms, month: date, folder: Path, args) -> dict:
    """Every ranking's saved value at ``month``, the uplift models by history, the gates."""
    pop = listable(frame, month)
    tau = true_effect(pop, HORIZON)
    value = pop["contribution_12m"].clip(lower=0).to_numpy(dtype="float64")
    lists, capacity = list_capacity(pop, rms)
    started = time.perf_counter()
    churn, p_churn = churn_risk(frame, pop, month, folder, args)
    decline = (-pop["aum_change_3m"].fillna(0)).clip(lower=0) * pop["aum_avg_1m"].fillna(0)
    scores = {
        "rule of thumb": decline.to_numpy(dtype="float64"),
        "risk": p_churn * value,
        "risk (true p)": pop["truth_p_churn_3m"].to_numpy(dtype="float64") * value,
        "oracle": tau * value,
        "random": np.random.default_rng(args.seed).random(len(pop)),
    }
    histories = {}
    # capacity is per row (its list's): the calls are what the lists can fill
    calls = int(top_of_lists(np.zeros(len(pop)), lists, capacity).sum())
    share = calls / len(pop)
    for months in args.histories:
        history = history_before(rows, month, months, HORIZON)
        tau_hat = LEARNERS[args.learner](history).effect(pop)
        decision = gate(history, churn, share, args.learner) if args.gate else {"passes": False}
        scores[f"uplift {months}m"] = tau_hat * value
        scores[f"gated {months}m"] = tau_hat * value if decision["passes"] else scores["risk"]
        histories[months] = {
            "power": history_power(history),
            "gate": decision,
            "corr_tau": float(np.corrcoef(tau_hat, tau)[0, 1]),
        }
        for other in args.compare:  # the other learners on the same history, no gate
            other_hat = LEARNERS[other](history).effect(pop)
            scores[f"uplift {other} {months}m"] = other_hat * value
            histories[months][f"corr_tau_{other}"] = float(np.corrcoef(other_hat, tau)[0, 1])
    saved = {name: saved_by(score, tau, value, lists, capacity) for name, score in scores.items()}
    small = small_lists(lists)
    seconds = time.perf_counter() - started
    return {
        "listable": len(pop),
        "calls": calls,
        "saved": saved,
        f"saved_at_{SMALL_LIST:.0%}": {
            name: saved_by(score, tau, value, lists, small) for name, score in scores.items()
        },
        "called_by_type": {
            name: called_types(score, pop, lists, capacity) for name, score in scores.items()
        },
        "histories": histories,
        "seconds": seconds,
    }


def bank_figures(name: str, args) -> dict:
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    warehouse, features = bank_features(name, args)
    generated = time.perf_counter() - started
    frame = pd.read_parquet(features)
    assignments = read_table(warehouse, "list_assignments")
    rows = uplift_rows(frame, assignments)
    rms = pd.read_parquet(warehouse / "rms.parquet")
    months = parse_cutoffs(f"{START}:{LAST}")[-args.months :]
    figures = {}
    for month in months:
        figures[str(month)] = month_figures(frame, rows, rms, month, features.parent, args)
        load = os.getloadavg()[0]
        print(
            f"{name} {month}: {figures[str(month)]['seconds']:.0f} s, load {load:.1f}", flush=True
        )
    return {
        "structure": BANKS[name][0],
        "exploration": BANKS[name][1],
        "months": figures,
        "seconds_bank": round(generated),
        "seconds_total": round(time.perf_counter() - started),
        "load_average": [load_at_start, os.getloadavg()[0]],  # 1-minute, at the start and the end
    }


def totals(bank: dict, key: str = "saved") -> dict[str, float]:
    """Saved per call over all the bank's months: Σ saved / Σ calls per ranking (``key``: at
    the lists' capacity, or ``saved_at_5%``)."""
    months = [m[key] for m in bank["months"].values()]
    out = {}
    for name in months[0]:
        calls = sum(m[name]["calls"] for m in months)
        out[name] = sum(m[name]["saved_per_call"] * m[name]["calls"] for m in months) / calls
    return out


def ranking_rows(name: str, bank: dict) -> list[list]:
    """One table row per ranking: saved per call, and against risk, rule of thumb, oracle."""
    total, small = totals(bank), totals(bank, f"saved_at_{SMALL_LIST:.0%}")
    risk, rule, oracle = total["risk"], total["rule of thumb"], total["oracle"]
    gates = _gate_counts(bank)
    rows = []
    for ranking, saved in total.items():
        months = ranking.split()[-1] if ranking.startswith(("uplift", "gated")) else ""
        passes = gates.get(months, "") if ranking.startswith("gated") else ""
        rows.append(
            [
                name,
                ranking,
                f"{saved:,.1f}",
                f"{saved / risk:.2f}",
                f"{saved / rule:.2f}",
                f"{saved / oracle:.2f}",
                f"{small[ranking] / small['risk']:.2f}",
                passes,
            ]
        )
    return rows


def _gate_counts(bank: dict) -> dict[str, str]:
    """Per history, in how many months the gate let the uplift ranking in."""
    months = list(bank["months"].values())
    out = {}
    for h in months[0]["histories"]:
        passed = sum(bool(m["histories"][h]["gate"]["passes"]) for m in months)
        out[f"{h}m"] = f"{passed}/{len(months)}"
    return out


def history_rows(name: str, bank: dict) -> list[list]:
    """The learning curve against the power calculation, per months of history."""
    months = list(bank["months"].values())
    rows = []
    for h in months[0]["histories"]:
        each = [m["histories"][h] for m in months]
        power_ = each[-1]["power"]
        qinis = [e["gate"] for e in each if "qini" in e["gate"]]
        qini = (
            f"{np.median([q['qini'] for q in qinis]):.4f} "
            f"({sum(q['qini_low'] > 0 for q in qinis)}/{len(qinis)} above 0)"
            if qinis
            else "no held-out months"
        )
        needed = power_["control_needed"]
        rows.append(
            [
                name,
                h,
                f"{power_['randomised_rows']:,}",
                f"{power_['control_rows']:,}",
                f"{power_['control_churn']:.1%}",
                f"{needed:,}" if needed else "-",
                power_["months_needed"] or "-",
                f"{np.mean([e['corr_tau'] for e in each]):.2f}",
                qini,
            ]
        )
    return rows


def plot(payload: dict, path: Path) -> None:
    """Saved per call by months of history, one panel per bank, the fixed rankings as lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    banks = payload["banks"]
    fig = Figure(figsize=(4.2 * len(banks), 3.8))
    FigureCanvasAgg(fig)
    for i, (name, bank) in enumerate(banks.items()):
        ax = fig.add_subplot(1, len(banks), i + 1)
        total = totals(bank)
        hs = sorted(int(h) for h in next(iter(bank["months"].values()))["histories"])
        for ranking, style in (("uplift", "o-"), ("gated", "s--")):
            ax.plot(hs, [total[f"{ranking} {h}m"] for h in hs], style, label=ranking)
        for ranking, color in (
            ("oracle", "black"),
            ("risk", "tab:red"),
            ("rule of thumb", "tab:gray"),
            ("random", "tab:olive"),
        ):
            ax.axhline(total[ranking], color=color, linestyle=":", label=ranking)
        ax.set_xscale("log")
        ax.set_xticks(hs, [str(h) for h in hs])
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("months of randomised history")
        if i == 0:
            ax.set_ylabel("contribution saved per call")
            ax.legend(fontsize=7)
    fig.suptitle(f"{payload['customers']:,} customers, {payload['learner']} learner", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--months", type=int, default=1, help="evaluated months (the last)")
    parser.add_argument("--banks", default=",".join(BANKS), help="comma-separated names")
    parser.add_argument("--histories", default="1,3,6,12")
    parser.add_argument("--learner", default="shift", choices=sorted(LEARNERS))
    parser.add_argument("--compare", default="", help="other learners, comma-separated")
    parser.add_argument("--no-gate", dest="gate", action="store_false", help="skip the gate")
    parser.add_argument(
        "--control-share",
        type=float,
        default=DEFAULT_CONTROL,
        help="the earlier campaign's control within the cut ([synthetic.campaign])",
    )
    parser.add_argument("--work", type=Path, default=ROOT / "data" / "bench_campaign")
    parser.add_argument("--plot", type=Path, help="the plot (default: results/<name>.png)")
    parser.add_argument("--name", default="campaign", help="results/<name>.json")
    args = parser.parse_args()
    args.histories = [int(h) for h in args.histories.split(",")]
    args.compare = [c for c in args.compare.split(",") if c]
    payload = {
        "customers": args.customers,
        "seed": args.seed,
        "learner": args.learner,
        "control_share": args.control_share,
        "capacity_share": CAPACITY_SHARE,
        "banks": {},
    }
    for name in args.banks.split(","):
        payload["banks"][name] = bank_figures(name, args)
        bank = payload["banks"][name]
        bank["saved_per_call"] = totals(bank)
        bank[f"saved_per_call_at_{SMALL_LIST:.0%}"] = totals(bank, f"saved_at_{SMALL_LIST:.0%}")
    rows = [r for name, bank in payload["banks"].items() for r in ranking_rows(name, bank)]
    report(
        f"{args.name}",
        [
            "bank",
            "ranking",
            "saved per call",
            "/ risk",
            "/ rule",
            "/ oracle",
            f"/ risk, lists of {SMALL_LIST:.0%}",
            "gate passed",
        ],
        rows,
        payload,
    )
    curve = Table(title="learning curve against the power calculation", title_justify="left")
    for column in (
        "bank",
        "months",
        "randomised rows",
        "control (lists)",
        "control churn",
        "control needed (2 pts)",
        "months needed",
        "corr(τ̂, τ)",
        "Qini on held-out months (median)",
    ):
        curve.add_column(column)
    for name, bank in payload["banks"].items():
        for row in history_rows(name, bank):
            curve.add_row(*(str(v) for v in row))
    Console().print(curve)
    path = args.plot or RESULTS / f"{args.name}.png"
    plot(payload, path)
    print(f"plot written to {path}")


if __name__ == "__main__":
    main()
