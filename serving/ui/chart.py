"""The AUM and contribution chart, drawn on the server as inline SVG (no script, no assets)."""

from __future__ import annotations

from html import escape

WIDTH, BAR_AREA, ROW = 360, 200, 34


def bar_chart(bars: list[tuple[str, float | None]], unit: str, title: str) -> str:
    """Horizontal bars, one per (label, value), scaled to the largest; missing values say so."""
    top = max((abs(v) for _, v in bars if v is not None), default=0.0) or 1.0
    height = ROW * len(bars) + 28
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f'<text x="0" y="14" class="t">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(bars):
        y = 26 + i * ROW
        parts.append(f'<text x="0" y="{y + 10}" class="l">{escape(label)}</text>')
        if value is None:
            parts.append(f'<text x="0" y="{y + 26}" class="v">—</text>')
            continue
        length = max(1.0, BAR_AREA * abs(value) / top)
        parts.append(f'<rect x="0" y="{y + 14}" width="{length:.1f}" height="14" class="b"/>')
        parts.append(
            f'<text x="{length + 6:.1f}" y="{y + 26}" class="v">{value:,.0f} {escape(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
