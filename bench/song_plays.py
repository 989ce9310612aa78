"""DatasetGen on one day of generated spins (10,000,000 by default; a tenth with --quick): the
PySpark job with spark-submit in local mode on 2 cores, its time split into JVM start-up (an empty
Spark application) and work, next to the same transformation in pandas, in one process, as the
baseline, and in DuckDB as a reference line (a single-machine engine a user might pick instead).
Each writes the same two gzip TSV files; the rows of their datasets are counted back and compared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from bench.common import Measured, measure, print_table

DAY = dt.date(2019, 2, 8)
EMPTY_APP = "from pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate().stop()\n"


def pandas_baseline(spins: str, listeners: str, out: str) -> None:
    """The job's transformation and outputs, in pandas (run in a child process)."""
    import pandas as pd

    spins_frame = pd.read_parquet(spins)
    listeners_frame = pd.read_parquet(listeners)
    dataset = spins_frame[spins_frame["elapsed_seconds"] > 30].merge(listeners_frame, on="fake_listener_id")
    columns = list(spins_frame.columns) + [c for c in listeners_frame.columns if c != "fake_listener_id"]
    dataset = dataset[columns].drop_duplicates()
    counts = dataset.groupby(["fake_zipcode", "subscription_type"]).size().rename("spins").reset_index()
    Path(out).mkdir(parents=True, exist_ok=True)
    dataset.sort_values(columns).to_csv(f"{out}/dataset.tsv.gz", sep="\t", index=False)
    counts.to_csv(f"{out}/counts.tsv.gz", sep="\t", index=False)
    print(f"rows={len(dataset)}")


def duckdb_reference(spins: str, listeners: str, out: str) -> None:
    """The same transformation and outputs in DuckDB (run in a child process)."""
    import duckdb

    Path(out).mkdir(parents=True, exist_ok=True)
    db = duckdb.connect()
    db.execute(f"""
        CREATE TEMP TABLE dataset AS
        SELECT DISTINCT s.*, l.* EXCLUDE (fake_listener_id)
        FROM read_parquet('{spins}') s JOIN read_parquet('{listeners}') l USING (fake_listener_id)
        WHERE s.elapsed_seconds > 30
    """)
    tsv = "(FORMAT csv, DELIMITER '\t', HEADER, COMPRESSION gzip)"
    db.execute(f"COPY (SELECT * FROM dataset ORDER BY ALL) TO '{out}/dataset.tsv.gz' {tsv}")
    db.execute(f"""COPY (SELECT fake_zipcode, subscription_type, count(*) AS spins FROM dataset
                         GROUP BY ALL ORDER BY ALL) TO '{out}/counts.tsv.gz' {tsv}""")
    print(f"rows={db.execute('SELECT count(*) FROM dataset').fetchone()[0]}")


def rows_written(files: list[Path]) -> int:
    """Data rows (headers excluded) of gzip TSV files."""
    import gzip

    if not files:
        raise RuntimeError("no output file to count")
    return sum(sum(1 for _ in gzip.open(f, "rb")) - 1 for f in files)


def run(work_dir: Path, spins: int) -> None:
    import pyspark

    from sandbox.generate_song_plays import generate
    from steps.song_plays import JOB, spins_file_name

    source = work_dir / f"song_plays_{spins}"
    if not (source / spins_file_name(DAY)).exists():
        generate(source, DAY, DAY, spins=spins)
    spins_path, listeners_path = source / spins_file_name(DAY), source / "listeners.snappy.parquet"
    spark_submit = str(Path(pyspark.__file__).parent / "bin" / "spark-submit")
    env = {"PYSPARK_PYTHON": sys.executable, "SPARK_HOME": str(Path(pyspark.__file__).parent)}
    submit = [
        spark_submit,
        "--master",
        "local[2]",
        "--driver-memory",
        "4g",
        "--conf",
        "spark.ui.enabled=false",
    ]
    empty_app = work_dir / "empty_app.py"
    empty_app.write_text(EMPTY_APP)
    out = work_dir / "song_plays_out"
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    startup = measure([*submit, str(empty_app)], env=env)
    job = measure([
        *submit, str(JOB), "--day", f"{DAY}", "--minrows", "1", "--spins_path", str(spins_path),
        "--listeners_path", str(listeners_path), "--dataset_out_path", str(out / "spark/dataset"),
        "--analysis_out_path", str(out / "spark/counts_by_zip_sub"),
    ], env=env)  # fmt: skip
    def transform_in_python(flag: str, name: str) -> Measured:
        return measure([sys.executable, "-m", "bench.song_plays", flag, str(spins_path), str(listeners_path),
                        str(out / name)])  # fmt: skip

    baseline = transform_in_python("--pandas", "pandas")
    reference = transform_in_python("--duckdb", "duckdb")
    rows = spins + spins // 50  # the generator adds 2 % exact repeats
    datasets = {"spark": "spark/dataset/*.gz", "pandas": "pandas/dataset.tsv.gz",
                "duckdb": "duckdb/dataset.tsv.gz"}  # fmt: skip
    written = {name: rows_written([*out.glob(pattern)]) for name, pattern in datasets.items()}
    if len(set(written.values())) != 1:
        raise RuntimeError(f"the engines wrote different datasets: {written}")

    def row(name: str, m: Measured, startup_s: float) -> list[str]:
        work = m.seconds - startup_s
        return [name, f"{rows:,}", f"{m.seconds:.1f}", f"{startup_s:.1f}", f"{work:.1f}",
                f"{rows / work:,.0f}", f"{baseline.seconds / work:.2f}x",
                f"{m.peak_rss_mb:,.0f}"]  # fmt: skip

    print_table(
        f"DatasetGen on {rows:,} generated spins of one day (vs pandas = pandas wall time / this work time;"
        "\nSpark's start-up = an empty application through spark-submit)",
        ["method", "spins", "wall s", "start-up s", "work s", "spins/s (work)", "vs pandas", "peak MB"],
        [row("spark-submit local[2] (PySpark job)", job, startup.seconds),
         row("pandas, one process (baseline)", baseline, 0.0),
         row("DuckDB, one process (reference)", reference, 0.0)],
    )  # fmt: skip
    print(f"each wrote {written['pandas']:,} dataset rows (after the filter, the join and de-duplication)")


def main() -> None:
    for flag, transform in (("--pandas", pandas_baseline), ("--duckdb", duckdb_reference)):
        if flag in sys.argv:
            transform(*sys.argv[sys.argv.index(flag) + 1 :])
            return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spins", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="a tenth of the spins")
    parser.add_argument("--work-dir", type=Path, default=Path("bench/out"))
    args, _ = parser.parse_known_args()
    work_dir = args.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    run(work_dir, args.spins // 10 if args.quick else args.spins)


if __name__ == "__main__":
    main()
