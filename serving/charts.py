"""Chart helpers shared by the HTML reports (portfolio and monitoring): a figure inlined as a
PNG ``<img>``, and chart words in the report's language.

Chinese charts use a CJK font when the machine has one (`make demo` / `make test` install Noto
Sans CJK); elsewhere :func:`chart_language` falls back to English rather than drawing boxes.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from pathlib import Path

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "Source Han Sans SC")


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """A font family that has Chinese glyphs, registering Noto CJK files if matplotlib's cache
    predates them; None when the machine has none."""
    known = {f.name for f in font_manager.fontManager.ttflist}
    if not any(name in known for name in CJK_FONTS):
        for folder in (Path("/usr/share/fonts"), Path("/usr/local/share/fonts")):
            for path in folder.rglob("*CJK*") if folder.is_dir() else ():
                if path.suffix.lower() in (".ttc", ".otf", ".ttf"):
                    font_manager.fontManager.addfont(str(path))
        known = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in known), None)


def chart_language(lang: str) -> str:
    """The language charts are drawn in: ``lang``, or English for Chinese without a CJK font."""
    return lang if lang != "zh" or cjk_font() else "en"


def png_img(fig: Figure) -> str:
    """``fig`` as an ``<img>`` tag with the PNG inlined (no file, no CDN)."""
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img alt='' src='data:image/png;base64,{data}'>"


def font_of(lang: str) -> dict:
    """Text properties for chart words in ``lang`` (a CJK family for Chinese)."""
    font = cjk_font() if lang == "zh" else None
    return {"fontfamily": font} if font else {}


def legend_font(lang: str) -> dict:
    """Legend font properties (``prop=``) in ``lang``: small, a CJK family for Chinese."""
    font = cjk_font() if lang == "zh" else None
    return {"size": 8, **({"family": font} if font else {})}


def axis_label(ax, lang: str, title: str, xlabel: str, ylabel: str | None = None) -> None:
    """Title and axis labels of ``ax`` in ``lang`` (y tick labels too, for Chinese names)."""
    font = font_of(lang)
    ax.set_title(title, **font)
    ax.set_xlabel(xlabel, **font)
    if ylabel:
        ax.set_ylabel(ylabel, **font)
    for tick in ax.get_yticklabels() if font else ():
        tick.set_fontfamily(font["fontfamily"])
