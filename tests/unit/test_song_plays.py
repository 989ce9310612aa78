"""Song plays' downloads over real HTTP (a local file server) and the Spark job in local mode,
compared with the same transformation computed independently in pandas."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

from sandbox.file_server import FileServer
from sandbox.generate_song_plays import generate
from steps import song_plays
from steps.jobs import dataset_gen
from tests.conftest import shared_data

DAY = dt.date(2019, 2, 8)


@pytest.fixture
def source(tmp_path, monkeypatch):
    """A folder served over HTTP, and the song_plays_http connection pointing at it."""
    folder = tmp_path / "source"
    folder.mkdir()
    server = FileServer(folder).start()
    monkeypatch.setenv("AIRFLOW_CONN_SONG_PLAYS_HTTP", json.dumps({"conn_type": "http", "host": server.url}))
    yield folder
    server.stop()


def test_downloads_land_in_date_partitioned_paths_once(source, tmp_path):
    generate(source, DAY, DAY)
    data = tmp_path / "data"
    fetch = song_plays.http_fetcher()
    spins = Path(song_plays.download_spins(fetch, DAY, data))
    listeners = Path(song_plays.download_listeners(fetch, DAY, data))
    assert spins == data / "spins/2019/02/08/spins.snappy.parquet"
    assert listeners == data / "listeners/listeners.snappy.parquet"
    assert (data / "markers/2019/02/08/listeners_downloaded.SUCCESS").exists()
    stamps = (spins.stat().st_mtime_ns, listeners.stat().st_mtime_ns)
    (source / "listeners.snappy.parquet").unlink()  # a re-download would now fail
    song_plays.download_spins(fetch, DAY, data)
    song_plays.download_listeners(fetch, DAY, data)
    assert (spins.stat().st_mtime_ns, listeners.stat().st_mtime_ns) == stamps


def test_listeners_are_fetched_again_on_a_new_day(source, tmp_path):
    generate(source, DAY, DAY, listeners=100)
    data = tmp_path / "data"
    song_plays.download_listeners(song_plays.http_fetcher(), DAY, data)
    generate(source, DAY, DAY, listeners=120)  # the file is re-posted in place, bigger
    song_plays.download_listeners(song_plays.http_fetcher(), DAY + dt.timedelta(days=1), data)
    assert len(pd.read_parquet(data / "listeners/listeners.snappy.parquet")) == 120
    assert (data / "markers/2019/02/09/listeners_downloaded.SUCCESS").exists()


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[: len(b) // 2], lambda b: b"<html>Dropbox - file not found</html>"],
    ids=["truncated", "not_parquet"],
)
def test_a_bad_download_fails_clearly_and_leaves_no_file(source, tmp_path, damage):
    generate(source, DAY, DAY)
    name = song_plays.spins_file_name(DAY)
    (source / name).write_bytes(damage((source / name).read_bytes()))
    data = tmp_path / "data"
    with pytest.raises(
        song_plays.DownloadError, match=rf"{name}: the download .* is not a readable parquet file"
    ):
        song_plays.download_spins(song_plays.http_fetcher(), DAY, data)
    folder = data / "spins/2019/02/08"
    assert not folder.exists() or list(folder.iterdir()) == []


@pytest.mark.parametrize("download", ["spins", "listeners"])
def test_a_download_without_a_column_the_job_needs_is_refused_and_leaves_no_file(source, tmp_path, download):
    import pyarrow.parquet as pq

    generate(source, DAY, DAY)
    name, column = {
        "spins": (song_plays.spins_file_name(DAY), list(song_plays.SPINS_COLUMNS)[-1]),
        "listeners": (song_plays.LISTENERS_FILE, list(song_plays.LISTENERS_COLUMNS)[-1]),
    }[download]
    table = pq.read_table(source / name)
    pq.write_table(table.drop_columns([column]), source / name)
    data = tmp_path / "data"
    with pytest.raises(song_plays.DownloadError, match=rf"^{name}: missing column\(s\) {column}; nothing was written"):
        getattr(song_plays, f"download_{download}")(song_plays.http_fetcher(), DAY, data)
    assert [p for p in data.rglob("*") if p.is_file()] == []


def test_a_missing_day_is_an_http_404(source, tmp_path):
    from airflow.sdk.exceptions import AirflowException

    with pytest.raises(AirflowException, match="404"):
        song_plays.download_spins(song_plays.http_fetcher(), DAY, tmp_path)


# --- the Spark job ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]").appName("tests").config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false").getOrCreate()
    )  # fmt: skip
    yield session
    session.stop()
    logging.getLogger("py4j").setLevel(logging.WARNING)  # quiet its goodbyes at interpreter exit


def expected_outputs(spins_path: Path, listeners_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The job's transformation, computed independently with pandas."""
    spins = pd.read_parquet(spins_path)
    listeners = pd.read_parquet(listeners_path)
    dataset = spins[spins["elapsed_seconds"] > 30].merge(listeners, on="fake_listener_id", how="inner")
    columns = list(spins.columns) + [c for c in listeners.columns if c != "fake_listener_id"]
    dataset = dataset[columns].drop_duplicates()
    counts = (
        dataset.groupby(["fake_zipcode", "subscription_type"]).size().rename("spins").reset_index()
        .sort_values(["fake_zipcode", "subscription_type"]).reset_index(drop=True)
    )  # fmt: skip
    return dataset, counts


def read_output(folder: Path) -> pd.DataFrame:
    assert (folder / "_SUCCESS").exists()
    [part] = list(folder.glob("part-*.csv.gz"))
    return pd.read_csv(io.BytesIO(gzip.decompress(part.read_bytes())), sep="\t")


def job_args(spins: Path, listeners: Path, out: Path, minrows: int = 100):
    return dataset_gen.parse_args([
        "--day", "2019-02-08", "--minrows", str(minrows), "--spins_path", str(spins),
        "--listeners_path", str(listeners), "--dataset_out_path", str(out / "dataset"),
        "--analysis_out_path", str(out / "counts_by_zip_sub"),
    ])  # fmt: skip


def check_job_against_pandas(spark, spins: Path, listeners: Path, out: Path) -> None:
    result = dataset_gen.run(spark, job_args(spins, listeners, out))
    want_dataset, want_counts = expected_outputs(spins, listeners)
    got_dataset, got_counts = read_output(out / "dataset"), read_output(out / "counts_by_zip_sub")
    assert result["rows"] == len(want_dataset) == len(got_dataset)
    assert list(got_dataset.columns) == list(want_dataset.columns)
    want = want_dataset.assign(date_time=want_dataset["date_time"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    key = list(want.columns)
    pd.testing.assert_frame_equal(
        got_dataset.sort_values(key).reset_index(drop=True), want.sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )  # fmt: skip
    pd.testing.assert_frame_equal(got_counts, want_counts, check_dtype=False)
    # The file is in the job's order, sorted on every column (nulls first, as Spark sorts), although
    # Spark wrote it as one gzip member per partition.
    in_order = got_dataset.sort_values(key, na_position="first", kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(got_dataset, in_order)
    assert [p.name for p in out.iterdir()] and not list(out.glob("*.tmp-*"))


def test_job_on_the_workshop_files_matches_pandas(spark, tmp_path):
    folder = shared_data("song_plays")
    check_job_against_pandas(
        spark,
        folder / "spins-2019-02-08.snappy.parquet",
        folder / "listeners.snappy.parquet",
        tmp_path / "out",
    )


def test_job_on_generated_files_matches_pandas(spark, tmp_path):
    generate(tmp_path / "src", DAY, DAY)
    check_job_against_pandas(
        spark, tmp_path / "src" / song_plays.spins_file_name(DAY), tmp_path / "src/listeners.snappy.parquet",
        tmp_path / "out",
    )  # fmt: skip


def test_too_few_rows_fails_naming_both_numbers_and_writes_nothing(spark, tmp_path):
    generate(tmp_path / "src", DAY, DAY)
    src = tmp_path / "src"
    args = job_args(
        src / song_plays.spins_file_name(DAY), src / "listeners.snappy.parquet", tmp_path / "out", 10**7
    )
    with pytest.raises(dataset_gen.TooFewRowsError, match=r"\d+ rows .* fewer than minrows=10000000"):
        dataset_gen.run(spark, args)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").rglob("*")) == []


def test_a_failed_write_leaves_no_partial_output(spark, tmp_path, monkeypatch):
    generate(tmp_path / "src", DAY, DAY)
    real_rename = dataset_gen.os.rename

    def crash_on_counts(src, dst):
        if "counts_by_zip_sub" in str(dst):
            raise OSError("disk full")
        return real_rename(src, dst)

    monkeypatch.setattr(dataset_gen.os, "rename", crash_on_counts)
    src = tmp_path / "src"
    args = job_args(src / song_plays.spins_file_name(DAY), src / "listeners.snappy.parquet", tmp_path / "out")
    with pytest.raises(OSError, match="disk full"):
        dataset_gen.run(spark, args)
    assert not (tmp_path / "out/counts_by_zip_sub").exists()
    assert not list((tmp_path / "out").glob("*.tmp-*"))
    shutil.rmtree(tmp_path / "out")
