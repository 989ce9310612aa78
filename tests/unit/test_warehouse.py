"""The warehouse loader against a real Postgres: rows before and after, and bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from steps.core.identifiers import InvalidIdentifierError
from steps.core.warehouse import BadInputError, Column, TableSpec, load_batches, load_file, read_batches

SPEC = TableSpec(
    "recs",
    (
        Column("rec_id", "bigint", nullable=False),
        Column("user_id", "bigint", nullable=False),
        Column("score", "double precision"),
        Column("label", "text"),
        Column("seen_at", "timestamptz"),
        Column("available", "boolean"),
    ),
    key=("rec_id",),
)
HEADER = "rec_id,user_id,score,label,seen_at,available\n"


def write_csv(tmp_path: Path, body: str, name: str = "recs.csv", header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text(header + body)
    return path


def rows(conn, table: str = "recs") -> list[tuple]:
    return conn.execute(f"SELECT * FROM {table} ORDER BY rec_id").fetchall()


def row_versions(conn, table: str = "recs") -> list[tuple]:
    """(rec_id, xmin): xmin changes whenever Postgres rewrites a row, even with equal values."""
    return conn.execute(f"SELECT rec_id, xmin::text FROM {table} ORDER BY rec_id").fetchall()


def test_csv_load_types_nulls_and_quoting(warehouse, tmp_path):
    path = write_csv(
        tmp_path,
        '1,10,0.5,"a, quoted",2019-02-08 10:00:00,true\n2,10,,,2019-02-08T10:00:01.5Z,false\n3,11,1e3,"",,\n',
    )
    result = load_file(warehouse, path, SPEC)
    assert (result.rows_read, result.rows_written) == (3, 3)
    utc = dt.UTC
    assert [tuple(r[:4]) for r in rows(warehouse)] == [
        (1, 10, 0.5, "a, quoted"),
        (2, 10, None, None),  # a bare empty field is NULL, as COPY reads CSV
        (3, 11, 1000.0, ""),  # a quoted empty field is an empty text
    ]
    assert [r[4] for r in rows(warehouse)] == [
        dt.datetime(2019, 2, 8, 10, 0, tzinfo=utc),
        dt.datetime(2019, 2, 8, 10, 0, 1, 500000, tzinfo=utc),
        None,
    ]
    assert [r[5] for r in rows(warehouse)] == [True, False, None]


def test_upsert_rerun_changes_no_row_and_updates_changed_ones(warehouse, tmp_path):
    first = write_csv(tmp_path, "1,10,0.5,a,,true\n2,10,0.7,b,,true\n", "day1.csv")
    load_file(warehouse, first, SPEC)
    before = row_versions(warehouse)

    rerun = load_file(warehouse, first, SPEC)
    assert rerun.rows_written == 0
    assert row_versions(warehouse) == before

    second = write_csv(tmp_path, "2,10,0.9,b,,true\n3,12,0.1,c,,false\n", "day2.csv")
    result = load_file(warehouse, second, SPEC)
    assert result.rows_written == 2  # rec 2 changed, rec 3 new; rec 1 untouched
    assert [(r[0], r[2]) for r in rows(warehouse)] == [(1, 0.5), (2, 0.9), (3, 0.1)]
    assert row_versions(warehouse)[0] == before[0]


def test_replace_partition_keeps_other_partitions(warehouse, tmp_path):
    spec = TableSpec("events", (Column("day", "date"), Column("n", "bigint")))
    batch = pa.RecordBatch.from_pydict(
        {"day": [dt.date(2024, 1, 1)] * 2, "n": [1, 2]},
        schema=pa.schema([("day", pa.date32()), ("n", pa.int64())]),
    )
    load_batches(warehouse, [batch], spec, mode="replace", partition={"day": dt.date(2024, 1, 1)})
    other = pa.RecordBatch.from_pydict({"day": [dt.date(2024, 1, 2)], "n": [7]}, schema=batch.schema)
    load_batches(warehouse, [other], spec, mode="replace", partition={"day": dt.date(2024, 1, 2)})
    again = pa.RecordBatch.from_pydict({"day": [dt.date(2024, 1, 1)], "n": [5]}, schema=batch.schema)
    load_batches(warehouse, [again], spec, mode="replace", partition={"day": dt.date(2024, 1, 1)})
    got = warehouse.execute("SELECT day, n FROM events ORDER BY day, n").fetchall()
    assert got == [(dt.date(2024, 1, 1), 5), (dt.date(2024, 1, 2), 7)]


def test_parquet_with_column_alias_and_int_to_float(warehouse, tmp_path):
    spec = TableSpec(
        "popular",
        (
            Column("rec_id", "bigint", nullable=False),
            Column("items_selected", "double precision", aliases=("items_cnt",)),
        ),
        key=("rec_id",),
    )
    path = tmp_path / "top.parquet"
    pq.write_table(pa.table({"rec_id": [1, 2], "items_cnt": [5, 7], "extra": ["x", "y"]}), path)
    load_file(warehouse, path, spec)
    assert warehouse.execute("SELECT rec_id, items_selected FROM popular ORDER BY 1").fetchall() == [
        (1, 5.0),
        (2, 7.0),
    ]


def test_a_load_holds_a_piece_of_the_file_at_a_time_not_the_file(warehouse, tmp_path, monkeypatch):
    """Arrow memory in use while a file loads, sampled at every batch, stays a small part of what
    the whole file takes in Arrow (deterministic: Arrow's allocator counts its bytes). Batches of
    10,000 rows here, so that a file of a few MB holds many of them."""
    import pyarrow.csv as pacsv

    from steps.core import warehouse as loader

    body = "".join(f"{i},{i % 7},{i / 3},label number {i},,true\n" for i in range(400_000))
    path = write_csv(tmp_path, body)
    whole_file = pacsv.read_csv(path).nbytes
    baseline, in_use = pa.total_allocated_bytes(), []

    def watched(*args, **kwargs):
        for batch in read_batches(*args, **kwargs, batch_rows=10_000):
            in_use.append(pa.total_allocated_bytes() - baseline)
            yield batch

    monkeypatch.setattr(loader, "read_batches", watched)
    result = loader.load_file(warehouse, path, SPEC)
    assert result.rows_read == 400_000 and len(in_use) > 10
    print(f"arrow memory in use: at most {max(in_use):,} bytes; the whole file: {whole_file:,}")
    assert max(in_use) < whole_file / 4, (max(in_use), whole_file)


GOOD = "1,10,0.5,a,,true\n2,11,0.6,b,,false\n"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "missing_column.csv",
            "rec_id,user_id,score\n1,2,0.5\n",
            r"missing column\(s\) label, seen_at, available",
        ),
        ("wrong_type.csv", HEADER + "1,10,0.5,a,,true\n2,10,abc,b,,true\n", r"row 2, column score: .*'abc'"),
        ("bad_int.csv", HEADER + "1,ten,0.5,a,,true\n", r"row 1, column user_id"),
        ("bad_time.csv", HEADER + "1,10,0.5,a,not-a-time,true\n", r"row 1, column seen_at: .*not-a-time"),
        ("empty.csv", "", r"empty file"),
        ("header_only.csv", HEADER, r"no data rows"),
        (
            "null_key.csv",
            HEADER + "1,10,0.5,a,,true\n,11,0.5,a,,true\n",
            r"row 2, column rec_id: empty value",
        ),
        ("duplicate.csv", HEADER + "5,10,0.5,a,,true\n5,11,0.5,a,,true\n", r"duplicate key rec_id=5 in rows 1, 2 \(2 rows\)"),
        ("recs.json", "{}", r"unsupported file type"),
    ],
)
def test_bad_input_names_the_problem_and_leaves_the_table_unchanged(
    warehouse, tmp_path, name, content, expected
):
    load_file(warehouse, write_csv(tmp_path, GOOD, "good.csv"), SPEC)
    before = row_versions(warehouse)
    bad = tmp_path / name
    bad.write_text(content)
    with pytest.raises(BadInputError, match=expected) as error:
        load_file(warehouse, bad, SPEC)
    assert str(bad) in str(error.value)
    assert row_versions(warehouse) == before


def test_duplicate_key_into_an_empty_table_names_the_row(warehouse, tmp_path):
    path = write_csv(tmp_path, "5,10,0.5,a,,true\n6,10,0.5,a,,true\n5,11,0.5,a,,true\n")
    with pytest.raises(BadInputError, match=r"row 3, duplicate key rec_id=5"):
        load_file(warehouse, path, SPEC)
    assert warehouse.execute("SELECT to_regclass('recs') IS NULL").fetchone() == (True,)


def test_parquet_string_in_numeric_column(warehouse, tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(
        pa.table(
            {
                "rec_id": [1],
                "user_id": [1],
                "score": ["high"],
                "label": ["a"],
                "seen_at": pa.array([None], pa.timestamp("us")),
                "available": [True],
            }
        ),
        path,
    )
    with pytest.raises(BadInputError, match=r"column score has type string, expected double precision"):
        load_file(warehouse, path, SPEC)


def test_parquet_lossy_value_names_row(warehouse, tmp_path):
    path = tmp_path / "lossy.parquet"
    table = pa.table(
        {
            "rec_id": [1.0, 2.0, 3.5],
            "user_id": [1, 1, 1],
            "score": [0.1, 0.2, 0.3],
            "label": ["a", "b", "c"],
            "seen_at": pa.array([None] * 3, pa.timestamp("us")),
            "available": [True] * 3,
        }
    )
    pq.write_table(table, path)
    with pytest.raises(BadInputError, match=r"row 3, column rec_id: value 3.5"):
        load_file(warehouse, path, SPEC)


def test_not_a_parquet_file(warehouse, tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(BadInputError, match="not a readable parquet file"):
        load_file(warehouse, path, SPEC)


@pytest.mark.parametrize("hostile", ["x; drop table y", 'recs"; drop table recs; --', "1abc", "a" * 64, ""])
def test_hostile_table_names_are_refused_before_any_sql(hostile):
    with pytest.raises(InvalidIdentifierError, match="not a plain SQL identifier"):
        TableSpec(hostile, SPEC.columns)


def test_hostile_partition_column_is_refused(warehouse):
    batch = pa.RecordBatch.from_pydict({"n": [1]})
    spec = TableSpec("t", (Column("n", "bigint"),))
    with pytest.raises(InvalidIdentifierError):
        load_batches(warehouse, [batch], spec, mode="replace", partition={"n; drop table t": 1})
