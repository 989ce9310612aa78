"""What Airflow schedules by itself in a demo: rank_candidates from asset events, backfills for a
range of dates, and a demo interrupted in the middle of a run that does not block the next."""

from __future__ import annotations

import signal
import subprocess
import time

import psycopg
import pytest

from sandbox.embedded_postgres import EmbeddedPostgres, free_port
from tests.e2e.helpers import ROOT, demo_runs, run_demo, runner_command, runner_env

pytestmark = pytest.mark.e2e
TRAIN, EVENTS, INFERENCE = (
    "warehouse.public.candidates_train", "warehouse.public.events", "warehouse.public.candidates_inference"
)  # fmt: skip


@pytest.fixture(scope="module")
def own_workspace(tmp_path_factory):
    """A state folder of its own: which asset events are queued must not depend on other tests."""
    base = tmp_path_factory.mktemp("scheduling")
    return {"state": base / "state", "logs": base / "logs", "data": base / "data", "base": base}


def metadata_rows(workspace, sql: str) -> list[tuple]:
    """Rows of the runner's Airflow metadata database, read while no runner is up."""
    server = EmbeddedPostgres(workspace["state"] / "postgres", free_port()).start()
    try:
        with psycopg.connect(server.uri("airflow")) as conn:
            return conn.execute(sql).fetchall()
    finally:
        server.stop()


def test_rank_candidates_is_started_by_the_scheduler_from_both_asset_events(own_workspace, tmp_path):
    from sandbox.generate_recsys import generate

    inputs = tmp_path / "recsys"
    generate(inputs)
    result, runs = demo_runs(
        own_workspace, "train-only", "--only", "load_candidates_train,rank_candidates", "--date", "2026-02-07",
        POSTGRES_DATA_DIR=str(inputs),
    )  # fmt: skip
    assert result.returncode == 0, "a DAG waiting for its assets is not a failure"
    runs = {r["dag_id"]: r for r in runs}
    assert runs["load_candidates_train"]["state"] == "success"
    assert runs["rank_candidates"]["state"] == "waiting" and runs["rank_candidates"]["run_id"] == ""
    assert f"rank_candidates: waits for asset events of {INFERENCE}; not started" in result.stdout
    # The scheduler kept the training DAG's two events for later and started nothing.
    assert metadata_rows(own_workspace, "SELECT count(*) FROM dag_run WHERE dag_id = 'rank_candidates'") == [(0,)]
    queued = "SELECT a.name FROM asset_dag_run_queue q JOIN asset a ON a.id = q.asset_id ORDER BY a.name"
    assert metadata_rows(own_workspace, queued) == [(TRAIN,), (EVENTS,)]

    result, runs = demo_runs(
        own_workspace, "inference-too", "--only", "load_candidates_inference,rank_candidates",
        "--date", "2026-02-07", POSTGRES_DATA_DIR=str(inputs),
    )  # fmt: skip
    assert result.returncode == 0
    runs = {r["dag_id"]: r for r in runs}
    ranked = runs["rank_candidates"]
    assert ranked["state"] == "success" and ranked["started_by"] == "assets"
    assert ranked["run_id"].startswith("asset_triggered__")
    assert "scheduler restarted with its job schedule on" in result.stdout
    rows = metadata_rows(
        own_workspace,
        "SELECT run_type, lower(triggered_by::text) FROM dag_run WHERE dag_id = 'rank_candidates'",
    )
    assert rows == [("asset_triggered", "asset")]
    # The asset events carry what was loaded, for the UI.
    events = metadata_rows(
        own_workspace,
        "SELECT a.name, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id ORDER BY e.id",
    )
    # The training DAG's two loads run side by side: their events come in either order.
    assert sorted(name for name, _ in events[:2]) == [TRAIN, EVENTS] and events[2][0] == INFERENCE
    for name, extra in events:
        table = name.rsplit(".", 1)[-1]
        assert extra["file"] == str(inputs / f"{table}.parquet") and extra["rows_in_table"] > 0


def test_a_backfill_runs_the_missing_days_and_retries_a_failed_one(own_workspace):
    """hello_world is weekly (Sundays): the range 2026-01-04..2026-01-18 holds three runs."""
    occupied = own_workspace["base"] / "occupied"
    occupied.write_text("a file where the data folder should be")
    assert run_demo(own_workspace, "--only", "hello_world", "--date", "2026-01-11").returncode == 0
    week = ("--only", "hello_world", "--date", "2026-01-04..2026-01-18")
    result, runs = demo_runs(own_workspace, "failed-backfill", *week, PIPELINES_DATA_DIR=str(occupied))
    assert result.returncode == 1
    runs = {r["logical_date"][:10]: r for r in runs}
    assert {d: r["state"] for d, r in runs.items()} == {
        "2026-01-04": "failed", "2026-01-11": "done before", "2026-01-18": "failed",
    }  # fmt: skip
    assert runs["2026-01-04"]["started_by"].startswith("backfill ")
    assert "2 run(s), 1 day(s) left alone" in result.stdout

    result, runs = demo_runs(own_workspace, "retry-backfill", *week)
    assert result.returncode == 0
    runs = {r["logical_date"][:10]: r for r in runs}
    assert {d: r["state"] for d, r in runs.items()} == {
        "2026-01-04": "success", "2026-01-11": "done before", "2026-01-18": "success",
    }  # fmt: skip
    backfills = metadata_rows(
        own_workspace,
        "SELECT b.id, r.run_type, count(*) FROM backfill b JOIN dag_run r ON r.backfill_id = b.id "
        "GROUP BY b.id, r.run_type ORDER BY b.id",
    )
    # The second backfill took over the two failed runs; the day that had succeeded kept its run.
    assert [(kind, n) for _, kind, n in backfills] == [("backfill", 2)]
    rows = metadata_rows(
        own_workspace,
        "SELECT logical_date::date::text, run_type, state FROM dag_run WHERE dag_id = 'hello_world' "
        "ORDER BY logical_date",
    )
    assert rows == [
        ("2026-01-04", "backfill", "success"), ("2026-01-11", "manual", "success"),
        ("2026-01-18", "backfill", "success"),
    ]  # fmt: skip


def test_an_interrupted_demo_does_not_block_the_next(own_workspace, tmp_path):
    """Ctrl-C while song_plays waits for its file, then a demo of the same day with another conf
    (the run must be replaced, which Airflow refuses for a running run)."""
    empty = tmp_path / "no-spins"
    empty.mkdir()
    port = free_port()
    process = subprocess.Popen(
        runner_command(own_workspace, "--only", "song_plays", "--date", "2019-02-08", "--sensor-timeout", "600",
                       port=port),
        env=runner_env(own_workspace, SONG_PLAYS_SOURCE_DIR=str(empty)),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    seen = []
    try:
        deadline = time.monotonic() + 300
        for line in process.stdout:
            seen.append(line)
            if "wait_for_spins -> deferred" in line:
                break
            assert time.monotonic() < deadline, "".join(seen)
        else:
            pytest.fail("".join(seen))
        # Meanwhile a second demo on the same state folder is refused at once.
        second = run_demo(own_workspace, "--only", "hello_world")
        assert second.returncode != 0
        assert f"another runner (pid {process.pid}, port {port}) uses" in second.stderr
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # SIGTERM stops the stack it started; a kill would orphan it
            process.terminate()
            process.wait(timeout=120)
    out = "".join(seen) + out
    print(out[-3000:])
    assert process.returncode == 130
    assert "interrupted: song_plays: run manual__2019-02-08T00:00:00+00:00 (running) marked failed" in out
    notes = metadata_rows(
        own_workspace, "SELECT r.state, n.content FROM dag_run_note n JOIN dag_run r ON r.id = n.dag_run_id"
    )
    assert notes == [("failed", "ended by the runner: its demo was interrupted")]

    result, [run] = demo_runs(
        own_workspace, "after-interrupt", "--only", "song_plays", "--date", "2019-02-08",
        "--sensor-timeout", "5", "--conf", "minrows=50", SONG_PLAYS_SOURCE_DIR=str(empty),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert run["shown_state"] == "skipped" and run["run_id"] == "manual__2019-02-08T00:00:00+00:00"
    assert "replaced the run manual__2019-02-08T00:00:00+00:00 (its conf differs)" in result.stdout
