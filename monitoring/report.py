"""The monitoring report: one self-contained HTML file (plots inlined as PNG, no CDN), in the
configuration's language, drawn from the figures ``monitor.json`` holds — so the report never
shows a number the JSON does not."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from features.config import BankConfig
from monitoring.control import wilson
from monitoring.texts import MONITOR
from serving.charts import axis_label, chart_language, legend_font, png_img
from serving.texts import text

BAND_COLOURS = {"ok": "#3e7cb1", "watch": "#f0b429", "act": "#d64545", "too small": "#9aa5b1"}
TOP = 20


def write_monitor_report(path: Path, result: dict, config: BankConfig) -> None:
    """Write the report of ``result`` (what ``monitor.json`` holds) to ``path``."""
    lang = config.language

    def t(key: str, **values) -> str:
        return html.escape(text(MONITOR, key, lang).format(**values))

    sections = [
        *_drift_sections(result, config.monitoring, chart_language(lang), t),
        *_performance_sections(result, chart_language(lang), t),
    ]
    Path(path).write_text(_page(lang, result, _cards(result, t), sections, t), encoding="utf-8")


def _cards(result: dict, t) -> list[tuple[str, str]]:
    """(label, value) of the cards at the top: the alert, what was compared, the row counts."""
    return [
        (
            t("alert"),
            f"<span style='color:{BAND_COLOURS[result['alert']]}'>{t(result['alert'])}</span>",
        ),
        (
            t("current"),
            html.escape(str(result["current"]["cutoff"] or result["current"]["source"])),
        ),
        (
            t("reference"),
            html.escape(str(result["reference"]["cutoff"] or ""))
            + "<br><small>"
            + html.escape(result["reference"]["source"])
            + "</small>",
        ),
        (t("rows"), f"{result['current']['rows']:,} / {result['reference']['rows']:,}"),
    ]


def _drift_sections(result: dict, policy, charts: str, t) -> list[tuple[str, str]]:
    """(title, HTML) of the alerts, the drift of the whole population and the flagged
    segments, and the score distributions."""
    drift = [r for r in result["drift"] if r["segment"] == "all"]
    segments = [r for r in result["drift"] if r["segment"] != "all"]
    too_small = sum(r["band"] == "too small" for r in segments)
    sections = [(t("alerts"), _alerts_table(result["alerts"], t))]
    sections.append(
        (
            t("drift"),
            "<p>"
            + t("drift_note", watch=policy.watch, act=policy.act, min_group=policy.min_group_size)
            + "</p>"
            + png_img(psi_plot(drift, policy, charts))
            + _drift_rows(sorted(drift, key=lambda r: -r["psi"])[:TOP], t),
        )
    )
    flagged = sorted(
        (r for r in segments if r["band"] in ("watch", "act")), key=lambda r: -r["psi"]
    )
    sections.append(
        (
            t("segments"),
            _drift_rows(flagged[:TOP], t) + f"<p>{t('too_small_note', count=too_small)}</p>",
        )
    )
    if result.get("score_distributions"):
        sections.append((t("scores"), png_img(score_plot(result["score_distributions"], charts))))
    return sections


def _performance_sections(result: dict, charts: str, t) -> list[tuple[str, str]]:
    """(title, HTML) of the estimate before labels, the realised figures once they mature and
    the listed customers' churn against the control group."""
    sections = []
    if result.get("estimate"):
        sections.append(
            (t("estimate"), f"<p>{t('estimate_note')}</p>" + _estimate_table(result, t))
        )
    history = result.get("history") or []
    if history:
        body = _realised_table(history, t)
        if result.get("history_note"):
            body = f"<p>{html.escape(result['history_note'])}</p>" + body
        if any(e.get("estimated_auc") is not None for e in history):
            body = png_img(auc_plot(history, result.get("test_figures"), charts)) + body
        sections.append((t("realised"), body))
        with_control = [e for e in history if (e.get("control") or {}).get("matured")]
        if with_control:
            sections.append(
                (
                    t("control"),
                    png_img(control_plot(with_control, charts)) + _control_table(with_control, t),
                )
            )
    return sections


def _page(
    lang: str, result: dict, cards: list[tuple[str, str]], sections: list[tuple[str, str]], t
) -> str:
    """The self-contained HTML page around the cards and the sections."""
    body = "".join(f"<h2>{title}</h2>{content}" for title, content in sections)
    card_html = "".join(f"<div class='card'><b>{v}</b><span>{k}</span></div>" for k, v in cards)
    return f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<title>{t("title")} {html.escape(str(result["current"]["cutoff"]))}</title><style>
body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:2em auto;max-width:1000px;
color:#1f2933}} .cards{{display:flex;flex-wrap:wrap;gap:12px}}
.card{{background:#f0f4f8;padding:10px 16px;border-radius:6px;display:flex;flex-direction:column}}
.card b{{font-size:1.4em}} img{{max-width:100%}} table{{border-collapse:collapse}}
td,th{{padding:3px 10px;border-bottom:1px solid #d9e2ec;text-align:left}}
td.n{{text-align:right}}</style></head><body>
<h1>{t("title")}</h1><div class="cards">{card_html}</div>{body}</body></html>"""


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _alerts_table(alerts: list[dict], t) -> str:
    if not alerts:
        return f"<p>{t('no_alerts')}</p>"
    head = "".join(f"<th>{t(k)}</th>" for k in ("band", "what", "segment", "psi", "value"))
    rows = "".join(
        f"<tr><td style='color:{BAND_COLOURS[a['band']]}'><b>{t(a['band'])}</b></td>"
        f"<td>{html.escape(a['what'])}</td><td>{html.escape(a['segment'])}</td>"
        f"<td class=n>{_fmt(a.get('psi'))}</td><td class=n>{_fmt(a.get('value'))}</td></tr>"
        for a in alerts
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _drift_rows(rows: list[dict], t) -> str:
    if not rows:
        return f"<p>{t('no_alerts')}</p>"
    head = "".join(
        f"<th>{h}</th>"
        for h in (t("what"), t("segment"), "n", "m", t("psi"), t("floor"), t("band"))
    )
    body = "".join(
        f"<tr><td>{html.escape(r['kind'])} {html.escape(r['what'])}</td>"
        f"<td>{html.escape(r['segment'])}</td><td class=n>{r['n_reference']:,}</td>"
        f"<td class=n>{r['n_current']:,}</td><td class=n>{r['psi']:.3f}</td>"
        f"<td class=n>{r['floor']:.3f}</td>"
        f"<td style='color:{BAND_COLOURS[r['band']]}'>{t(r['band'])}</td></tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _estimate_table(result: dict, t) -> str:
    est = result["estimate"]
    test = result.get("test_figures") or {}
    rows = [
        (t("rows"), f"{est.get('rows', 0):,}"),
        (
            t("estimated_auc"),
            f"{_fmt(est.get('estimated_auc'))} ({_fmt(est.get('estimated_auc_low'))}–"
            f"{_fmt(est.get('estimated_auc_high'))})",
        ),
        (t("test") + " AUC", _fmt(test.get("test_auc"))),
        (
            t("estimated_churn_rate"),
            f"{_fmt(est.get('estimated_churn_rate'), 4)} "
            f"({_fmt(est.get('estimated_churn_rate_low'), 4)}–"
            f"{_fmt(est.get('estimated_churn_rate_high'), 4)})",
        ),
        (t("reference_mean_p"), _fmt(est.get("reference_mean_p"), 4)),
        (t("reference_observed_churn_rate"), _fmt(est.get("reference_observed_churn_rate"), 4)),
        (t("estimated_lift_at_10"), _fmt(est.get("estimated_lift_at_10"), 2)),
        (t("test") + " lift@10", _fmt(test.get("lift_at_10"), 2)),
        (t("estimated_value_captured_at_10"), _fmt(est.get("estimated_value_captured_at_10"))),
        (t("test") + " value@10", _fmt(test.get("value_captured_at_10"))),
    ]
    return (
        "<table>"
        + "".join(f"<tr><td>{k}</td><td class=n>{v}</td></tr>" for k, v in rows)
        + "</table>"
    )


def _realised_table(history: list[dict], t) -> str:
    keys = ("auc", "ece", "lift_at_10", "value_captured_at_10", "churn_rate")
    head = "".join(f"<th>{t(k)}</th>" for k in ("cutoff", "estimated_auc", *keys))
    rows = []
    for e in history:
        real = e.get("realised")
        test = e.get("test_figures") or {}
        cells = [html.escape(e["cutoff"]), _fmt(e.get("estimated_auc"))]
        if real is None:
            cells += [t("not_matured")] + [""] * (len(keys) - 1)
        else:
            for k in keys:
                figure = test.get("test_auc" if k == "auc" else k)
                shown = _fmt(real.get(k))
                cells.append(shown + (f" <small>({_fmt(figure)})</small>" if figure else ""))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table><p><small>({t('test')})</small></p>"


def _control_table(history: list[dict], t) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in (t("cutoff"), t("treated"), t("control_group"), t("difference"), t("saved"))
    )
    rows = "".join(
        f"<tr><td>{html.escape(e['cutoff'])}</td>"
        f"<td class=n>{c['treated_churned']:,}/{c['treated_labelled']:,}</td>"
        f"<td class=n>{c['control_churned']:,}/{c['control_labelled']:,}</td>"
        f"<td class=n>{_fmt(c['difference'], 4)} ({_fmt(c['difference_low'], 4)}–"
        f"{_fmt(c['difference_high'], 4)})</td><td class=n>{_fmt(c['customers_saved'], 1)} "
        f"({_fmt(c['customers_saved_low'], 1)}–{_fmt(c['customers_saved_high'], 1)})</td></tr>"
        for e in history
        for c in [e["control"]]
    )
    method = html.escape(history[0]["control"]["method"])
    return f"<table><tr>{head}</tr>{rows}</table><p><small>{method}</small></p>"


# --- plots --------------------------------------------------------------------------------


def psi_plot(drift: list[dict], policy, lang: str) -> Figure:
    """Horizontal PSI bars of the highest columns, coloured by band, with the band lines."""
    top = sorted(drift, key=lambda r: -r["psi"])[:TOP][::-1]
    fig = Figure(figsize=(8, max(3.0, 0.28 * len(top) + 1)))
    ax = fig.add_subplot()
    labels = [f"{'◆ ' if r['kind'] == 'score' else ''}{r['what']}" for r in top]
    ax.barh(labels, [r["psi"] for r in top], color=[BAND_COLOURS[r["band"]] for r in top])
    for value, colour in ((policy.watch, BAND_COLOURS["watch"]), (policy.act, BAND_COLOURS["act"])):
        ax.axvline(value, color=colour, ls="--", lw=1)
    axis_label(ax, lang, text(MONITOR, "psi_chart", lang), text(MONITOR, "psi", lang))
    fig.tight_layout()
    return fig


def score_plot(distributions: dict, lang: str) -> Figure:
    names = list(distributions)
    columns = min(3, len(names))
    rows = int(np.ceil(len(names) / columns))
    fig = Figure(figsize=(3.3 * columns, 2.4 * rows))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax, name in zip(axes, names, strict=False):
        d = distributions[name]
        centres = (np.array(d["edges"][:-1]) + np.array(d["edges"][1:])) / 2
        width = d["edges"][1] - d["edges"][0]
        ax.bar(
            centres,
            d["reference"],
            width=width,
            color="#9aa5b1",
            alpha=0.7,
            label=text(MONITOR, "reference", lang),
        )
        ax.step(
            centres,
            d["current"],
            where="mid",
            color="#3e7cb1",
            lw=1.5,
            label=text(MONITOR, "current", lang),
        )
        ax.set_title(name, fontsize=9)
        ax.set_yscale("log")
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    axes[0].legend(prop=legend_font(lang))
    fig.tight_layout()
    return fig


def auc_plot(history: list[dict], test: dict | None, lang: str) -> Figure:
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    cutoffs = [e["cutoff"] for e in history]
    x = np.arange(len(cutoffs))
    est = np.array(
        [np.nan if e.get("estimated_auc") is None else e["estimated_auc"] for e in history]
    )
    low = np.array(
        [np.nan if e.get("estimated_auc_low") is None else e["estimated_auc_low"] for e in history]
    )
    high = np.array(
        [
            np.nan if e.get("estimated_auc_high") is None else e["estimated_auc_high"]
            for e in history
        ]
    )
    ax.fill_between(x, low, high, color="#3e7cb1", alpha=0.15)
    ax.plot(x, est, "o-", color="#3e7cb1", label=text(MONITOR, "estimated_auc", lang))
    real = [
        (i, e["realised"]["auc"])
        for i, e in enumerate(history)
        if (e.get("realised") or {}).get("auc")
    ]
    if real:
        ax.plot(
            *zip(*real, strict=True),
            "s-",
            color="#d64545",
            label=text(MONITOR, "realised_auc", lang),
        )
    if test and test.get("test_auc"):
        ax.axhline(
            test["test_auc"], color="#52606d", ls="--", lw=1, label=text(MONITOR, "test", lang)
        )
    ax.set_xticks(x, cutoffs, rotation=30, fontsize=8)
    ax.legend(prop=legend_font(lang))
    axis_label(ax, lang, text(MONITOR, "auc_chart", lang), text(MONITOR, "cutoff", lang), "AUC")
    fig.tight_layout()
    return fig


def control_plot(history: list[dict], lang: str) -> Figure:
    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    x = np.arange(len(history))
    for offset, group, colour in ((-0.15, "treated", "#3e7cb1"), (0.15, "control", "#9aa5b1")):
        rates, errors = [], [[], []]
        for e in history:
            c = e["control"]
            rate = c[f"{group}_churn_rate"] or 0.0
            lo, hi = wilson(c[f"{group}_churned"], c[f"{group}_labelled"])
            rates.append(rate)
            errors[0].append(max(rate - lo, 0) if np.isfinite(lo) else 0)
            errors[1].append(max(hi - rate, 0) if np.isfinite(hi) else 0)
        name = "treated" if group == "treated" else "control_group"
        ax.errorbar(
            x + offset,
            rates,
            yerr=errors,
            fmt="o",
            color=colour,
            capsize=3,
            label=text(MONITOR, name, lang),
        )
    ax.set_xticks(x, [e["cutoff"] for e in history], fontsize=8)
    ax.set_xlim(-0.6, len(history) - 0.4)
    ax.legend(prop=legend_font(lang))
    axis_label(
        ax,
        lang,
        text(MONITOR, "control", lang),
        text(MONITOR, "cutoff", lang),
        text(MONITOR, "control_chart", lang),
    )
    fig.tight_layout()
    return fig
