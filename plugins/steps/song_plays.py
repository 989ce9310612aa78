"""Song plays (PIPELINES.md 3), the Luigi + Spark workshop ported.

    DownloadSpins(date)      -> data/spins/YYYY/MM/DD/spins.snappy.parquet
    DownloadListeners(date)  -> data/listeners/listeners.snappy.parquet
                                + data/markers/YYYY/MM/DD/listeners_downloaded.SUCCESS
    DatasetGen(date)         -> data/output/YYYY/MM/DD/{dataset,counts_by_zip_sub}/ (Spark job
                                steps/jobs/dataset_gen.py)

Downloads go to a temporary name beside the target and become the target only once complete and
readable as parquet with the columns the job needs, so a truncated or wrong download leaves nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from steps.core.files import already_complete, atomic_path, write_text_atomic

log = logging.getLogger(__name__)

HTTP_CONN_ID = "song_plays_http"
LISTENERS_FILE = "listeners.snappy.parquet"
# The columns the job uses, with the kind of values it needs ("any": it only groups by them).
SPINS_COLUMNS = {"fake_listener_id": "integer", "elapsed_seconds": "number"}
LISTENERS_COLUMNS = {"fake_listener_id": "integer", "fake_zipcode": "any", "subscription_type": "any"}
JOB = Path(__file__).parent / "jobs" / "dataset_gen.py"


class DownloadError(RuntimeError):
    pass


def spins_file_name(day: dt.date) -> str:
    return f"spins-{day:%Y-%m-%d}.snappy.parquet"


@dataclass(frozen=True)
class DayPaths:
    spins: Path
    listeners: Path
    listeners_marker: Path
    dataset: Path
    counts: Path

    @property
    def outputs_done(self) -> list[Path]:
        return [self.dataset / "_SUCCESS", self.counts / "_SUCCESS"]


def day_paths(data_dir: Path, day: dt.date) -> DayPaths:
    data_dir = Path(data_dir)
    ymd = f"{day:%Y/%m/%d}"
    return DayPaths(
        spins=data_dir / "spins" / ymd / "spins.snappy.parquet",
        listeners=data_dir / "listeners" / LISTENERS_FILE,
        listeners_marker=data_dir / "markers" / ymd / "listeners_downloaded.SUCCESS",
        dataset=data_dir / "output" / ymd / "dataset",
        counts=data_dir / "output" / ymd / "counts_by_zip_sub",
    )


def download_spins(fetch, day: dt.date, data_dir: Path) -> str:
    """`fetch(file_name, target)` downloads one source file (see http_fetcher)."""
    target = day_paths(data_dir, day).spins
    if not already_complete([target], "download_spins"):
        download_parquet(fetch, spins_file_name(day), target, SPINS_COLUMNS)
    return str(target)


def download_listeners(fetch, day: dt.date, data_dir: Path) -> str:
    """The listeners file keeps its name and is re-posted in place: fetched at most once a day,
    which the day's marker records."""
    paths = day_paths(data_dir, day)
    if not already_complete([paths.listeners, paths.listeners_marker], "download_listeners"):
        download_parquet(fetch, LISTENERS_FILE, paths.listeners, LISTENERS_COLUMNS)
        write_text_atomic(paths.listeners_marker, f"downloaded {dt.datetime.now(dt.UTC).isoformat()}\n")
    return str(paths.listeners)


def download_parquet(fetch, file_name: str, target: Path, required_columns: dict[str, str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import pyarrow.types as t

    with atomic_path(target) as tmp:
        size = fetch(file_name, tmp)
        try:
            schema = pq.ParquetFile(tmp).schema_arrow
        except (pa.ArrowInvalid, OSError) as err:
            raise DownloadError(
                f"{file_name}: the download ({size:,} bytes) is not a readable parquet file, "
                f"maybe truncated: {err}; nothing was written to {target}"
            ) from None
        missing = [c for c in required_columns if c not in schema.names]
        if missing:
            raise DownloadError(f"{file_name}: missing column(s) {', '.join(missing)}; nothing was written")
        fits = {"integer": t.is_integer, "number": lambda k: t.is_integer(k) or t.is_floating(k)}
        wrong = [
            f"column {name} is {schema.field(name).type}, the job needs {kind} values"
            for name, kind in required_columns.items()
            if kind in fits and not fits[kind](schema.field(name).type)
        ]
        if wrong:
            raise DownloadError(f"{file_name}: {'; '.join(wrong)}; nothing was written")
        bad_value = _first_bad_value(tmp, required_columns)
        if bad_value:
            raise DownloadError(f"{file_name}: {bad_value}; nothing was written")
    log.info("downloaded %s to %s (%s bytes)", file_name, target, f"{target.stat().st_size:,}")


def _first_bad_value(path: Path, required_columns: dict[str, str]) -> str | None:
    """Where a value the job cannot use first appears: an empty integer (a listener id the join
    would drop silently) or a NaN / infinite number (a sum it would poison). Read in batches:
    memory stays one batch, whatever the file."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import pyarrow.types as t

    checked = [name for name, kind in required_columns.items() if kind in ("integer", "number")]
    rows_before = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1 << 20, columns=checked):
        for name in checked:
            column = batch.column(name)
            bad = pc.is_null(column)
            if t.is_floating(column.type):
                bad = pc.or_(bad, pc.invert(pc.is_finite(column)))
            first = pc.index(bad, True).as_py()
            if first >= 0:
                value = column[first].as_py()
                what = "an empty value" if value is None else f"{value} is not a finite number"
                return f"row {rows_before + first + 1}, column {name}: {what}"
        rows_before += batch.num_rows
    return None


def http_fetcher(conn_id: str = HTTP_CONN_ID, timeout_seconds: float = 300):
    """A `fetch(file_name, target) -> bytes` over the Airflow HTTP connection `conn_id`, streamed.
    `timeout_seconds` bounds the connect and each wait for more of the body: a source that hangs
    half-way fails the download (a transient error: the task's retry fetches it again)."""
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="GET", http_conn_id=conn_id)

    def fetch(file_name: str, target: Path) -> int:
        response = hook.run(file_name, extra_options={"stream": True, "timeout": timeout_seconds})
        written = 0
        with open(target, "wb") as out:
            for chunk in response.iter_content(chunk_size=1 << 20):
                out.write(chunk)
                written += len(chunk)
        expected = response.headers.get("Content-Length")
        if expected is not None and int(expected) != written:
            raise DownloadError(
                f"{file_name}: got {written:,} of {int(expected):,} bytes; nothing was written"
            )
        return written

    return fetch


def job_arguments(day: dt.date, minrows: int, data_dir: Path) -> list[str]:
    """The original DatasetGen's application arguments."""
    paths = day_paths(data_dir, day)
    return [
        "--day", f"{day:%Y-%m-%d}", "--minrows", str(minrows),
        "--listeners_path", str(paths.listeners), "--spins_path", str(paths.spins),
        "--dataset_out_path", str(paths.dataset), "--analysis_out_path", str(paths.counts),
    ]  # fmt: skip
