"""Load a prepared flat table (one row per customer, a 0/1 target) from a dirty CSV.

For data scientists who already have a modelling table: the delimiter is sniffed, "?" and blank
cells are missing, numeric-looking columns become numbers and text columns ``category``, columns
that merely identify rows are dropped with a warning, and every data problem is reported as a
:class:`FlatTableError` whose message names the column, the line numbers and the values.
"""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DELIMITERS: tuple[str, ...] = (",", ";")
MISSING_TOKENS: frozenset[str] = frozenset({"", "?"})
POSITIVE_TOKENS: frozenset[str] = frozenset({"1", "yes", "y", "true"})
NEGATIVE_TOKENS: frozenset[str] = frozenset({"0", "no", "n", "false"})
MAX_EXAMPLES = 5
# Below this many rows distinct values are common by chance (three customers, three cities),
# so a column is only taken for an identifier in a table big enough to tell.
MIN_ROWS_FOR_IDENTIFIER = 20
# A column this numeric but for a few cells is a number column with typos, worth a warning.
MOSTLY_NUMERIC_SHARE = 0.9


class FlatTableError(Exception):
    """A flat table that cannot be used; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class FlatTable:
    """A flat table ready for a model.

    Attributes
    ----------
    features : pd.DataFrame
        Model inputs: numbers as float64/int64, text as ``category``.
    target : pd.Series
        int8 0/1 on the same index as ``features``.
    ids : pd.Series or None
        The id column, if one was named.
    dropped : dict[str, str]
        Column -> why it is not a feature ("--drop", "id", "empty", "unique per row").
    warnings : list[str]
        Human-readable notes on what was dropped, skipped or guessed.
    delimiter : str
        The field delimiter found in the header.
    """

    features: pd.DataFrame
    target: pd.Series
    ids: pd.Series | None
    dropped: dict[str, str]
    warnings: list[str]
    delimiter: str


def load_flat_table(
    path: Path,
    target: str,
    positive: str | None = None,
    id_column: str | None = None,
    drop: tuple[str, ...] = (),
) -> FlatTable:
    """Read a CSV file into features, a 0/1 target and optional ids.

    Parameters
    ----------
    path : Path
        A ","- or ";"-separated file with a header line.
    target : str
        The column to predict.
    positive : str, optional
        The target value that means 1; needed unless the target is yes/no, true/false, y/n, 1/0.
    id_column : str, optional
        A column identifying rows, returned as ``ids`` rather than used as a feature.
    drop : tuple of str
        Columns that must not be features (leaks, free text).

    Raises
    ------
    FlatTableError
        For any problem in the file or the arguments.
    """
    path = Path(path)
    warnings: list[str] = []
    text = _read_text(path, warnings)
    delimiter = sniff_delimiter(text.split("\n", 1)[0])
    header, rows, lines = _parse_rows(text, delimiter, path, warnings)

    _check_columns(header, target, id_column, drop, path)

    raw = pd.DataFrame(rows, columns=header, dtype=object)
    target_values = _encode_target(raw[target], lines, target, positive)
    dropped = {name: "--drop" for name in drop}
    ids = None
    if id_column is not None:
        ids = _read_ids(raw[id_column], id_column, warnings)
        dropped.setdefault(id_column, "id")
    features = _feature_columns(raw, target, dropped, lines, delimiter, warnings)
    if not features:
        raise FlatTableError(
            f"no feature columns left in {path.name} after taking out the target and "
            f"{sorted(dropped)}: the table needs at least one input column"
        )
    return FlatTable(
        features=pd.DataFrame(features),
        target=target_values,
        ids=ids,
        dropped=dropped,
        warnings=warnings,
        delimiter=delimiter,
    )


def _check_columns(
    header: list[str], target: str, id_column: str | None, drop: tuple[str, ...], path: Path
) -> None:
    """The target, the id column and the dropped columns are in the header and distinct."""
    _require_column(target, header, "target")
    if id_column is not None:
        _require_column(id_column, header, "--id")
        if id_column == target:
            raise FlatTableError(f"--id {id_column!r} is also the target: pick another id column")
    missing = [name for name in drop if name not in header]
    if missing:
        raise FlatTableError(
            f"--drop names {len(missing)} column(s) not in {path.name}: {missing}; "
            f"the columns are {_list_columns(header)}"
        )
    if target in drop:
        raise FlatTableError(f"--drop names the target {target!r}: remove it from --drop")


def _feature_columns(
    raw: pd.DataFrame,
    target: str,
    dropped: dict[str, str],
    lines: list[int],
    delimiter: str,
    warnings: list[str],
) -> dict[str, pd.Series]:
    """Every column but the target and ``dropped`` read as a feature; empty columns and
    columns unique per row are added to ``dropped`` instead."""
    features: dict[str, pd.Series] = {}
    for name in raw.columns:
        if name == target or name in dropped:
            continue
        column = _read_column(raw[name], name, lines, delimiter, warnings)
        if column.isna().all():
            dropped[name] = "empty"
            warnings.append(f"column {name} has no values: dropped")
        elif _identifies_rows(column):
            dropped[name] = "unique per row"
            warnings.append(
                f"column {name} is unique per row ({len(column):,} values): dropped"
                f" — pass --id {name} if it identifies rows"
            )
        else:
            features[name] = column
    return features


def sniff_delimiter(header_line: str) -> str:
    """The delimiter among "," and ";" that occurs most often outside quotes in the header."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return max(DELIMITERS, key=lambda delimiter: counts[delimiter])


def existing(path: Path) -> Path:
    """``path``, when there is such a file (the command checks it before MLflow loads)."""
    if not Path(path).exists():
        raise FlatTableError(f"file not found: {path}")
    return Path(path)


def _read_text(path: Path, warnings: list[str]) -> str:
    existing(path)
    if not path.is_file():
        raise FlatTableError(f"{path} is not a file: pass the CSV file itself")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheets on Windows save Windows-1252; latin-1 decodes whatever is left.
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        warnings.append(f"{path.name} is not UTF-8: read as Windows-1252; check accented text")
    if not text.strip():
        raise FlatTableError(f"{path} is empty: expected a header line and data rows")
    return text


def _parse_rows(
    text: str, delimiter: str, path: Path, warnings: list[str]
) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, stripped data rows and the file line each row starts on (header = line 1)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader)]
    except (StopIteration, csv.Error) as error:
        raise FlatTableError(f"{path} has no readable header line: {error}") from None
    if all(name in MISSING_TOKENS for name in header):
        raise FlatTableError(f"{path} has no header: line 1 is blank")
    if all(_is_number(name) for name in header):
        raise FlatTableError(
            f"{path} has no header: line 1 holds only numbers ({header[:MAX_EXAMPLES]}); "
            "add a line of column names"
        )
    header = [name or f"unnamed_{i + 1}" for i, name in enumerate(header)]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise FlatTableError(f"{path.name} repeats column names in its header: {repeated}")

    rows: list[list[str]] = []
    lines: list[int] = []
    empty_lines: list[int] = []
    ragged: list[tuple[int, int]] = []
    start = reader.line_num + 1
    try:
        for record in reader:
            cells = [cell.strip() for cell in record]
            if all(cell in MISSING_TOKENS for cell in cells):
                empty_lines.append(start)
            elif len(cells) != len(header):
                ragged.append((start, len(cells)))
            else:
                rows.append(cells)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise FlatTableError(f"{path.name} line {start}: cannot parse ({error})") from None

    if ragged:
        found = ", ".join(f"line {line} has {count}" for line, count in ragged[:MAX_EXAMPLES])
        raise FlatTableError(
            f"{len(ragged)} row(s) of {path.name} have the wrong number of fields: expected "
            f"{len(header)} (as in the header), found {found}{_more(len(ragged))} — a stray "
            f"{delimiter!r} or an unquoted value containing it; fix or remove these rows"
        )
    if empty_lines:
        shown = ", ".join(str(line) for line in empty_lines[:MAX_EXAMPLES])
        warnings.append(
            f"skipped {len(empty_lines)} row(s) with every cell missing: "
            f"line {shown}{_more(len(empty_lines))}"
        )
    if not rows:
        raise FlatTableError(f"{path.name} has a header but no data rows")
    return header, rows, lines


def _read_column(
    raw: pd.Series, name: str, lines: list[int], delimiter: str, warnings: list[str]
) -> pd.Series:
    """Numbers as int64/float64 when every present cell is a number, else ``category``."""
    missing = raw.isin(MISSING_TOKENS)
    present = raw[~missing]
    numbers = pd.to_numeric(present, errors="coerce")
    not_numbers = numbers.isna()
    if not_numbers.any() and delimiter == ";" and present.str.contains(",", regex=False).any():
        # In ";" files the comma is usually the decimal separator ("1,5").
        decimal = pd.to_numeric(present.str.replace(",", ".", regex=False), errors="coerce")
        if not decimal.isna().any():
            warnings.append(f"column {name} uses decimal commas: read as numbers")
            numbers, not_numbers = decimal, decimal.isna()
    if not not_numbers.any() and len(present):
        if not missing.any() and pd.api.types.is_integer_dtype(numbers.dtype):
            return numbers.astype("int64").rename(name)
        column = pd.Series(np.nan, index=raw.index, dtype="float64", name=name)
        column[~missing] = numbers.astype("float64")
        return column
    if len(present) and (~not_numbers).mean() >= MOSTLY_NUMERIC_SHARE:
        odd = not_numbers[not_numbers].index[:MAX_EXAMPLES]
        examples = ", ".join(f"line {lines[i]} ({present.loc[i]!r})" for i in odd)
        warnings.append(
            f"column {name} is numeric except {int(not_numbers.sum())} cell(s): {examples}"
            f"{_more(int(not_numbers.sum()))}; read as category — blank those cells or fix them"
            " to read it as numbers"
        )
    return raw.mask(missing).astype("category").rename(name)


def _identifies_rows(column: pd.Series) -> bool:
    """True for integer or text columns whose values are all distinct: row numbers, names."""
    if len(column) < MIN_ROWS_FOR_IDENTIFIER or column.isna().any():
        return False
    if not (isinstance(column.dtype, pd.CategoricalDtype) or pd.api.types.is_integer_dtype(column)):
        return False
    return column.nunique() == len(column)


def _read_ids(raw: pd.Series, name: str, warnings: list[str]) -> pd.Series:
    """Ids as int64 when they are all integers, else as text (never floats: they round)."""
    missing = raw.isin(MISSING_TOKENS)
    numbers = pd.to_numeric(raw, errors="coerce")
    if not missing.any() and pd.api.types.is_integer_dtype(numbers.dtype):
        ids = numbers.astype("int64").rename(name)
    else:
        ids = raw.mask(missing).astype("str").rename(name)
    if missing.any():
        warnings.append(f"id column {name} is missing on {int(missing.sum())} row(s)")
    repeated = ids[~missing].duplicated().sum()
    if repeated:
        warnings.append(f"id column {name} repeats {int(repeated)} value(s): ids are not unique")
    return ids


def _encode_target(
    raw: pd.Series, lines: list[int], target: str, positive: str | None
) -> pd.Series:
    """0/1 as int8; every missing or unreadable cell is an error naming its line."""
    canonical = raw.map(_canonical)
    missing = raw.isin(MISSING_TOKENS)
    values = canonical[~missing]
    if positive is not None:
        wanted = _canonical(positive.strip())
        if not (values == wanted).any():
            raise FlatTableError(
                f"--positive {positive!r} does not occur in target {target!r}; its values are "
                f"{_list_values(raw[~missing])}"
            )
        encoded = (canonical == wanted).astype("int8")
        invalid = missing
    else:
        known = values.isin(POSITIVE_TOKENS | NEGATIVE_TOKENS)
        has_both = values.isin(POSITIVE_TOKENS).any() and values.isin(NEGATIVE_TOKENS).any()
        if not known.all() and not has_both:
            raise FlatTableError(
                f"target {target!r} has values {_list_values(raw[~missing])}; "
                "pass --positive VALUE to say which one is the positive class"
            )
        encoded = canonical.isin(POSITIVE_TOKENS).astype("int8")
        invalid = missing | ~canonical.isin(POSITIVE_TOKENS | NEGATIVE_TOKENS)
    if invalid.any():
        bad = invalid[invalid].index
        shown = ", ".join(f"line {lines[i]} ({raw.loc[i]!r})" for i in bad[:MAX_EXAMPLES])
        raise FlatTableError(
            f"target {target!r} has {len(bad)} missing or invalid cell(s): {shown}"
            f"{_more(len(bad))} — fix or remove these rows"
        )
    if encoded.nunique() < 2:
        only = "positive (1)" if encoded.iloc[0] else "negative (0)"
        raise FlatTableError(
            f"target {target!r} has a single class: all {len(encoded):,} rows are {only}"
            f" (values {_list_values(raw)}); a model needs both classes"
        )
    return encoded.rename(target)


def _canonical(value: str) -> str:
    """Case-folded text, with numbers written one way ("1.0" and "1" are both "1")."""
    try:
        number = float(value)
    except ValueError:
        return value.casefold()
    return f"{number:g}" if np.isfinite(number) else value.casefold()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _require_column(name: str, header: Sequence[str], role: str) -> None:
    if name in header:
        return
    close = difflib.get_close_matches(name, header, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise FlatTableError(
        f"{role} column {name!r} is not in the file{hint}; the columns are {_list_columns(header)}"
    )


def _list_columns(header: Sequence[str]) -> str:
    return ", ".join(header)


def _list_values(raw: pd.Series, limit: int = 10) -> list[str]:
    distinct = sorted(raw.astype("str").unique())
    return distinct[:limit] + ([f"… {len(distinct) - limit} more"] if len(distinct) > limit else [])


def _more(count: int) -> str:
    return f" and {count - MAX_EXAMPLES} more" if count > MAX_EXAMPLES else ""
