"""The portfolio report: one self-contained HTML file (plots inlined as PNG data, no CDN).

Plots carry English labels (the machine has no CJK font, and a chart full of boxes helps no
one); the words around them, and the reasons table, are in the chosen language.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from features.catalog import catalog
from serving.explain import TOP_K
from serving.texts import REPORT, text


def write_report(
    path: Path,
    scored: pd.DataFrame,
    lists: pd.DataFrame,
    cutoff: date,
    versions: dict[str, str],
    lang: str,
) -> None:

    def t(key: str) -> str:
        return html.escape(text(REPORT, key, lang))

    eligible = scored[scored["eligible_churn"].fillna(False).astype(bool)]
    top20 = pareto_point(scored["contribution_12m"].to_numpy())
    headline = [
        (t("cutoff"), cutoff.isoformat()),
        (t("scored"), f"{len(scored):,}"),
        (t("high"), f"{int((eligible['risk_band'] == 'high').sum()):,}"),
        (t("loss"), f"{eligible['expected_loss'].sum():,.0f}"),
        (t("lists"), f"{lists['list_id'].nunique():,}"),
        (t("listed"), f"{len(lists):,}"),
    ]
    sections = [
        (t("pareto"), _img(_pareto_plot(scored["contribution_12m"].to_numpy()))),
        (t("tier"), _img(_tier_plot(eligible))),
        (t("branch"), _img(_branch_plot(eligible))),
        (t("reasons"), _reason_table(lists, scored, lang, t("reason"), t("count"))),
    ]
    body = "".join(f"<h2>{title}</h2>{content}" for title, content in sections)
    cards = "".join(f"<div class='card'><b>{v}</b><span>{k}</span></div>" for k, v in headline)
    model_rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{html.escape(v)}</td></tr>" for n, v in versions.items()
    )
    note = f"top 20% of customers: {top20:.0%} of contribution"
    page = f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<title>{t("title")} {cutoff.isoformat()}</title><style>
body{{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#1f2933}}
.cards{{display:flex;flex-wrap:wrap;gap:12px}}
.card{{background:#f0f4f8;padding:10px 16px;border-radius:6px;display:flex;flex-direction:column}}
.card b{{font-size:1.4em}} img{{max-width:100%}} table{{border-collapse:collapse}}
td,th{{padding:3px 10px;border-bottom:1px solid #d9e2ec;text-align:left}}
.bar{{background:#3e7cb1;height:10px}}</style></head><body>
<h1>{t("title")}</h1><div class="cards">{cards}</div><p>{html.escape(note)}</p>{body}
<h2>{t("models")}</h2><table>{model_rows}</table></body></html>"""
    path.write_text(page, encoding="utf-8")


def pareto_point(contribution: np.ndarray, share: float = 0.2) -> float:
    """Share of total (positive) contribution held by the top ``share`` of customers."""
    values = np.sort(np.clip(np.nan_to_num(contribution), 0, None))[::-1]
    total = values.sum()
    if total <= 0:
        return 0.0
    return float(values[: max(1, int(round(len(values) * share)))].sum() / total)


def _img(fig: Figure) -> str:
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img alt='' src='data:image/png;base64,{data}'>"


def _pareto_plot(contribution: np.ndarray) -> Figure:
    values = np.sort(np.clip(np.nan_to_num(contribution), 0, None))[::-1]
    cumulative = np.cumsum(values) / max(values.sum(), 1e-9)
    x = np.arange(1, len(values) + 1) / max(len(values), 1)
    fig = Figure(figsize=(6.5, 4))
    ax = fig.add_subplot()
    ax.plot(x, cumulative, color="#3e7cb1", lw=2)
    ax.plot([0, 1], [0, 1], color="#9aa5b1", ls="--", lw=1)
    y20 = pareto_point(contribution)
    ax.axvline(0.2, color="#d64545", lw=1)
    ax.scatter([0.2], [y20], color="#d64545", zorder=3)
    ax.annotate(f"top 20% → {y20:.0%}", (0.2, y20), xytext=(0.3, y20 - 0.15), color="#d64545")
    ax.set(xlabel="share of customers (by contribution)", ylabel="share of contribution",
           xlim=(0, 1), ylim=(0, 1.02), title="Pareto curve of annual contribution")  # fmt: skip
    return fig


def _tier_plot(eligible: pd.DataFrame) -> Figure:
    by = (
        eligible.groupby("tier", observed=True)
        .agg(
            p=("p_churn", "mean"), loss=("expected_loss", "sum"), aum=("contribution_12m", "median")
        )
        .sort_values("aum")
    )
    fig = Figure(figsize=(9, 3.6))
    left, right = fig.subplots(1, 2)
    left.barh(by.index.astype(str), by["p"], color="#3e7cb1")
    left.set(title="mean 3-month churn probability", xlabel="probability")
    right.barh(by.index.astype(str), by["loss"], color="#d64545")
    right.set(title="expected loss (CNY)", xlabel="CNY")
    fig.tight_layout()
    return fig


def _branch_plot(eligible: pd.DataFrame) -> Figure:
    by = (
        eligible.groupby("branch_id")
        .agg(p=("p_churn", "mean"), loss=("expected_loss", "sum"))
        .sort_values("loss")
    )
    fig = Figure(figsize=(9, max(3.0, 0.3 * len(by) + 1)))
    left, right = fig.subplots(1, 2)
    labels = [f"branch {b}" for b in by.index]
    left.barh(labels, by["p"], color="#3e7cb1")
    left.set(title="mean 3-month churn probability", xlabel="probability")
    right.barh(labels, by["loss"], color="#d64545")
    right.set(title="expected loss (CNY)", xlabel="CNY")
    fig.tight_layout()
    return fig


def _reason_table(lists: pd.DataFrame, scored: pd.DataFrame, lang: str, head_reason, head_count):
    listed = scored[scored["customer_id"].isin(lists["customer_id"])]
    names = pd.concat([listed[f"reason_{r}_feature"] for r in range(1, TOP_K + 1)]).dropna()
    entries = catalog()
    counts = names.map(lambda n: entries[n].label(lang) if n in entries else n).value_counts()
    counts = counts.head(10)
    if counts.empty:
        return "<p>—</p>"
    top = counts.iloc[0]
    rows = "".join(
        f"<tr><td>{html.escape(str(label))}</td><td>{n:,}</td>"
        f"<td><div class='bar' style='width:{200 * n / top:.0f}px'></div></td></tr>"
        for label, n in counts.items()
    )
    return f"<table><tr><th>{head_reason}</th><th>{head_count}</th><th></th></tr>{rows}</table>"
