"""A source that misbehaves in the middle of a download (song plays' HTTP source answering 500,
closing the connection half-way through a body, or hanging past the client's timeout) and a
data disk that fills up while a step writes: a clear error, a transient one where a retry can
help, and no truncated file ever kept."""

from __future__ import annotations

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
