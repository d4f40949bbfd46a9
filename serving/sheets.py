"""One CSV (machine names) and one Excel sheet (for people) per retention list."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from features.config import BankConfig
from serving.lists import ACTIONS, LIST_COLUMNS

HEADERS = {
    "rank": ("排名", "Rank"),
    "customer_id": ("客户号", "Customer ID"),
    "customer_name": ("客户姓名", "Customer"),
    "tier": ("客户等级", "Tier"),
    "pyramid_level": ("金字塔层级", "Pyramid level"),
    "p_churn": ("流失概率", "Churn probability"),
    "contribution_12m": ("年贡献度(元)", "Annual contribution (CNY)"),
    "expected_loss": ("预期损失(元)", "Expected loss (CNY)"),
    "reason_1": ("原因一", "Reason 1"),
    "reason_2": ("原因二", "Reason 2"),
    "reason_3": ("原因三", "Reason 3"),
    "next_best_offer": ("推荐产品", "Next best offer"),
    "offer_propensity": ("购买意向", "Offer propensity"),
    "action": ("建议行动", "Suggested action"),
}
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
    index = 0 if lang == "zh" else 1
    book = Workbook()
    sheet = book.active
    sheet.title = list_id[:31]
    sheet.append([HEADERS[c][index] for c in LIST_COLUMNS])
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
                value = ACTIONS[value][index]
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
