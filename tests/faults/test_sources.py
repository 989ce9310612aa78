"""A source that misbehaves in the middle of a download (song plays' HTTP source answering 500,
closing the connection half-way through a body, or hanging past the client's timeout) and a
data disk that fills up while a step writes: a clear error, a transient one where a retry can
help, and no truncated file ever kept."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from steps import song_plays
from steps.core.retries import transient_reason
from tests.faults.conftest import DAY


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize(
    ("mode", "error"),
    [("500", "airflow.sdk.exceptions.AirflowException"),
     ("cut", "requests.exceptions.ChunkedEncodingError"),
     ("hang", "requests.exceptions.ConnectionError")],  # a read timeout in the body, as requests says it
)  # fmt: skip
def test_a_source_failing_mid_download_keeps_nothing_and_the_retry_completes(song_source, tmp_path, mode, error):
    import importlib

    module, name = error.rsplit(".", 1)
    data = tmp_path / "data"
    song_source.mode = mode
    with pytest.raises(getattr(importlib.import_module(module), name)) as failure:
        song_plays.download_spins(song_plays.http_fetcher(timeout_seconds=2), DAY, data)
    assert files_under(data) == [], f"{mode}: a part of the download was kept"
    assert transient_reason(failure.value), f"{mode}: {failure.value!r} would not be retried"

    song_source.mode = "ok"  # what the task's retry meets a minute later
    spins = Path(song_plays.download_spins(song_plays.http_fetcher(timeout_seconds=2), DAY, data))
    assert spins.read_bytes() == (song_source.folder / song_plays.spins_file_name(DAY)).read_bytes()
    assert files_under(data) == ["spins/2019/02/08/spins.snappy.parquet"]


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs as the data folder (needs root, as `make test` runs here)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode:
        pytest.fail(f"cannot mount a small tmpfs (the disk-full test needs root): {mounted.stderr}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_fails_the_download_naming_the_path_and_keeps_nothing(song_source, small_disk):
    with pytest.raises(OSError, match="No space left on device") as failure:
        song_plays.download_spins(song_plays.http_fetcher(), DAY, small_disk)
    message = str(failure.value)
    assert f"while writing {small_disk}/spins/2019/02/08/spins.snappy.parquet; nothing was kept" in message
    assert files_under(small_disk) == []
    assert transient_reason(failure.value) is None  # a full disk needs a person, not a retry


@pytest.mark.parametrize("mode", ["500", "cut", "hang"])
def test_s3_failing_while_a_log_is_read_fails_the_day_as_transient_writes_nothing_and_the_retry_loads_it(
    warehouse, s3, s3_server, monkeypatch, mode
):
    """Page views read their logs through a proxy in front of the S3 server that answers 500, cuts
    a log's body a third in or hangs in it; listing the keys works, as it would."""
    import json

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from sandbox.generate_page_views import generate as generate_views
    from steps import page_views
    from tests.faults.conftest import MisbehavingSource, proxy_to
    from tests.fingerprint import tables_fingerprint
    from tests.unit.test_page_views import BUCKET, put

    day = dt.date(2026, 11, 1)
    put(s3, generate_views(day, day, users=200, views=2_000))
    page_views.load_day(warehouse, s3, BUCKET, day)  # a clean run, for comparison
    warehouse.execute("UPDATE page_views_loaded_days SET loaded_at = '2026-11-02'")  # when, not what
    clean = tables_fingerprint(warehouse)
    warehouse.execute("DROP TABLE " + ", ".join(clean) + " CASCADE")  # the two views go with their tables
    page_views.ensure_tables(warehouse)
    warehouse.commit()
    before = tables_fingerprint(warehouse, with_xmin=True)

    proxy = MisbehavingSource(answer=proxy_to(s3_server), misbehaves=lambda method, path: "/PageViews/" in path)
    # The client gives up on a silent server after 2 s and does not retry by itself: the task does.
    conn = {"conn_type": "aws", "login": "testing", "password": "testing", "extra": {
        "endpoint_url": proxy.url, "region_name": "us-east-1",
        "config_kwargs": {"read_timeout": 2, "connect_timeout": 2, "retries": {"max_attempts": 1}}}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_AWS_PROXIED", json.dumps(conn))
    try:
        proxy.mode = mode
        with pytest.raises(Exception) as failure:
            page_views.load_day(warehouse, S3Hook(aws_conn_id="aws_proxied"), BUCKET, day)
        assert proxy.requests >= 1, "the fault never struck"
        assert transient_reason(failure.value), f"{mode}: {failure.value!r} would not be retried"
        print(f"{mode}: {failure.value!r} -> retried: {transient_reason(failure.value)}")
        warehouse.rollback()
        assert tables_fingerprint(warehouse, with_xmin=True) == before, f"{mode}: a part of the day was written"

        proxy.mode = "ok"  # what the task's retry meets
        page_views.load_day(warehouse, S3Hook(aws_conn_id="aws_proxied"), BUCKET, day)
    finally:
        proxy.stop()
    warehouse.execute("UPDATE page_views_loaded_days SET loaded_at = '2026-11-02'")
    assert tables_fingerprint(warehouse) == clean
