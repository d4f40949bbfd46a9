"""load_flat_table on the two public bank tables and on small dirty CSVs, one fault at a time."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.sources.flat import FlatTableError, load_flat_table, sniff_delimiter

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
CHURN = DATASETS / "Churn_Modelling.csv"
BANK = DATASETS / "bank-full.csv"


def write_csv(folder: Path, lines: list[str], *, crlf: bool = False, bom: bool = False) -> Path:
    """Write ``lines`` byte for byte, so line endings and the BOM are what the test says."""
    ending = "\r\n" if crlf else "\n"
    path = folder / "table.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + (ending.join(lines) + ending).encode())
    return path


def many_rows(count: int) -> list[str]:
    """``count`` rows of name,code,salary,segment,churned: names and codes all distinct."""
    return [
        f"name{i},{1000 + i},{30000 + i * 17.25:.2f},{'ab'[i % 2]},{'yes' if i % 3 else 'no'}"
        for i in range(count)
    ]


# --- the public tables ------------------------------------------------------------------------


def test_datasets_folder_is_the_shared_one_beside_the_repo():
    repo = Path(__file__).resolve().parents[2]
    assert DATASETS == repo.parent / "shared" / "datasets"
    assert CHURN.is_file() and BANK.is_file()


def test_churn_modelling_loads_with_ids_and_drops():
    table = load_flat_table(CHURN, "Exited", id_column="CustomerId", drop=("RowNumber", "Surname"))
    assert table.features.shape == (10_000, 10)
    assert table.delimiter == ","
    assert table.target.dtype == "int8"
    assert table.target.mean() == pytest.approx(0.204, abs=0.001)
    assert table.target.index.equals(table.features.index)
    assert table.ids is not None and table.ids.name == "CustomerId"
    assert table.ids.dtype == "int64" and table.ids.is_unique
    assert table.dropped == {"RowNumber": "--drop", "Surname": "--drop", "CustomerId": "id"}
    for name in ("Geography", "Gender"):
        assert isinstance(table.features[name].dtype, pd.CategoricalDtype)
    assert set(table.features["Geography"].cat.categories) == {"France", "Germany", "Spain"}
    assert table.features["EstimatedSalary"].dtype == "float64"
    assert table.features["Age"].dtype == "int64"
    assert table.features.select_dtypes(["object", "string"]).empty


def test_churn_modelling_without_hints_drops_identifiers_but_keeps_surnames():
    table = load_flat_table(CHURN, "Exited")
    assert table.dropped == {"RowNumber": "unique per row", "CustomerId": "unique per row"}
    assert any(
        "column CustomerId is unique per row (10,000 values): dropped" in w
        and "pass --id CustomerId" in w
        for w in table.warnings
    )
    # "H?" is a mangled surname, not a missing cell: only a cell that is exactly "?" is missing.
    surnames = table.features["Surname"]
    assert isinstance(surnames.dtype, pd.CategoricalDtype)
    assert "H?" in surnames.cat.categories and surnames.notna().all()


def test_bank_full_loads_semicolon_quoted_file():
    table = load_flat_table(BANK, "y", drop=("duration",))
    assert table.delimiter == ";"
    assert table.features.shape == (45_211, 15)
    assert "duration" not in table.features and "y" not in table.features
    assert table.target.mean() == pytest.approx(0.117, abs=0.001)
    for name in ("job", "marital", "education", "month", "poutcome"):
        assert isinstance(table.features[name].dtype, pd.CategoricalDtype)
    assert "management" in table.features["job"].cat.categories  # quotes stripped
    assert table.features["balance"].dtype == "int64"
    assert table.dropped == {"duration": "--drop"}


# --- dirty small files ------------------------------------------------------------------------


def test_crlf_bom_semicolon_file_loads_and_question_marks_are_missing(tmp_path):
    path = write_csv(
        tmp_path,
        [
            '"age";"city";"note";"balance";"left"',
            '41;"Porto";"a;b";1,5;"yes"',
            '?;"Lisboa";" ";?;"no"',
            '35;?;"x";2,25;"no"',
        ],
        crlf=True,
        bom=True,
    )
    table = load_flat_table(path, "left")
    assert table.delimiter == ";"
    assert list(table.features.columns) == ["age", "city", "note", "balance"]  # no BOM in "age"
    assert table.features["age"].dtype == "float64"
    assert table.features["age"].isna().tolist() == [False, True, False]
    assert table.features["city"].isna().tolist() == [False, False, True]
    assert table.features["note"].tolist()[0] == "a;b"
    assert pd.isna(table.features["note"].tolist()[1])  # whitespace-only cell
    assert table.features["balance"].tolist()[::2] == [1.5, 2.25]
    assert any("decimal commas" in w for w in table.warnings)
    assert table.target.tolist() == [1, 0, 0]


def test_unique_text_and_integer_columns_dropped_unique_floats_kept(tmp_path):
    path = write_csv(tmp_path, ["name,code,salary,segment,churned", *many_rows(30)])
    table = load_flat_table(path, "churned")
    assert table.dropped == {"name": "unique per row", "code": "unique per row"}
    assert (
        "column name is unique per row (30 values): dropped — pass --id name "
        "if it identifies rows" in table.warnings
    )
    assert list(table.features.columns) == ["salary", "segment"]
    assert table.features["salary"].dtype == "float64"


def test_id_column_is_kept_apart_from_features(tmp_path):
    path = write_csv(tmp_path, ["name,code,salary,segment,churned", *many_rows(30)])
    table = load_flat_table(path, "churned", id_column="name")
    assert table.ids is not None and table.ids.tolist()[:2] == ["name0", "name1"]
    assert table.dropped == {"name": "id", "code": "unique per row"}
    assert not any("column name" in w for w in table.warnings)


def test_few_rows_are_too_few_to_call_a_column_an_identifier(tmp_path):
    path = write_csv(tmp_path, ["name,code,salary,segment,churned", *many_rows(3)])
    table = load_flat_table(path, "churned")
    assert table.dropped == {}
    assert list(table.features.columns) == ["name", "code", "salary", "segment"]


def test_rows_with_every_cell_missing_are_skipped_with_a_warning(tmp_path):
    path = write_csv(tmp_path, ["a,b,y", "1,x,1", ",,", "2,z,0", "", "?, ?,?", "3,x,1"])
    table = load_flat_table(path, "y")
    assert len(table.features) == 3 and table.target.tolist() == [1, 0, 1]
    assert table.features.index.equals(pd.RangeIndex(3))
    assert "skipped 3 row(s) with every cell missing: line 3, 5, 6" in table.warnings


def test_target_spellings_need_no_positive(tmp_path):
    for values, expected in [
        (["1.0", "0.0", "1"], [1, 0, 1]),
        (["TRUE", "false", "True"], [1, 0, 1]),
        (["Y", "n", "N"], [1, 0, 0]),
        (["Yes", "NO", "yes"], [1, 0, 1]),
    ]:
        path = write_csv(tmp_path, ["a,y", *(f"{i},{v}" for i, v in enumerate(values))])
        assert load_flat_table(path, "y").target.tolist() == expected


def test_multivalued_target_asks_for_positive_then_uses_it(tmp_path):
    path = write_csv(tmp_path, ["a,status", "1,active", "2,churned", "3,dormant", "4,Churned"])
    with pytest.raises(FlatTableError) as error:
        load_flat_table(path, "status")
    message = str(error.value)
    assert message.startswith("target 'status' has values [")
    assert "'active'" in message and "'dormant'" in message
    assert "pass --positive VALUE to say which one is the positive class" in message

    table = load_flat_table(path, "status", positive="churned")
    assert table.target.tolist() == [0, 1, 0, 1]  # case does not matter
    assert table.target.dtype == "int8"


def test_positive_that_does_not_occur_is_an_error(tmp_path):
    path = write_csv(tmp_path, ["a,status", "1,active", "2,churned"])
    with pytest.raises(FlatTableError, match=r"--positive 'left' does not occur in target"):
        load_flat_table(path, "status", positive="left")


def test_bad_target_cells_are_named_with_lines_and_values(tmp_path):
    lines = ["a,Exited", "1,0", "2,1", "3,0", "4,?", "5,1", "6,0", "7,1", "8, ", "9,maybe"]
    path = write_csv(tmp_path, lines)
    with pytest.raises(FlatTableError) as error:
        load_flat_table(path, "Exited")
    assert str(error.value).startswith(
        "target 'Exited' has 3 missing or invalid cell(s): "
        "line 5 ('?'), line 9 (''), line 10 ('maybe')"
    )


def test_many_bad_target_cells_show_five_and_count_the_rest(tmp_path):
    path = write_csv(tmp_path, ["a,y", "0,1", "0,0", *(f"{i}," for i in range(8))])
    with pytest.raises(FlatTableError) as error:
        load_flat_table(path, "y")
    message = str(error.value)
    assert "has 8 missing or invalid cell(s)" in message and "and 3 more" in message
    assert len(re.findall(r"line \d+", message)) == 5


def test_missing_target_cell_with_positive_is_an_error(tmp_path):
    path = write_csv(tmp_path, ["a,status", "1,active", "2,?", "3,churned"])
    with pytest.raises(FlatTableError, match=r"1 missing or invalid cell\(s\): line 3 \('\?'\)"):
        load_flat_table(path, "status", positive="churned")


def test_single_class_target_is_an_error(tmp_path):
    path = write_csv(tmp_path, ["a,y", "1,no", "2,no"])
    with pytest.raises(FlatTableError, match=r"target 'y' has a single class: all 2 rows"):
        load_flat_table(path, "y")


def test_ragged_rows_are_named_with_expected_and_found_counts(tmp_path):
    path = write_csv(tmp_path, ["a,b,y", "1,2,1", "3,4,0,9", "5,6,1", "7,0"])
    with pytest.raises(FlatTableError) as error:
        load_flat_table(path, "y")
    message = str(error.value)
    assert "2 row(s)" in message and "wrong number of fields" in message
    assert "expected 3" in message
    assert "line 3 has 4" in message and "line 5 has 2" in message


def test_missing_drop_column_lists_the_columns(tmp_path):
    path = write_csv(tmp_path, ["age,Surname,y", "1,a,1", "2,b,0"])
    with pytest.raises(FlatTableError) as error:
        load_flat_table(path, "y", drop=("Surname", "RowNumber"))
    message = str(error.value)
    assert "--drop" in message and "['RowNumber']" in message
    assert "the columns are age, Surname, y" in message


def test_missing_target_and_id_columns_are_errors(tmp_path):
    path = write_csv(tmp_path, ["age,Exited", "1,1", "2,0"])
    with pytest.raises(FlatTableError) as error:
        load_flat_table(path, "exited")
    assert "target column 'exited' is not in the file" in str(error.value)
    assert "did you mean 'Exited'?" in str(error.value)
    assert "the columns are age, Exited" in str(error.value)
    with pytest.raises(FlatTableError, match=r"--id column 'CustomerId' is not in the file"):
        load_flat_table(path, "Exited", id_column="CustomerId")


def test_target_in_drop_is_an_error(tmp_path):
    path = write_csv(tmp_path, ["age,y", "1,1", "2,0"])
    with pytest.raises(FlatTableError, match=r"--drop names the target 'y'"):
        load_flat_table(path, "y", drop=("y",))


def test_no_feature_left_is_an_error(tmp_path):
    path = write_csv(tmp_path, ["age,y", "1,1", "2,0"])
    with pytest.raises(FlatTableError, match=r"no feature columns left"):
        load_flat_table(path, "y", drop=("age",))


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        (None, "file not found"),
        ([], "is empty"),
        (["  ", "  "], "is empty"),
        (["", "1,2,1"], "has no header"),
        (["1,2,3", "4,5,6"], "has no header: line 1 holds only numbers"),
        (["a,b,y"], "has a header but no data rows"),
        (["a,a,y", "1,2,1"], "repeats column names in its header: ['a']"),
    ],
)
def test_files_without_a_usable_header_or_rows_are_errors(tmp_path, lines, words):
    path = tmp_path / "missing.csv" if lines is None else write_csv(tmp_path, lines)
    if lines == []:
        path.write_bytes(b"")
    with pytest.raises(FlatTableError) as error:
        load_flat_table(path, "y")
    assert words in str(error.value)


def test_mostly_numeric_column_with_typos_warns_with_lines(tmp_path):
    rows = [f"{i % 4}.5,{i % 2}" for i in range(20)]
    path = write_csv(tmp_path, ["amount,y", *rows, "12.5k,1"])
    table = load_flat_table(path, "y")
    assert isinstance(table.features["amount"].dtype, pd.CategoricalDtype)
    assert any(
        "column amount is numeric except 1 cell(s): line 22 ('12.5k')" in w for w in table.warnings
    )


def test_sniff_delimiter_ignores_delimiters_inside_quotes():
    assert sniff_delimiter('"a,b";"c,d";"e"') == ";"
    assert sniff_delimiter("a,b,c") == ","
    assert sniff_delimiter("a;b;c") == ";"


# --- property: the bytes on disk do not change the table ---------------------------------------

cells = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: f"{x:.3f}"),
    st.sampled_from(["?", "", "  ", "Porto", "Lisboa", "a,b", "x;y", 'say "hi"']),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    table=st.lists(st.tuples(cells, cells, st.sampled_from(["yes", "no"])), min_size=2, max_size=8),
    delimiter=st.sampled_from([",", ";"]),
    crlf=st.booleans(),
    bom=st.booleans(),
)
def test_delimiter_line_endings_and_bom_do_not_change_the_table(
    tmp_path, table, delimiter, crlf, bom
):
    table = [*table, ("1", "2", "yes"), ("3", "4", "no")]  # both classes, never all-empty

    def quote(cell: str) -> str:
        return '"' + cell.replace('"', '""') + '"'

    lines = [delimiter.join(["p", "q", "y"])]
    lines += [delimiter.join(quote(cell) for cell in row) for row in table]
    loaded = load_flat_table(write_csv(tmp_path, lines, crlf=crlf, bom=bom), "y")
    baseline = load_flat_table(
        write_csv(tmp_path, [",".join(["p", "q", "y"])] + [",".join(map(quote, r)) for r in table]),
        "y",
    )
    assert loaded.delimiter == delimiter
    pd.testing.assert_frame_equal(loaded.features, baseline.features)
    assert loaded.target.tolist() == [int(row[2] == "yes") for row in table]
    for position, name in enumerate(("p", "q")):
        missing = [row[position].strip() in ("", "?") for row in table]
        assert loaded.features[name].isna().tolist() == missing
