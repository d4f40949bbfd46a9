"""The portfolio report: one self-contained HTML file (plots inlined as PNG data, no CDN).

Every word is in the report's language, charts included (``serving.charts``: Chinese charts
use a CJK font when the machine has one — `make demo` / `make test` install Noto Sans CJK —
and fall back to English labels elsewhere rather than boxes). Besides the headline and the
charts: the commonest reasons on the lists (as an RM reads them) and a table per RM — listed,
high-risk, leaving now, growth, expected loss — linking to each list's files.
"""

from __future__ import annotations

import html
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.config import BankConfig
from features.targets import CHURN, ELIGIBLE_CHURN
from serving.charts import axis_label, chart_language, font_of, png_img
from serving.texts import REPORT, text


def write_report(
    path: Path,
    scored: pd.DataFrame,
    lists: pd.DataFrame,
    growth: pd.DataFrame,
    cutoff: date,
    versions: dict[str, str],
    lang: str,
    config: BankConfig,
) -> None:
    def t(key: str, **values) -> str:
        return html.escape(text(REPORT, key, lang).format(**values))

    charts = chart_language(lang)
    # only what the plots read: the month's whole answer is large
    shown = ["tier", "branch_id", "risk_band", CHURN.score, "expected_loss", "contribution_12m"]
    eligible = scored.loc[scored[ELIGIBLE_CHURN].fillna(False).astype(bool), shown]
    top20 = pareto_point(scored["contribution_12m"].to_numpy())
    headline = [
        (t("cutoff"), cutoff.isoformat()),
        (t("scored"), f"{len(scored):,}"),
        (t("high"), f"{int((eligible['risk_band'] == 'high').sum()):,}"),
        (t("leaving"), f"{int(lists['leaving_now'].sum()):,}"),
        (t("loss"), f"{lists['expected_loss'].sum():,.0f}"),
        (t("lists"), f"{lists['list_id'].nunique():,}"),
        (t("listed"), f"{len(lists):,}"),
        (t("growth"), f"{len(growth):,}"),
        (t("control"), f"{int((scored['list_group'] == 'control').sum()):,}"),
    ]
    tier_frame = eligible.assign(tier=eligible["tier"].map(lambda v: config.tiers.label(v, charts)))
    sections = [
        (t("per_rm"), _per_rm_table(lists, growth, lang)),
        (t("pareto"), png_img(_pareto_plot(scored["contribution_12m"].to_numpy(), charts))),
        (t("tier"), png_img(_tier_plot(tier_frame, charts))),
        (t("branch"), png_img(_branch_plot(eligible, charts))),
        (t("reasons"), _reason_table(lists, t("reason"), t("count"))),
    ]
    body = "".join(f"<h2>{title}</h2>{content}" for title, content in sections)
    cards = "".join(f"<div class='card'><b>{v}</b><span>{k}</span></div>" for k, v in headline)
    model_rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{html.escape(v)}</td></tr>" for n, v in versions.items()
    )
    page = f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<title>{t("title")} {cutoff.isoformat()}</title><style>
body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:2em auto;max-width:1000px;
color:#1f2933}} .cards{{display:flex;flex-wrap:wrap;gap:12px}}
.card{{background:#f0f4f8;padding:10px 16px;border-radius:6px;display:flex;flex-direction:column}}
.card b{{font-size:1.4em}} img{{max-width:100%}} table{{border-collapse:collapse}}
td,th{{padding:3px 10px;border-bottom:1px solid #d9e2ec;text-align:left}}
td.n{{text-align:right}} .bar{{background:#3e7cb1;height:10px}}</style></head><body>
<h1>{t("title")}</h1><div class="cards">{cards}</div><p>{t("pareto_note", share=top20)}</p>
{body}<h2>{t("models")}</h2><table>{model_rows}</table></body></html>"""
    path.write_text(page, encoding="utf-8")


def pareto_point(contribution: np.ndarray, share: float = 0.2) -> float:
    """Share of total (positive) contribution held by the top ``share`` of customers."""
    values = np.sort(np.clip(np.nan_to_num(contribution), 0, None))[::-1]
    total = values.sum()
    if total <= 0:
        return 0.0
    return float(values[: max(1, int(round(len(values) * share)))].sum() / total)


def _per_rm_table(lists: pd.DataFrame, growth: pd.DataFrame, lang: str) -> str:
    by = lists.groupby("list_id").agg(
        listed=("customer_id", "size"),
        high=("risk_band", lambda b: int((b == "high").sum())),
        leaving=("leaving_now", "sum"),
        loss=("expected_loss", "sum"),
    )
    by["growth"] = growth.groupby("list_id").size().reindex(by.index).fillna(0).astype(int)
    by = by.sort_values("loss", ascending=False)
    head = [
        text(REPORT, k, lang)
        for k in ("list", "listed", "high", "leaving", "growth", "loss", "files")
    ]
    counts = by[["listed", "high", "leaving", "growth"]].fillna(0).astype(int)
    by = by.assign(**counts)  # counts as whole numbers (a row of a mixed frame is floats)
    rows = "".join(
        f"<tr><td>{html.escape(str(r.Index))}</td><td class=n>{r.listed:,}</td>"
        f"<td class=n>{r.high:,}</td><td class=n>{r.leaving:,}</td><td class=n>{r.growth:,}</td>"
        f"<td class=n>{r.loss:,.0f}</td><td><a href='lists/{html.escape(str(r.Index))}.xlsx'>"
        f"xlsx</a> <a href='lists/{html.escape(str(r.Index))}.csv'>csv</a></td></tr>"
        for r in by.itertuples()
    )
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f"<table><tr>{header}</tr>{rows}</table>"


def _pareto_plot(contribution: np.ndarray, lang: str) -> Figure:
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
    ax.annotate(
        text(REPORT, "top20", lang).format(share=y20),
        (0.2, y20),
        xytext=(0.3, y20 - 0.15),
        color="#d64545",
        **font_of(lang),
    )
    ax.set(xlim=(0, 1), ylim=(0, 1.02))
    axis_label(
        ax,
        lang,
        text(REPORT, "pareto_chart", lang),
        text(REPORT, "share_customers", lang),
        text(REPORT, "share_contribution", lang),
    )
    return fig


def _two_bars(by: pd.DataFrame, labels: list[str], lang: str, height: float) -> Figure:
    fig = Figure(figsize=(9, height))
    left, right = fig.subplots(1, 2)
    left.barh(labels, by["p"], color="#3e7cb1")
    axis_label(left, lang, text(REPORT, "mean_p", lang), text(REPORT, "probability", lang))
    right.barh(labels, by["loss"], color="#d64545")
    axis_label(right, lang, text(REPORT, "loss_chart", lang), text(REPORT, "cny", lang))
    fig.tight_layout()
    return fig


def _tier_plot(eligible: pd.DataFrame, lang: str) -> Figure:
    by = (
        eligible.groupby("tier", observed=True)
        .agg(
            p=(CHURN.score, "mean"),
            loss=("expected_loss", "sum"),
            value=("contribution_12m", "median"),
        )
        .sort_values("value")
    )
    return _two_bars(by, [str(i) for i in by.index], lang, 3.6)


def _branch_plot(eligible: pd.DataFrame, lang: str) -> Figure:
    by = (
        eligible.groupby("branch_id")
        .agg(p=(CHURN.score, "mean"), loss=("expected_loss", "sum"))
        .sort_values("loss")
    )
    labels = [text(REPORT, "branch_label", lang).format(id=b) for b in by.index]
    return _two_bars(by, labels, lang, max(3.0, 0.3 * len(by) + 1))


def _reason_table(lists: pd.DataFrame, head_reason: str, head_count: str) -> str:
    """The commonest reasons on the lists, as the RM reads them (the number in a text such as
    "AUM down 35%" varies, so reasons are counted by their text up to the first digit)."""
    shown = pd.concat([lists[f"reason_{r}"] for r in (1, 2, 3)]).dropna()
    counts = shown.map(_reason_kind).value_counts().head(10)
    if counts.empty:
        return "<p>—</p>"
    top = counts.iloc[0]
    rows = "".join(
        f"<tr><td>{html.escape(str(label))}</td><td>{n:,}</td>"
        f"<td><div class='bar' style='width:{200 * n / top:.0f}px'></div></td></tr>"
        for label, n in counts.items()
    )
    return f"<table><tr><th>{head_reason}</th><th>{head_count}</th><th></th></tr>{rows}</table>"


def _reason_kind(reason: str) -> str:
    cut = next((i for i, ch in enumerate(reason) if ch.isdigit() or ch in "¥"), len(reason))
    return (reason[:cut].strip(" :：,，") or reason) + ("…" if cut < len(reason) else "")
