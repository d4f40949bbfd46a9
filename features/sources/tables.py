"""Read a small table (rms, customers' names, products) from any warehouse location: a parquet
directory or a database URL — for the steps after the feature build that need one."""

from __future__ import annotations

import pandas as pd

from features.sources import database
from features.sources.files import read_table


def read_location_table(location, table: str, columns: list[str] | None = None) -> pd.DataFrame:
    if database.is_database_url(location):
        expr = database.connect(location).table(table)
        return (expr.select(*columns) if columns else expr).to_pandas()
    return read_table(database.as_location(location), table, columns)
