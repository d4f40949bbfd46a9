"""The customer's 12 months of AUM and contribution, drawn on the server as inline SVG (no
script, no assets): one bar a month, the latest value written out, each bar's value in its
tooltip."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT = 360, 176
TOP, BOTTOM, LEFT = 34, 146, 4  # the bars' area (y) and left margin
GAP = 0.28  # of a bar's slot left empty between bars


def month_chart(bars: list[tuple[str, float | None]], unit: str, title: str, latest: str) -> str:
    """Vertical bars, one per (month label, value), scaled to the largest; a missing month has
    no bar. ``latest``: the word before the last month's value ("latest")."""
    top = max((v for _, v in bars if v is not None and v > 0), default=0.0) or 1.0
    slot = (WIDTH - LEFT) / max(len(bars), 1)
    last = next((v for _, v in reversed(bars) if v is not None), None)
    shown = "—" if last is None else f"{last:,.0f} {unit}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f'<text x="0" y="14" class="t">{escape(title)}</text>',
        f'<text x="{WIDTH}" y="14" class="v" text-anchor="end">'
        f"{escape(latest)}: {escape(shown)}</text>",
        f'<line x1="{LEFT}" y1="{BOTTOM}" x2="{WIDTH}" y2="{BOTTOM}" class="axis"/>',
        f'<text x="{LEFT}" y="{TOP - 4}" class="l">{top:,.0f}</text>',
    ]
    for i, (label, value) in enumerate(bars):
        x = LEFT + i * slot
        centre = x + slot / 2
        if value is not None:
            height = max(1.0, (BOTTOM - TOP) * max(value, 0.0) / top)
            parts.append(
                f'<rect x="{x + slot * GAP / 2:.1f}" y="{BOTTOM - height:.1f}" '
                f'width="{slot * (1 - GAP):.1f}" height="{height:.1f}" class="b">'
                f"<title>{escape(label)}: {value:,.0f} {escape(unit)}</title></rect>"
            )
        parts.append(
            f'<text x="{centre:.1f}" y="{BOTTOM + 16}" class="l" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
