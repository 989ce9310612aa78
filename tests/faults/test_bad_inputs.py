"""Broken inputs, a corpus per pipeline: each is refused with an error naming the file and, where
there is one, the row or line and the column, and nothing is written (the tables keep their row
versions). The inputs a pipeline must take (a much larger file, an extra column with a hostile
name) load."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sandbox.generate_page_views import generate as generate_views
from sandbox.generate_recsys import generate as generate_recs
from steps import page_views
from steps.core.warehouse import BadInputError
from steps.recsys import CANDIDATES_TRAIN, load_recs_file
from tests.conftest import S3_TEST_BUCKET
from tests.fingerprint import tables_fingerprint

# --- the recommender's parquet files ----------------------------------------------------------


def frame_change(change):
    """A broken file made from the good one by changing its rows with pandas."""

    def write(good: Path, bad: Path) -> None:
        pq.write_table(pa.Table.from_pandas(change(pq.read_table(good).to_pandas()), preserve_index=False), bad)

    return write


def bytes_change(change):
    def write(good: Path, bad: Path) -> None:
        bad.write_bytes(change(good.read_bytes()))

    return write


def table_change(change):
    def write(good: Path, bad: Path) -> None:
        pq.write_table(change(pq.read_table(good)), bad)

    return write


def at_row(column: str, row: int, value):
    """An Arrow table change: `value` in `row` of `column`, kept as it is (pandas would turn a NaN
    into a null on the way to Arrow)."""

    def change(table: pa.Table) -> pa.Table:
        values = table.column(column).to_numpy().copy()
        values[row] = value
        return table.set_column(table.schema.get_field_index(column), column, pa.array(values, from_pandas=False))

    return change


BAD_RECS_FILES = {
    "empty file (0 bytes)": (bytes_change(lambda b: b""), r"not a readable parquet file"),
    "no rows": (frame_change(lambda f: f.iloc[0:0]), r"no data rows"),
    "truncated parquet": (bytes_change(lambda b: b[: len(b) // 2]), r"not a readable parquet file"),
    "HTML instead of parquet": (bytes_change(lambda b: b"<html>not found</html>"), r"not a readable parquet file"),
    "missing column": (frame_change(lambda f: f.drop(columns=["als_score"])), r"missing column\(s\) als_score"),
    "text in a number column": (frame_change(lambda f: f.assign(als_score=["high", *f["als_score"].astype(str)[1:]])),
                                r"column als_score has type string, expected double precision"),
    "NaN in a number": (table_change(at_row("als_score", 6, np.nan)), r"row 7, column als_score: NaN is not a finite"),
    "infinity in a number": (table_change(at_row("als_score", 8, -np.inf)), r"row 9, column als_score: -inf is not a"),
    "empty required value": (frame_change(lambda f: f.assign(user_id=f["user_id"].where(f.index != 4, None))),
                             r"row 5, column user_id: empty value in a required column"),
    "number past bigint": (table_change(lambda t: t.set_column(t.schema.get_field_index("item_id"), "item_id",
                                                               pa.array([2**64 - 1] * len(t), pa.uint64()))),
                           r"row 1, column item_id: value 18446744073709551615 does not fit bigint"),
    "duplicate key": (frame_change(lambda f: f.assign(rec_id=f["rec_id"].where(f.index != 9, f["rec_id"][2]))),
                      r"duplicate key rec_id=\d+ in rows 3, 10 \(2 rows\)"),
}  # fmt: skip


@pytest.fixture(scope="module")
def recs_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recs")
    generate_recs(folder)
    return folder


@pytest.mark.parametrize("case", BAD_RECS_FILES)
def test_a_broken_candidates_file_is_refused_naming_it_and_writes_nothing(warehouse, recs_files, tmp_path, case):
    write, expected = BAD_RECS_FILES[case]
    load_recs_file(warehouse, recs_files, CANDIDATES_TRAIN)  # last week's rows
    before = tables_fingerprint(warehouse, with_xmin=True)
    warehouse.commit()
    bad = tmp_path / CANDIDATES_TRAIN.file_name
    write(recs_files / CANDIDATES_TRAIN.file_name, bad)
    with pytest.raises(BadInputError, match=expected) as refused:
        load_recs_file(warehouse, tmp_path, CANDIDATES_TRAIN)
    assert str(refused.value).startswith(f"{bad}: "), refused.value
    warehouse.rollback()
    assert tables_fingerprint(warehouse, with_xmin=True) == before


def test_a_ten_times_larger_file_with_a_hostile_extra_column_loads(warehouse, tmp_path):
    generate_recs(tmp_path, scale=10)
    table = pq.read_table(tmp_path / CANDIDATES_TRAIN.file_name)
    hostile = 'x"); DROP TABLE candidates_train; --'
    pq.write_table(table.append_column(hostile, pa.array(["../../etc/passwd"] * len(table))),
                   tmp_path / CANDIDATES_TRAIN.file_name)  # fmt: skip
    summary = load_recs_file(warehouse, tmp_path, CANDIDATES_TRAIN)
    assert summary["rows_in_table"] == len(table) == 35_610
    columns = [r[0] for r in warehouse.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'candidates_train'")]  # fmt: skip
    assert hostile not in columns and "target" in columns


# --- page views' JSON lines and CSV in S3 -------------------------------------------------------

DAY = dt.date(2026, 11, 1)
VIEWS_KEY, UPDATES_KEY = f"PageViews/{DAY}-a.jsonl", f"UserUpdates/{DAY}-a.csv"
GOOD_VIEW = b'{"ts": "2026-11-01T10:00:00Z", "url": "/home", "environment": "production", "user_id": 7}'

BAD_LOGS = {
    "not JSON": (VIEWS_KEY, GOOD_VIEW + b"\n{\"ts\": \"2026-11-01T10:00:01Z\", \"url\"\n", r"line 2: not JSON"),
    "latin-1 bytes": (VIEWS_KEY, GOOD_VIEW.replace(b"/home", "/caf\xe9".encode("latin-1")) + b"\n",
                      r"line 1: not UTF-8"),
    "a JSON line of 10 MB": (VIEWS_KEY, b'{"ts": "2026-11-01T10:00:00Z", "url": "/' + b"a" * 10_000_000
                             + b'", "environment": "production", "user_id": "7x"}\n', r"line 1, field user_id: '7x'"),
    "user_id not a number": (VIEWS_KEY, GOOD_VIEW.replace(b"7}", b'"seven"}') + b"\n", r"line 1, field user_id: 'seven'"),
    "missing field": (VIEWS_KEY, b'{"ts": "2026-11-01T10:00:00Z", "environment": "production", "user_id": 7}\n',
                      r"line 1: missing field\(s\) url"),
    "bad timestamp": (VIEWS_KEY, GOOD_VIEW.replace(b"2026-11-01T10:00:00Z", b"yesterday") + b"\n",
                      r"line 1, field ts: 'yesterday'"),
    "a JSON array, not an object": (VIEWS_KEY, b"[1, 2, 3]\n", r"line 1: expected a JSON object, got list"),
    "CSV with 4 fields": (UPDATES_KEY, b'"2026-11-01T09:00:00Z","7","a@example.com","Ann"\n',
                          r"line 1: expected 5 fields"),
    "CSV user_id not a number": (UPDATES_KEY, b'"2026-11-01T09:00:00Z","x7","a@example.com","Ann","production"\n',
                                 r"line 1, field user_id: 'x7'"),
    "CSV latin-1": (UPDATES_KEY, '"2026-11-01T09:00:00Z","7","a@example.com","Zoë","production"\n'.encode("latin-1"),
                    r"line 1: not UTF-8"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_LOGS)
def test_a_broken_log_file_fails_the_day_naming_key_and_line_and_writes_nothing(warehouse, s3, case):
    key, content, expected = BAD_LOGS[case]
    good = generate_views(DAY, DAY, users=10, views=50)
    for name, data in good.items():
        s3.load_bytes(data, key=name, bucket_name=S3_TEST_BUCKET, replace=True)
    page_views.ensure_tables(warehouse)
    before = tables_fingerprint(warehouse, with_xmin=True)
    s3.load_bytes(content, key=key, bucket_name=S3_TEST_BUCKET, replace=True)
    with pytest.raises(page_views.BadLogError, match=expected) as refused:
        page_views.load_day(warehouse, s3, S3_TEST_BUCKET, DAY)
    assert str(refused.value).startswith(f"{key}: "), str(refused.value)[:300]
    warehouse.rollback()
    assert tables_fingerprint(warehouse, with_xmin=True) == before


def test_hostile_key_names_are_data_not_paths(warehouse, s3):
    """Keys under the day's prefix with `../` and quotes in them load as any other key would."""
    good = generate_views(DAY, DAY, users=10, views=50)
    renamed = {key.replace(f"{DAY}-a", f"{DAY}-../../x'; DROP TABLE page_views_loaded_days; --"): data
               for key, data in good.items()}  # fmt: skip
    for name, data in renamed.items():
        s3.load_bytes(data, key=name, bucket_name=S3_TEST_BUCKET, replace=True)
    summary = page_views.load_day(warehouse, s3, S3_TEST_BUCKET, DAY)
    assert summary["keys"] == len(renamed) and summary["page_views"] > 0, summary
    assert warehouse.execute("SELECT count(*) FROM page_views_loaded_days").fetchone()[0] == 1



# --- trip time's nodes file (CSV) ------------------------------------------------------------

HEADER = "node_id,lat,lon\n"
GOOD_NODES = "".join(f"{i},{45.0 + i * 0.01:.4f},{38.9 + i * 0.013:.4f}\n" for i in range(20))

BAD_NODES = {
    "empty file": (b"", r"not a readable CSV file"),
    "header only": (HEADER.encode(), r"0 usable nodes cannot give 5 distinct pairs"),
    "latin-1 bytes": ((HEADER + GOOD_NODES + "Sévérac,45.3,39.0\n").encode("latin-1"), r"line 22: not UTF-8"),
    "parquet bytes": (b"PAR1\x15\x04\x15\x80\x80\x80\x00\x00\xff\xfe", r"line 1: not UTF-8 \(byte 0x80\)"),
    "missing column": (("node_id,lat\n" + "1,45.0\n").encode(), r"missing column\(s\) lon"),
    "text coordinate": ((HEADER + GOOD_NODES + "20,north,38.9\n").encode(), r"row 21, column lat: 'north'"),
    "NaN coordinate": ((HEADER + GOOD_NODES + "20,NaN,38.9\n").encode(), r"row 21, column lat: 'NaN'"),
    "infinite coordinate": ((HEADER + GOOD_NODES + "20,45.1,inf\n").encode(), r"row 21, column lon: 'inf'"),
    "out of range": ((HEADER + GOOD_NODES + "20,45.1,181\n").encode(), r"row 21, column lon: '181'"),
    "a row of 5 fields": ((HEADER + GOOD_NODES + "20,45.1,38.9,x,y\n").encode(), r"not a readable CSV file"),
    "all nodes within 500 m": ((HEADER + "".join(f"{i},45.0,{38.9 + i * 0.0001:.4f}\n" for i in range(9))).encode(),
                               r"found only 0 of 5 pairs at least 500 m apart among 9 usable nodes"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_NODES)
def test_a_broken_nodes_file_fails_before_any_pair_is_planned(tmp_path, case):
    from steps import trip_time

    content, expected = BAD_NODES[case]
    nodes = tmp_path / "nodes.csv"
    nodes.write_bytes(content)
    paths = trip_time.run_paths(tmp_path / "data", "2026-03-02T08:00:00Z")
    with pytest.raises(trip_time.NodesError, match=expected) as refused:
        trip_time.plan_pairs(nodes, 5, "2026-03-02T08:00:00Z", paths)
    assert str(nodes) in str(refused.value)
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.json"))


def test_a_nodes_file_with_a_hostile_path_and_ten_times_the_nodes_plans(tmp_path):
    from steps import trip_time

    folder = tmp_path / "a dir with 'quotes'; and ..spaces"
    folder.mkdir()
    nodes = folder / "nodes..csv"
    nodes.write_text(HEADER + "".join(f"{i},{45.0 + i * 0.001:.4f},{38.9 + (i % 50) * 0.01:.4f}\n" for i in range(200)))
    paths = trip_time.run_paths(tmp_path / "data", "2026-03-02T08:00:00Z")
    plan = trip_time.plan_pairs(nodes, 50, "2026-03-02T08:00:00Z", paths)
    assert len(json.loads(paths.pairs.read_text())) == 50, plan


# --- song plays' downloads (parquet over HTTP) --------------------------------------------------


BAD_DOWNLOADS = {
    "empty body": ("spins", lambda p: p.write_bytes(b""), r"the download \(0 bytes\) is not a readable parquet file"),
    "truncated": ("spins", lambda p: p.write_bytes(p.read_bytes()[:-100]), r"is not a readable parquet file"),
    "an HTML page": ("spins", lambda p: p.write_bytes(b"<html>Dropbox</html>"), r"is not a readable parquet file"),
    "CSV instead of parquet": ("listeners", lambda p: p.write_text("fake_listener_id,fake_zipcode\n1,2\n"),
                               r"is not a readable parquet file"),
    "missing column": ("listeners", lambda p: pq.write_table(pq.read_table(p).drop_columns(["fake_zipcode"]), p),
                       r"missing column\(s\) fake_zipcode"),
    "elapsed_seconds as text": ("spins", lambda p: pq.write_table(pq.read_table(p).set_column(
        5, "elapsed_seconds", pq.read_table(p).column("elapsed_seconds").cast(pa.string())), p),
        r"column elapsed_seconds is string, the job needs number values"),
    "listener id as text": ("listeners", lambda p: pq.write_table(pq.read_table(p).set_column(
        0, "fake_listener_id", pq.read_table(p).column("fake_listener_id").cast(pa.string())), p),
        r"column fake_listener_id is string, the job needs integer values"),
    "NaN in elapsed_seconds": ("spins", lambda p: pq.write_table(at_row("elapsed_seconds", 41, np.nan)(
        as_float(pq.read_table(p), "elapsed_seconds")), p), r"row 42, column elapsed_seconds: nan is not a finite"),
    "infinity in elapsed_seconds": ("spins", lambda p: pq.write_table(at_row("elapsed_seconds", 0, np.inf)(
        as_float(pq.read_table(p), "elapsed_seconds")), p), r"row 1, column elapsed_seconds: inf is not a finite"),
    "an empty listener id": ("listeners", lambda p: pq.write_table(pq.read_table(p).set_column(
        0, "fake_listener_id", pa.array([None, *pq.read_table(p).column("fake_listener_id").to_pylist()[1:]],
                                        pa.int64())), p),
        r"row 1, column fake_listener_id: an empty value"),
}  # fmt: skip


def as_float(table: pa.Table, column: str) -> pa.Table:
    return table.set_column(table.schema.get_field_index(column), column, table.column(column).cast(pa.float64()))


@pytest.mark.parametrize("case", BAD_DOWNLOADS)
def test_a_broken_download_is_refused_naming_it_and_nothing_is_kept(song_source, tmp_path, case):
    from steps import song_plays
    from tests.faults.conftest import DAY

    which, damage, expected = BAD_DOWNLOADS[case]
    name = song_plays.spins_file_name(DAY) if which == "spins" else song_plays.LISTENERS_FILE
    damage(song_source.folder / name)
    data = tmp_path / "data"
    with pytest.raises(song_plays.DownloadError, match=expected) as refused:
        getattr(song_plays, f"download_{which}")(song_plays.http_fetcher(), DAY, data)
    assert str(refused.value).startswith(f"{name}: ")
    assert not data.exists() or not [p for p in data.rglob("*") if p.is_file()]


def test_a_ten_times_larger_download_with_a_hostile_extra_column_is_taken_as_it_is(song_source, tmp_path):
    from steps import song_plays
    from tests.faults.conftest import DAY

    source = song_source.folder / song_plays.spins_file_name(DAY)
    table = pa.concat_tables([pq.read_table(source)] * 10)
    pq.write_table(table.append_column('../x"; DROP TABLE spins; --', pa.array(["../../etc"] * len(table))), source)
    kept = Path(song_plays.download_spins(song_plays.http_fetcher(), DAY, tmp_path / "data"))
    assert kept.read_bytes() == source.read_bytes() and pq.read_metadata(kept).num_rows == len(table)


# --- police staging's script set (SQL, YAML, Python) --------------------------------------------

PROCEDURES = "stored_procedures/procedures.sql"
LOOKUPS = "lookup/lookup_tables.yaml"
CLEANUP = "populate/CLEANUP-staging-officers_hub.py"
CHARGES_CREATE, CHARGES_POPULATE = "create_tables/CREATE-staging-charges.sql", "populate/POPULATE-staging-charges.sql"


def replace_text(old: str, new: str):
    return lambda path: path.write_text(path.read_text().replace(old, new, 1))


BAD_SCRIPT_SETS = {
    "empty CREATE script": (CHARGES_CREATE, lambda p: p.write_bytes(b""), r"must create exactly the table charges"),
    "latin-1 in a CREATE script": (CHARGES_CREATE, lambda p: p.write_bytes(
        p.read_bytes().replace(b"CREATE TABLE", "-- caf\xe9\nCREATE TABLE".encode("latin-1"), 1)), r"not UTF-8"),
    "a PNG as a POPULATE script": (CHARGES_POPULATE, lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256))),
                                   r"not UTF-8"),
    "a NUL byte in a script": (CHARGES_POPULATE, lambda p: p.write_text(p.read_text() + "\0"), r"line \d+: a NUL byte"),
    "procedures cut inside a function body": (PROCEDURES, lambda p: p.write_text(p.read_text()[: len(p.read_text()) // 2]),
                                              r"never closed"),
    "lookups not YAML": (LOOKUPS, lambda p: p.write_text("lookup_ranks: [columns: {\n"), r"while parsing"),
    "lookups in latin-1": (LOOKUPS, lambda p: p.write_bytes(p.read_bytes().replace(b"Sergeant", b"Sergent\xe9")),
                           r"not UTF-8"),
    "a lookup row one value short": (LOOKUPS, replace_text("[3, sergeant, Sergeant]", "[3, sergeant]"),
                                     r"row \d \[3, 'sergeant'\] does not have the 3 values"),
    "a hostile lookup table name": (LOOKUPS, replace_text("lookup_ranks:", "'x; drop schema public':"),
                                    r"'x; drop schema public' is not a plain SQL"),
    "a cleanup that is not Python": (CLEANUP, lambda p: p.write_text("def clean(:\n"), r"line 1: "),
    "a NUL byte in a cleanup": (CLEANUP, lambda p: p.write_text("\0" + p.read_text()), r"line 1: a NUL byte"),
}  # fmt: skip


def police_inputs(scripts: Path):
    from steps import police_staging

    return police_staging.resolve_inputs(
        {"schema": "staging_dev", "create_tables_dir": "create_tables", "lookup_file": LOOKUPS,
         "procedures_file": PROCEDURES, "populate_dir": "populate"},
        scripts,
    )  # fmt: skip


@pytest.fixture
def police_scripts(tmp_path):
    import shutil

    from tests.conftest import ROOT

    return Path(shutil.copytree(ROOT / "sql" / "police_staging", tmp_path / "scripts"))


@pytest.mark.parametrize("case", BAD_SCRIPT_SETS)
def test_a_broken_police_script_set_is_refused_at_planning_naming_the_file(police_scripts, case):
    """Planning reads and checks every file before any task touches the warehouse: a broken
    script set is refused there, so nothing is written."""
    from steps import police_staging
    from steps.sql_scripts import ScriptError

    relative, damage, expected = BAD_SCRIPT_SETS[case]
    damage(police_scripts / relative)
    with pytest.raises((police_staging.BuildError, ScriptError), match=expected) as refused:
        police_staging.plan_build(police_inputs(police_scripts))
    assert relative.rsplit("/", 1)[-1] in str(refused.value), refused.value


def test_a_script_with_a_10_mb_comment_and_a_hostile_file_beside_it_plans(police_scripts):
    from steps import police_staging

    populate = police_scripts / CHARGES_POPULATE
    populate.write_text("-- " + "x" * 10_000_000 + "\n" + populate.read_text())
    (police_scripts / "populate" / "notes; DROP SCHEMA public.txt").write_text("not a script")
    plan = police_staging.plan_build(police_inputs(police_scripts))
    assert "charges" in [item["table"] for item in plan["populate"]]
