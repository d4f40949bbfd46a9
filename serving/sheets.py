"""Files for people: one CSV and one Excel workbook per list, in the list's language.

CSV: UTF-8 with a BOM (Excel on Chinese Windows reads it right), headers and codes translated
(tiers, bands, actions, products), probabilities as percentages with one decimal, money to the
yuan. XLSX: the same rows with number formats, a frozen header, an autofilter and a legend
sheet. ``lists.parquet`` / ``growth.parquet`` next to the folder keep the raw values for
machines.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from features.config import BankConfig
from serving.lists import GROWTH_COLUMNS, LIST_COLUMNS
from serving.texts import ACTIONS, BANDS, HEADERS, LEGEND, OFFERS, YES_NO, text

PERCENT = {"p_churn", "offer_propensity"}
MONEY = {"contribution_12m", "expected_loss", "offer_amount", "value_added"}
WIDTHS = {
    "reason_1": 42,
    "reason_2": 42,
    "reason_3": 42,
    "customer_name": 14,
    "action": 26,
    "next_best_offer": 18,
    "growth_offer": 18,
}
HEADER_FILL = PatternFill("solid", fgColor="1F3B57")
GROWTH_SUFFIX = "_growth"


def write_list_files(
    folder: Path, lists: pd.DataFrame, growth: pd.DataFrame, lang: str, config: BankConfig
) -> list[str]:
    """Write ``<list_id>.csv`` / ``.xlsx`` (retention) and ``<list_id>_growth.csv`` / ``.xlsx``
    for every list; return the retention list ids."""
    folder.mkdir(parents=True, exist_ok=True)
    for frame, columns, suffix in (
        (lists, LIST_COLUMNS, ""),
        (growth, GROWTH_COLUMNS, GROWTH_SUFFIX),
    ):
        for list_id, rows in frame.groupby("list_id", sort=True):
            shown = for_people(rows[list(columns)], lang, config)
            name = f"{list_id}{suffix}"
            shown.rename(columns=lambda c: text(HEADERS, c, lang)).to_csv(
                folder / f"{name}.csv", index=False, encoding="utf-8-sig"
            )
            _write_xlsx(folder / f"{name}.xlsx", shown, lang, name, config)
    return sorted(str(i) for i in lists["list_id"].unique())


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


def _write_xlsx(path: Path, rows: pd.DataFrame, lang: str, name: str, config: BankConfig) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = name[:31]
    columns = list(rows.columns)
    sheet.append([text(HEADERS, c, lang) for c in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(vertical="center", wrap_text=True)
    for record in rows.itertuples(index=False):
        values = [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in record]
        values = [
            v / 100 if c in PERCENT and v is not None else v
            for c, v in zip(columns, values, strict=True)
        ]
        sheet.append(values)
    for i, column in enumerate(columns, start=1):
        letter = get_column_letter(i)
        sheet.column_dimensions[letter].width = WIDTHS.get(column, 13)
        if column in PERCENT or column in MONEY:
            number_format = "0.0%" if column in PERCENT else "#,##0"
            for (cell,) in sheet.iter_rows(min_row=2, min_col=i, max_col=i):
                cell.number_format = number_format
        if column == "customer_id":  # ids stay text: leading zeros survive Excel
            for (cell,) in sheet.iter_rows(min_row=2, min_col=i, max_col=i):
                cell.value = None if cell.value is None else str(cell.value)
                cell.number_format = "@"
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    legend = book.create_sheet(text(LEGEND, "title", lang))
    bands = config.lists.risk_bands
    for key in ("retention", "growth", "expected_loss", "bands", "leaving", "context"):
        line = text(LEGEND, key, lang)
        legend.append(
            [line.format(high=bands.high, medium=bands.medium) if key == "bands" else line]
        )
    legend.column_dimensions["A"].width = 100
    book.save(path)
