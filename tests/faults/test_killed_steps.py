"""A step's process killed (SIGKILL, as the OS or a lost worker ends a task) or its warehouse
stopped in the middle of the work: nothing half-done counts as done, and the rerun that Airflow's
retry (or a clear) makes ends exactly where a clean run does, without repeating a side effect."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import psycopg
import pytest

from sandbox.embedded_postgres import EmbeddedPostgres, free_port
from sandbox.estimates_api import EstimatesApi
from sandbox.generate_recsys import generate
from steps import trip_time
from steps.core.settings import PROJECT_ROOT
from steps.recsys import CANDIDATES_INFERENCE, load_recs_file
from tests.faults.inject import backends_gone, start_process, start_step, strike_when
from tests.fingerprint import files_fingerprint, tables_fingerprint

SAMPLE_CITY = PROJECT_ROOT / "config" / "samples" / "sample_city_nodes.csv"


@pytest.fixture(scope="module")
def candidate_files(tmp_path_factory):
    """Last week's inference candidates, and this week's: 50 times the real file (336,400 rows),
    so that its COPY is long enough to be struck in the middle."""
    old, new = tmp_path_factory.mktemp("old"), tmp_path_factory.mktemp("new")
    generate(old, seed=7)
    generate(new, seed=8, scale=50)
    return old, new


@pytest.fixture
def own_server(tmp_path):
    """A warehouse of the test's own, which the test may stop and start again."""
    server = EmbeddedPostgres(tmp_path / "pg", free_port()).start()
    server.create_database("warehouse")
    yield server
    server.stop()


def copy_under_way(monitor) -> bool:
    row = monitor.execute("SELECT tuples_processed FROM pg_stat_progress_copy").fetchone()
    return bool(row and row[0] > 0)


@pytest.mark.parametrize("fault", ["task killed", "warehouse stopped"])
def test_a_load_struck_during_its_copy_leaves_the_table_as_it_was_and_the_rerun_completes(
    own_server, candidate_files, fault
):
    old, new = candidate_files
    uri = own_server.uri("warehouse")
    with psycopg.connect(uri) as conn:
        load_recs_file(conn, old, CANDIDATES_INFERENCE)  # last week's load
        before = tables_fingerprint(conn, with_xmin=True)

    step = start_step("load_candidates", warehouse_uri=uri, folder=str(new))
    with psycopg.connect(own_server.uri(), autocommit=True) as monitor:
        strike = own_server.stop if fault == "warehouse stopped" else None
        err = strike_when(step, lambda: copy_under_way(monitor), "the COPY sending rows", strike)
        if fault == "task killed":
            backends_gone(monitor, "warehouse")
    if fault == "warehouse stopped":
        assert step.returncode != 0 and "OperationalError" in err, err  # a transient failure: retried
        own_server.start()

    with psycopg.connect(uri) as conn:
        assert tables_fingerprint(conn, with_xmin=True) == before, "a part of the struck load is visible"
        summary = load_recs_file(conn, new, CANDIDATES_INFERENCE)  # the retry
        after = tables_fingerprint(conn)
    assert summary["rows_in_file"] == 336_400

    own_server.create_database("clean")
    with psycopg.connect(own_server.uri("clean")) as conn:
        load_recs_file(conn, old, CANDIDATES_INFERENCE)
        load_recs_file(conn, new, CANDIDATES_INFERENCE)
        assert tables_fingerprint(conn) == after


def test_fetch_killed_between_calls_resumes_and_asks_no_answered_pair_again(tmp_path):
    key = "2026-03-02T08:00:00Z"
    paths = trip_time.run_paths(tmp_path / "data", key)
    trip_time.plan_pairs(SAMPLE_CITY, 40, key, paths)
    api = EstimatesApi("fault-token").start()
    api.latency_seconds = 0.02
    try:
        step = start_step("fetch_estimates", api_url=api.url, token="fault-token",
                          data_dir=str(tmp_path / "data"), key=key)  # fmt: skip
        strike_when(step, lambda: len(api.requests_tagged(key)) >= 10, "ten answered calls")
        asked_before_kill = len(api.requests_tagged(key))
        recorded = {json.loads(line)["pair"] for line in paths.progress.read_text().splitlines()}
        assert not paths.estimates.exists()  # the run's estimates are not done
        # The server logs a call before it answers: the last call asked may have had no answer yet,
        # every earlier one was written to the progress file before the next was asked.
        assert len(recorded) >= asked_before_kill - 1 >= 9

        api.latency_seconds = 0.0
        client = trip_time.EstimatesClient(api.url, "fault-token", tag=key)
        summary = trip_time.fetch_estimates(client, paths)
    finally:
        api.stop()
    assert summary == {"estimates": 40, "ok": 40, "failed": 0}
    asked = [tuple(sorted(r["body"].items())) for r in api.requests_tagged(key)]
    twice = {body for body in asked if asked.count(body) > 1}
    recorded_bodies = {
        tuple(sorted({"start_latitude": p["start_lat"], "start_longitude": p["start_lon"],
                      "end_latitude": p["end_lat"], "end_longitude": p["end_lon"]}.items()))
        for p in json.loads(paths.pairs.read_text()) if p["pair"] in recorded
    }  # fmt: skip
    # Only the call in flight when the kill came can be asked again: the server may have answered
    # it, but its answer never reached the progress file. No recorded answer is asked for again.
    assert len(twice) <= 1 and not twice & recorded_bodies
    estimates = json.loads(paths.estimates.read_text())
    assert [e["pair"] for e in estimates] == list(range(40))
    assert not [name for name in files_fingerprint(paths.folder) if ".tmp-" in name]


def test_spark_driver_killed_while_writing_leaves_no_output_as_done_and_the_rerun_completes(tmp_path):
    import pandas as pd

    from sandbox.generate_song_plays import generate as generate_spins
    from steps import song_plays
    from tests.unit.test_song_plays import expected_outputs, read_output

    day = dt.date(2019, 2, 8)
    generate_spins(tmp_path / "source", day, day, spins=150_000, listeners=2_000)
    spins, listeners = tmp_path / "source" / song_plays.spins_file_name(day), tmp_path / "source/listeners.snappy.parquet"
    out = tmp_path / "output"
    command = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]",
               "--conf", "spark.ui.enabled=false", str(song_plays.JOB),
               "--day", str(day), "--minrows", "1", "--spins_path", str(spins), "--listeners_path", str(listeners),
               "--dataset_out_path", str(out / "dataset"), "--analysis_out_path", str(out / "counts_by_zip_sub")]  # fmt: skip

    driver = start_process(command)
    strike_when(driver, lambda: any(out.glob("dataset.tmp-*/parts/_temporary/*")), "the dataset being written")
    assert not (out / "dataset").exists() and not (out / "counts_by_zip_sub").exists()

    rerun = start_process(command)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-3000:]
    want_dataset, want_counts = expected_outputs(spins, listeners)
    assert len(read_output(out / "dataset")) == len(want_dataset)
    pd.testing.assert_frame_equal(read_output(out / "counts_by_zip_sub"), want_counts, check_dtype=False)
    # The killed attempt's temporary output is gone too: only the two outputs are left.
    assert sorted(p.name for p in out.iterdir()) == ["counts_by_zip_sub", "dataset"]


def test_a_writer_killed_inside_atomic_path_leaves_no_target_and_the_next_write_clears_its_temporary(tmp_path):
    from steps.core.files import write_text_atomic

    target = tmp_path / "out" / "result.json"
    writer = start_step("write_slowly", target=str(target))
    strike_when(writer, lambda: any(target.parent.glob("result.json.tmp-*")), "the temporary file written")
    assert not target.exists()
    write_text_atomic(target, "whole")
    assert [p.name for p in target.parent.iterdir()] == ["result.json"] and target.read_text() == "whole"


def build_under_way(monitor) -> bool:
    """The build's transaction is applying the delta (a statement on its co-view changes is running)."""
    return bool(monitor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' "
        "AND query ILIKE '%%co_view_change%%'"
    ).fetchone()[0])  # fmt: skip


def test_page_views_build_killed_leaves_the_last_build_and_the_rerun_matches_pandas(warehouse, warehouse_uri, s3):
    from sandbox.generate_page_views import generate as generate_views
    from steps import page_views
    from tests.page_views_reference import check_against_pandas
    from tests.unit.test_page_views import BUCKET, put

    day1, day2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
    files = generate_views(day1, day2, users=1_000, views=10_000)
    put(s3, files)
    page_views.load_day(warehouse, s3, BUCKET, day1)
    page_views.build_tables(warehouse, day1)
    page_views.load_day(warehouse, s3, BUCKET, day2)
    before = tables_fingerprint(warehouse, with_xmin=True)
    warehouse.commit()

    step = start_step("build_page_views", warehouse_uri=warehouse_uri, day=str(day2))
    with psycopg.connect(warehouse_uri, autocommit=True) as monitor:
        strike_when(step, lambda: build_under_way(monitor), "the build replacing the tables")
        backends_gone(monitor, warehouse.info.dbname, keep=(warehouse.info.backend_pid,))
    assert tables_fingerprint(warehouse, with_xmin=True) == before  # day 1's build, whole
    warehouse.commit()
    assert page_views.build_tables(warehouse, day2)["days"] == 2
    check_against_pandas(warehouse, files)


def test_a_killed_tasks_statement_does_not_run_on_in_the_warehouse(warehouse, warehouse_uri):
    """Without the server checking its client, a 10-minute statement of a killed task would run to
    its end (holding its locks, the retry queued behind it); backends_gone gives up after two
    minutes."""
    step = start_step("long_statement", warehouse_uri=warehouse_uri)
    with psycopg.connect(warehouse_uri, autocommit=True) as monitor:
        strike_when(step, lambda: monitor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)' AND state = 'active'"
        ).fetchone()[0] > 0, "the statement running")  # fmt: skip
        backends_gone(monitor, warehouse.info.dbname, keep=(warehouse.info.backend_pid,))


def test_a_police_populate_killed_inside_its_statement_leaves_the_table_empty_and_the_rerun_fills_it(
    warehouse, warehouse_uri
):
    """The populate task's statement is held on a lock of one of its source tables (so the kill
    lands while the statement is running, in its transaction, whatever the machine's speed)."""
    from sandbox.generate_police_source import generate as generate_source
    from steps import police_staging
    from tests.unit.test_police_staging import build, own_inputs

    generate_source(warehouse, officers=400)
    plan = police_staging.plan_build(own_inputs())
    build(warehouse, plan)
    [item] = [i for i in plan["populate"] if i["table"] == "officer_shifts"]
    shifts = "SELECT officer_id, shift_start, shift_end FROM staging_dev.officer_shifts ORDER BY 1, 2, 3"
    clean = warehouse.execute(shifts).fetchall()
    warehouse.execute("TRUNCATE staging_dev.officer_shifts RESTART IDENTITY")
    warehouse.commit()
    before = tables_fingerprint(warehouse, ("staging_dev",), with_xmin=True)

    warehouse.execute("LOCK TABLE police_source.shifts IN ACCESS EXCLUSIVE MODE")  # held until commit
    step = start_step("populate_police_table", warehouse_uri=warehouse_uri, schema="staging_dev", item=item)
    with psycopg.connect(warehouse_uri, autocommit=True) as monitor:
        strike_when(step, lambda: monitor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%%officer_shifts%%'"
        ).fetchone()[0] > 0, "the populate statement running")  # fmt: skip
        warehouse.commit()  # the lock goes: a surviving statement would now go on and insert
        backends_gone(monitor, warehouse.info.dbname, keep=(warehouse.info.backend_pid,))
    assert tables_fingerprint(warehouse, ("staging_dev",), with_xmin=True) == before
    warehouse.commit()

    assert police_staging.populate_table(warehouse, "staging_dev", item)["status"] == "populated"
    # The same rows (shift_id is a serial: which row gets which number follows the query plan).
    assert warehouse.execute(shifts).fetchall() == clean
