"""A table's key proved unique from its files (features.sources.key_order): proved only when
every file's keys rise and the files' ranges are apart; anything else proves nothing and the
validation counts the repeats by grouping."""

from datetime import date

import pyarrow as arrow
import pyarrow.parquet as pq
import pytest

from features.schema import validate_warehouse
from features.sources.key_order import keys_rise
from tests.features.test_schema import CLEAN_ROWS, Bank

KEY = ("customer_id", "month", "product")
JAN, FEB = date(2024, 1, 31), date(2024, 2, 29)


def _files(folder, *parts, row_group_size=None):
    """One parquet file per part (a list of key tuples), named so that the glob's order is
    the parts' order."""
    paths = []
    for i, rows in enumerate(parts):
        columns = list(zip(*rows, strict=True)) if rows else [[], [], []]
        table = arrow.table(
            {
                "customer_id": arrow.array(columns[0], arrow.int64()),
                "month": arrow.array(columns[1], arrow.date32()),
                "product": arrow.array(columns[2], arrow.string()),
            }
        )
        path = folder / f"part-{i:05d}.parquet"
        pq.write_table(table, path, row_group_size=row_group_size)
        paths.append(path)
    return paths


def test_sorted_files_apart_prove_the_key_whatever_order_they_are_read_in(tmp_path):
    low = [(1, JAN, "card"), (1, JAN, "loan"), (1, FEB, "card"), (2, JAN, "card")]
    high = [(3, JAN, "card"), (4, JAN, "card")]
    empty = []

    # the glob reads the high file first: the ranges are compared sorted
    assert keys_rise(_files(tmp_path, high, empty, low), KEY)


@pytest.mark.parametrize(
    "parts",
    [
        # a repeat inside a file
        [[(1, JAN, "card"), (1, JAN, "card")]],
        # not in key order inside a file (no repeat: the proof cannot tell, so it says no)
        [[(2, JAN, "card"), (1, JAN, "card")]],
        # the last column decides a tie of the others
        [[(1, JAN, "loan"), (1, JAN, "card")]],
        # each file rises, but their ranges overlap (a repeat across files)
        [[(1, JAN, "card"), (3, JAN, "card")], [(3, JAN, "card"), (4, JAN, "card")]],
        [[(1, JAN, "card"), (5, JAN, "card")], [(3, JAN, "card"), (4, JAN, "card")]],
        # a null key
        [[(1, JAN, "card"), (None, FEB, "card")]],
    ],
)
def test_anything_but_rising_apart_files_proves_nothing(tmp_path, parts):
    assert not keys_rise(_files(tmp_path, *parts), KEY)


def test_a_repeat_across_row_groups_of_one_file_proves_nothing(tmp_path):
    rows = [(1, JAN, "card"), (2, JAN, "card"), (2, JAN, "card"), (3, JAN, "card")]

    # row groups of two rows: each rises; the repeat straddles the two groups
    (path,) = _files(tmp_path, rows, row_group_size=2)
    assert pq.ParquetFile(path).num_row_groups == 2
    assert not keys_rise([path], KEY)
    (path,) = _files(tmp_path, sorted(set(rows)), row_group_size=2)
    assert keys_rise([path], KEY)


def test_files_whose_ids_differ_in_kind_prove_nothing(tmp_path):
    numbers = tmp_path / "a.parquet"
    texts = tmp_path / "b.parquet"
    pq.write_table(arrow.table({"txn_id": arrow.array([1, 2], arrow.int64())}), numbers)
    pq.write_table(arrow.table({"txn_id": arrow.array(["C1", "C2"])}), texts)

    assert keys_rise([numbers], ("txn_id",))
    assert not keys_rise([numbers, texts], ("txn_id",))


def test_a_repeat_across_two_sorted_parts_is_counted_by_the_validation(tmp_path):
    # both parts rise row after row; the proof fails on their overlap and the keys are
    # grouped: the repeat is reported as it would be from one unsorted file
    warehouse = Bank().write(tmp_path)
    rows = CLEAN_ROWS["transactions"]
    schema = pq.read_schema(warehouse / "transactions" / "part-00000.parquet")
    again = [rows[-1], {**rows[-1], "txn_id": 99}]
    pq.write_table(
        arrow.Table.from_pylist(again, schema=schema),
        warehouse / "transactions" / "part-00001.parquet",
    )

    violations = validate_warehouse(warehouse)

    assert [(v.table, v.rule, v.count, v.examples) for v in violations] == [
        ("transactions", "unique key (txn_id)", 1, [f"txn_id={rows[-1]['txn_id']}"])
    ]
