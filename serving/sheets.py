"""Files for people: one CSV and one Excel workbook per list, in the list's language
(``retain score`` writes them in every configured language, ``lists/<lang>/``).

CSV: UTF-8 with a BOM (Excel on Chinese Windows reads it right), headers and codes translated
(tiers, bands, actions, products), probabilities as percentages with one decimal, money to the
yuan. XLSX: the same rows with number formats, a frozen header, an autofilter and a legend
sheet. ``lists.parquet`` / ``growth.parquet`` next to the folder keep the raw values for
machines.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import zipfile
from collections.abc import Collection
from pathlib import Path
from xml.sax.saxutils import escape

import pandas as pd
from openpyxl.utils import get_column_letter

from features.config import BankConfig
from features.targets import CHURN
from serving.lists import GROWTH_COLUMNS, LIST_COLUMNS
from serving.texts import ACTIONS, BANDS, HEADERS, LEGEND, OFFERS, YES_NO, text

PERCENT = {CHURN.score, "offer_propensity"}
MONEY = {"contribution_12m", "expected_loss", "saved_value", "offer_amount", "value_added"}
WIDTHS = {
    "reason_1": 42,
    "reason_2": 42,
    "reason_3": 42,
    "customer_name": 14,
    "action": 26,
    "next_best_offer": 18,
    "growth_offer": 18,
}
HEADER_FILL = "1F3B57"
GROWTH_SUFFIX = "_growth"


def write_list_files(
    folder: Path,
    lists: pd.DataFrame,
    growth: pd.DataFrame,
    lang: str,
    config: BankConfig,
    only: Collection | None = None,
) -> None:
    """Write ``<list_id>.csv`` / ``.xlsx`` (retention) and ``<list_id>_growth.csv`` / ``.xlsx``
    for every list (``only``: for these list ids alone, the files being the same as when all
    are written).

    The rows are made readable once for all lists, then cut per list: thousands of small
    files, so per-file overhead (not rows) is what costs."""
    folder.mkdir(parents=True, exist_ok=True)
    for frame, columns, suffix in (
        (lists, LIST_COLUMNS, ""),
        (growth, GROWTH_COLUMNS, GROWTH_SUFFIX),
    ):
        if frame.empty:
            continue
        # a saved value only where the lists rank by it (an uplift champion): decided on every
        # list, so that a list's file does not depend on which others are written with it
        columns = [c for c in columns if c != "saved_value" or frame[c].notna().any()]
        if only is not None:
            frame = frame[frame["list_id"].isin(only)]
            if frame.empty:
                continue
        shown = for_people(frame[list(columns)], lang, config)
        headers = [text(HEADERS, c, lang) for c in columns]
        legend = _legend(lang, config)
        lines, tails = _csv_lines(shown), _tails(shown)
        header = pd.DataFrame(columns=headers).to_csv(index=False)
        for list_id, rows in shown.groupby(frame["list_id"].to_numpy(), sort=True):
            name = f"{list_id}{suffix}"
            at = shown.index.get_indexer(rows.index)
            if lines is None:
                rows.set_axis(headers, axis=1).to_csv(
                    folder / f"{name}.csv", index=False, encoding="utf-8-sig"
                )
            else:
                with open(folder / f"{name}.csv", "w", encoding="utf-8-sig", newline="") as f:
                    f.write(header + "".join(lines[i] for i in at))
            _write_xlsx(
                folder / f"{name}.xlsx", rows, lang, name, config, legend, [tails[i] for i in at]
            )


def link_files(source: Path, target: Path) -> None:
    """Every file of ``source`` also in ``target`` (a hard link, else a copy): files are
    written once and never changed in place, so a link is safe."""
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file():
            try:
                os.link(path, target / path.name)
            except OSError:
                shutil.copyfile(path, target / path.name)


def _csv_lines(shown: pd.DataFrame) -> list[str] | None:
    """Every row as the CSV line ``to_csv`` writes for it, rendered once for all lists (None
    when a value holds a line break: then a row is not one line)."""
    if not shown.index.is_unique:
        return None
    for column in shown.columns:
        values = shown[column]
        if values.dtype.kind not in "biuf" and values.astype(str).str.contains("[\r\n]").any():
            return None
    text_ = shown.to_csv(index=False, header=False)
    return [line + os.linesep for line in text_.split(os.linesep)[: len(shown)]]


def for_people(rows: pd.DataFrame, lang: str, config: BankConfig) -> pd.DataFrame:
    """The rows as a person reads them: codes translated, percentages and whole yuan."""
    out = rows.copy()
    for column in out.columns:
        values = out[column]
        if column in PERCENT:
            out[column] = (values.astype("float64") * 100).round(1)
        elif column in MONEY:
            out[column] = values.astype("float64").round(0).astype("Int64")
        elif column == "tier":
            out[column] = values.map(
                lambda v: config.tiers.label(v, lang) if isinstance(v, str) else ""
            )
        elif column == "risk_band":
            out[column] = values.map(lambda v: text(BANDS, v, lang))
        elif column == "leaving_now":
            out[column] = values.fillna(False).astype(bool).map(lambda v: text(YES_NO, v, lang))
        elif column == "action":
            out[column] = values.map(lambda v: text(ACTIONS, v, lang))
        elif column in ("next_best_offer", "growth_offer"):
            out[column] = values.map(lambda v: _offer(v, lang, config))
        elif column == "offer_date":
            out[column] = pd.to_datetime(values).dt.strftime("%Y-%m-%d")
    return out


def _offer(value, lang: str, config: BankConfig) -> str:
    if not isinstance(value, str):
        return ""
    return text(OFFERS, value, lang) if value in OFFERS else config.product_label(value, lang)


def _legend(lang: str, config: BankConfig) -> list[str]:
    bands = config.lists.risk_bands
    lines = []
    for key in ("retention", "growth", "expected_loss", "bands", "leaving", "context"):
        line = text(LEGEND, key, lang)
        lines.append(line.format(high=bands.high, medium=bands.medium) if key == "bands" else line)
    return lines


# The workbook is written as SpreadsheetML directly (a zip of a few XML parts): openpyxl took
# ~25 ms a file, mostly its fixed cost per workbook, and a bank has thousands of lists.
# Styles (cellXfs): 0 default, 1 header, 2 percent, 3 whole yuan, 4 text.
HEADER, PERCENT_STYLE, MONEY_STYLE, TEXT_STYLE = 1, 2, 3, 4
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_SML = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_CONTENT_TYPES = (
    f'{_XML}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_SML}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_SML}.worksheet+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet2.xml" ContentType="{_SML}.worksheet+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{_SML}.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    f'{_XML}<Relationships xmlns="{_PKG}">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK_RELS = (
    f'{_XML}<Relationships xmlns="{_PKG}">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}/worksheet" Target="worksheets/sheet2.xml"/>'
    f'<Relationship Id="rId3" Type="{_REL}/styles" Target="styles.xml"/>'
    "</Relationships>"
)
_XF = '<xf fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" numFmtId='
_STYLES = (
    f'{_XML}<styleSheet xmlns="{_MAIN}">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="0.0%"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><color rgb="00FFFFFF"/><name val="Calibri"/></font></fonts>'
    '<fills count="3"><fill><patternFill/></fill><fill><patternFill patternType="gray125"/></fill>'
    f'<fill><patternFill patternType="solid"><fgColor rgb="00{HEADER_FILL}"/>'
    f'<bgColor rgb="00{HEADER_FILL}"/></patternFill></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="5"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="2" borderId="0" xfId="0" applyFont="1" applyFill="1" '
    'applyAlignment="1"><alignment vertical="center" wrapText="1"/></xf>'
    f'{_XF}"164"/>{_XF}"3"/>{_XF}"49"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_FIXED_PARTS = (
    ("[Content_Types].xml", _CONTENT_TYPES),
    ("_rels/.rels", _ROOT_RELS),
    ("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS),
    ("xl/styles.xml", _STYLES),
)
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")  # not allowed in XML 1.0


def _string(ref: str, value: str, style: int = 0) -> str:
    return f'<c r="{ref}"{_string_tail(value, style)}'


def _string_tail(value: str, style: int = 0) -> str:
    shown = escape(_ILLEGAL.sub("", value))
    s = f' s="{style}"' if style else ""
    return f' t="inlineStr"{s}><is><t xml:space="preserve">{shown}</t></is></c>'


def _cell(ref: str, value, style: int) -> str:
    tail = _tail(value, style)
    return f'<c r="{ref}"{tail}' if tail else ""


def _missing(value) -> bool:
    """``pd.isna`` of a cell's value, without its cost: NaN and NaT are not equal to
    themselves."""
    return value is None or value is pd.NA or (type(value) is not str and value != value)


def _tail(value, style: int) -> str | None:
    """A cell's XML after its reference (``<c r="B7"`` + this), None for no cell."""
    if _missing(value):  # an empty cell keeps its column's format, as typed-in values would
        return f' s="{style}"/>' if style else None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, bool):
        return f' t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return _tail(None, style)
        if style == PERCENT_STYLE:
            value = value / 100
        s = f' s="{style}"' if style else ""
        return f"{s}><v>{value:.16g}</v></c>"  # as openpyxl writes numbers
    value = str(value)
    return _string_tail(value, style) if value else _tail(None, style)


def _id_tail(value) -> str | None:
    """A customer id's cell: text, as the bank writes it (never 1.0E+12)."""
    if _missing(value):
        return _tail(None, TEXT_STYLE)
    return _string_tail(str(value.item() if hasattr(value, "item") else value), TEXT_STYLE)


def _tails(rows: pd.DataFrame) -> list[tuple]:
    """Every row's cells without their references (:func:`_tail`), rendered once for all the
    lists they are cut into, column by column; a text is rendered once however often it
    recurs (tiers, bands, actions)."""
    columns = []
    for column in rows.columns:
        values = rows[column].to_numpy(dtype=object)
        if column == "customer_id":
            columns.append([_id_tail(v) for v in values])
            continue
        style, texts = _style(column), {}
        rendered = []
        for v in values:
            if type(v) is str:
                if v not in texts:
                    texts[v] = _tail(v, style)
                rendered.append(texts[v])
            else:
                rendered.append(_tail(v, style))
        columns.append(rendered)
    return list(zip(*columns, strict=True))


def _style(column: str) -> int:
    if column in PERCENT:
        return PERCENT_STYLE
    if column in MONEY:
        return MONEY_STYLE
    return TEXT_STYLE if column == "customer_id" else 0


def _sheet(rows: list[list[str]], widths: list[float], last: str | None) -> str:
    """A worksheet part from rows of cell XML; ``last``: the bottom-right cell of a header
    row frozen and filtered (None: neither)."""
    cols = "".join(
        f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>'
        for i, w in enumerate(widths, start=1)
    )
    view = (
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
        if last
        else ""
    )
    data = "".join(f'<row r="{i}">{"".join(r)}</row>' for i, r in enumerate(rows, start=1))
    dimension = f"A1:{last}" if last else "A1"
    return (
        f'{_XML}<worksheet xmlns="{_MAIN}" '
        f'xmlns:r="{_REL}"><dimension ref="{dimension}"/><sheetViews><sheetView '
        f'workbookViewId="0">{view}</sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>'
        f"<cols>{cols}</cols><sheetData>{data}</sheetData>"
        + (f'<autoFilter ref="A1:{last}"/>' if last else "")
        + "</worksheet>"
    )


def _sheet_name(name: str) -> str:
    return re.sub(r"[\[\]:*?/\\]", "_", name)[:31]


def _write_xlsx(
    path: Path,
    rows: pd.DataFrame,
    lang: str,
    name: str,
    config: BankConfig,
    legend: list[str] | None = None,
    tails: list[tuple] | None = None,
) -> None:
    """One list as a workbook: a bold, filled, frozen and filtered header row, percentages,
    whole yuan and ids as text, column widths, and a legend sheet. ``tails``: the rows' cells
    (:func:`_tails`), when rendered once for many lists."""
    columns = list(rows.columns)
    letters = [get_column_letter(i) for i in range(1, len(columns) + 1)]
    cells = [
        [
            _string(f"{x}1", text(HEADERS, c, lang), HEADER)
            for x, c in zip(letters, columns, strict=True)
        ]
    ]
    if tails is None:
        tails = _tails(rows)
    for n, row in enumerate(tails, start=2):
        cells.append([f'<c r="{x}{n}"{t}' for x, t in zip(letters, row, strict=True) if t])
    last = f"{letters[-1]}{len(cells)}"
    widths = [WIDTHS.get(c, 13) for c in columns]
    legend_title = text(LEGEND, "title", lang)
    lines = legend if legend is not None else _legend(lang, config)
    legend_rows = [[_string(f"A{i}", line)] for i, line in enumerate(lines, start=1)]
    title, legend_name = _sheet_name(name), _sheet_name(legend_title)
    quoted = title.replace("'", "''")
    workbook = (
        f'{_XML}<workbook xmlns="{_MAIN}" '
        f'xmlns:r="{_REL}"><bookViews><workbookView activeTab="0"/></bookViews><sheets>'
        f'<sheet name="{escape(title)}" sheetId="1" r:id="rId1"/>'
        f'<sheet name="{escape(legend_name)}" sheetId="2" r:id="rId2"/></sheets>'
        '<definedNames><definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
        f"{escape(chr(39) + quoted + chr(39))}!$A$1:${letters[-1]}${len(cells)}</definedName>"
        "</definedNames></workbook>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for part, content in _FIXED_PARTS:  # the same in every workbook: stored, not deflated
            book.writestr(part, content, compress_type=zipfile.ZIP_STORED)
        book.writestr("xl/workbook.xml", workbook)
        book.writestr("xl/worksheets/sheet1.xml", _sheet(cells, widths, last))
        book.writestr("xl/worksheets/sheet2.xml", _sheet(legend_rows, [100], None))
