"""song_plays through the real scheduler, on a generated day and on the workshop's real files
when they are here: files over HTTP, a backfill that runs only the days not done, a day with no
file, a rerun that does nothing, and the minrows check."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import shared_data
from tests.e2e.helpers import demo_runs, run_demo
from tests.fingerprint import files_fingerprint
from tests.unit.test_song_plays import expected_outputs, read_output

pytestmark = pytest.mark.e2e
RUN = "manual__2019-02-08T00:00:00+00:00"


@pytest.fixture(scope="module")
def generated_source(tmp_path_factory):
    """A generated spins file for the workshop's day and the listeners: the module runs on it
    whether or not the real files are here (they are checked as well, further down, when they are)."""
    import datetime as dt

    from sandbox.generate_song_plays import generate

    folder = tmp_path_factory.mktemp("song_plays_source")
    generate(folder, dt.date(2019, 2, 8), dt.date(2019, 2, 8))
    return folder


@pytest.fixture(scope="module")
def first_run(workspace, generated_source):
    folder = generated_source
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


def test_a_day_succeeds_with_the_expected_outputs(workspace, first_run):
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
    data = workspace["data"]
    before = files_fingerprint(data / "output/2019/02/08"), files_fingerprint(data / "spins/2019/02/08")
    # Files that a rewrite with equal bytes would still touch: the listeners, the markers.
    touched = [data / "listeners/listeners.snappy.parquet", *sorted(data.rglob("*SUCCESS"))]
    mtimes = [p.stat().st_mtime_ns for p in touched]
    logs = workspace["logs"] / "dag_id=song_plays" / f"run_id={RUN}" / "task_id=dataset_gen"
    attempts_before = {p.name for p in logs.glob("attempt=*.log")}
    result = run_demo(
        workspace, "--only", "song_plays", "--date", "2019-02-08", "--sensor-timeout", "10",
        SONG_PLAYS_SOURCE_DIR=str(folder),
    )  # fmt: skip
    assert result.returncode == 0
    assert f"cleared the existing run {RUN}" in result.stdout
    after = files_fingerprint(data / "output/2019/02/08"), files_fingerprint(data / "spins/2019/02/08")
    assert after == before and before[0] and before[1]
    assert [p.stat().st_mtime_ns for p in touched] == mtimes
    [rerun_log] = [p for p in logs.glob("attempt=*.log") if p.name not in attempts_before]
    assert "dataset_gen: already complete" in rerun_log.read_text()
    assert "spark-submit --master" not in rerun_log.read_text()


def test_the_real_workshop_day_gives_the_workshops_outputs(workspace, tmp_path):
    folder = shared_data("song_plays")
    result, [run] = demo_runs(
        workspace, "song-plays-real", "--only", "song_plays", "--date", "2019-02-08", "--sensor-timeout", "10",
        SONG_PLAYS_SOURCE_DIR=str(folder), PIPELINES_DATA_DIR=str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0 and run["shown_state"] == "success"
    out = tmp_path / "output" / "2019" / "02" / "08"
    want_dataset, want_counts = expected_outputs(
        folder / "spins-2019-02-08.snappy.parquet", folder / "listeners.snappy.parquet"
    )
    assert len(read_output(out / "dataset")) == len(want_dataset)
    pd.testing.assert_frame_equal(read_output(out / "counts_by_zip_sub"), want_counts, check_dtype=False)


def test_minrows_fails_the_job_with_both_numbers_and_writes_nothing(workspace, tmp_path, generated_source):
    folder = generated_source
    result = run_demo(
        workspace, "--only", "song_plays", "--date", "2019-02-08", "--conf", "minrows=10000000",
        SONG_PLAYS_SOURCE_DIR=str(folder), PIPELINES_DATA_DIR=str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 1
    assert "--- task dataset_gen failed" in result.stdout
    assert "rows after the filter" in result.stdout and "fewer than minrows=10000000" in result.stdout
    out = tmp_path / "output"
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]
