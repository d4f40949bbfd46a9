"""One CSV (machine names) and one Excel sheet (for people) per retention list."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from features.config import BankConfig
from serving.lists import LIST_COLUMNS
from serving.texts import ACTIONS, HEADERS, text

PERCENT = {"p_churn", "offer_propensity"}
MONEY = {"contribution_12m", "expected_loss"}
WIDTHS = {"reason_1": 42, "reason_2": 42, "reason_3": 42, "customer_name": 14, "action": 22,
          "next_best_offer": 18}  # fmt: skip
HEADER_FILL = PatternFill("solid", fgColor="1F3B57")


def write_list_files(folder: Path, lists: pd.DataFrame, lang: str, config: BankConfig) -> list[str]:
    """Write ``<list_id>.csv`` and ``<list_id>.xlsx`` for every list; return the list ids."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for list_id, rows in lists.groupby("list_id", sort=True):
        rows = rows[list(LIST_COLUMNS)]
        rows.to_csv(folder / f"{list_id}.csv", index=False, encoding="utf-8")
        _write_xlsx(folder / f"{list_id}.xlsx", rows, lang, str(list_id), config)
        ids.append(str(list_id))
    return ids


def _write_xlsx(
    path: Path, rows: pd.DataFrame, lang: str, list_id: str, config: BankConfig
) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = list_id[:31]
    sheet.append([text(HEADERS, c, lang) for c in LIST_COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(vertical="center", wrap_text=True)
    for record in rows.itertuples(index=False):
        values = []
        for column, value in zip(LIST_COLUMNS, record, strict=True):
            if column == "next_best_offer":
                value = config.product_label(value, lang) if isinstance(value, str) else ""
            elif column == "tier":
                value = config.tiers.label(value, lang) if isinstance(value, str) else ""
            elif column == "action":
                value = text(ACTIONS, value, lang)
            elif pd.isna(value):
                value = None
            values.append(value.item() if hasattr(value, "item") else value)
        sheet.append(values)
    for i, column in enumerate(LIST_COLUMNS, start=1):
        letter = get_column_letter(i)
        sheet.column_dimensions[letter].width = WIDTHS.get(column, 13)
        if column in PERCENT or column in MONEY:
            number_format = "0.0%" if column in PERCENT else "#,##0"
            for (cell,) in sheet.iter_rows(min_row=2, min_col=i, max_col=i):
                cell.number_format = number_format
    sheet.freeze_panes = "A2"
    book.save(path)
