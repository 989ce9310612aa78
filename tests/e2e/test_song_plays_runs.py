"""song_plays through the real scheduler: the workshop's files over HTTP, a backfill that runs
only the days not done, a day with no file, a rerun that does nothing, and the minrows check."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import shared_data
from tests.e2e.helpers import demo_runs, run_demo
from tests.unit.test_song_plays import expected_outputs, read_output

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def first_run(workspace):
    folder = shared_data("song_plays")
    result, runs = demo_runs(
        workspace, "song-plays", "--only", "song_plays", "--date", "2019-02-08", "--sensor-timeout", "10",
        SONG_PLAYS_SOURCE_DIR=str(folder),
    )  # fmt: skip
    return folder, result, {r["logical_date"][:10]: r for r in runs}


@pytest.fixture(scope="module")
def backfill(workspace, first_run):
    """Three days, one of which (the workshop's day) is done: the backfill runs the other two."""
    folder, _, _ = first_run
    result, runs = demo_runs(
        workspace, "song-plays-backfill", "--only", "song_plays", "--date", "2019-02-07..2019-02-09",
        "--sensor-timeout", "10", SONG_PLAYS_SOURCE_DIR=str(folder),
    )  # fmt: skip
    return result, {r["logical_date"][:10]: r for r in runs}


def test_the_workshop_day_succeeds_with_the_workshops_outputs(workspace, first_run):
    folder, result, runs = first_run
    assert result.returncode == 0
    run = runs["2019-02-08"]
    assert run["shown_state"] == "success" and run["task_counts"] == {"success": 5}
    out = workspace["data"] / "output" / "2019" / "02" / "08"
    assert run["outputs"]["dataset_gen"] == [str(out / "counts_by_zip_sub"), str(out / "dataset")]
    want_dataset, want_counts = expected_outputs(
        folder / "spins-2019-02-08.snappy.parquet", folder / "listeners.snappy.parquet"
    )
    assert len(read_output(out / "dataset")) == len(want_dataset)
    pd.testing.assert_frame_equal(read_output(out / "counts_by_zip_sub"), want_counts, check_dtype=False)
    assert (workspace["data"] / "spins/2019/02/08/spins.snappy.parquet").exists()
    assert (workspace["data"] / "markers/2019/02/08/listeners_downloaded.SUCCESS").exists()


def test_a_backfill_runs_only_the_days_not_done(first_run, backfill):
    result, runs = backfill
    assert result.returncode == 0
    assert {d: (r["state"], r["started_by"].split()[0]) for d, r in runs.items()} == {
        "2019-02-07": ("success", "backfill"),
        "2019-02-08": ("done before", "earlier"),
        "2019-02-09": ("success", "backfill"),
    }
    assert runs["2019-02-08"]["run_id"] == first_run[2]["2019-02-08"]["run_id"]
    assert runs["2019-02-07"]["run_id"] == "backfill__2019-02-07T00:00:00+00:00"
    assert "2 run(s), 1 day(s) left alone" in result.stdout


def test_a_day_without_a_file_ends_skipped(backfill):
    result, runs = backfill
    run = runs["2019-02-09"]
    assert run["state"] == "success" and run["shown_state"] == "skipped"
    assert run["task_counts"] == {"skipped": 5}
    assert "song_plays                   2019-02-09 skipped" in result.stdout


def test_a_rerun_downloads_nothing_and_submits_no_job(workspace, first_run):
    folder, _, _ = first_run
    files = [
        workspace["data"] / "spins/2019/02/08/spins.snappy.parquet",
        workspace["data"] / "listeners/listeners.snappy.parquet",
        workspace["data"] / "output/2019/02/08/dataset/_SUCCESS",
    ]
    before = [f.stat().st_mtime_ns for f in files]
    task_log = (
        workspace["logs"] / "dag_id=song_plays" / "run_id=manual__2019-02-08T00:00:00+00:00"
        / "task_id=dataset_gen" / "attempt=1.log"
    )  # fmt: skip
    submits_before = task_log.read_text().count("spark-submit --master")
    result = run_demo(
        workspace, "--only", "song_plays", "--date", "2019-02-08", "--sensor-timeout", "10",
        SONG_PLAYS_SOURCE_DIR=str(folder),
    )  # fmt: skip
    assert result.returncode == 0
    assert "cleared the existing run manual__2019-02-08T00:00:00+00:00" in result.stdout
    assert [f.stat().st_mtime_ns for f in files] == before
    log_text = "".join(p.read_text() for p in task_log.parent.glob("attempt=*.log"))
    assert "dataset_gen: already complete" in log_text
    assert log_text.count("spark-submit --master") == submits_before == 1


def test_minrows_fails_the_job_with_both_numbers_and_writes_nothing(workspace, tmp_path):
    folder = shared_data("song_plays")
    result = run_demo(
        workspace, "--only", "song_plays", "--date", "2019-02-08", "--conf", "minrows=10000000",
        SONG_PLAYS_SOURCE_DIR=str(folder), PIPELINES_DATA_DIR=str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 1
    assert "--- task dataset_gen failed" in result.stdout
    assert "rows after the filter" in result.stdout and "fewer than minrows=10000000" in result.stdout
    out = tmp_path / "output"
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]
