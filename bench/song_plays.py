"""DatasetGen on one day of generated spins (10,000,000 by default): the PySpark job with
spark-submit in local mode on 2 cores, its time split into JVM start-up (an empty Spark
application) and work, next to the same transformation in pandas, in one process, as the baseline.
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
    baseline = measure(
        [
            sys.executable,
            "-m",
            "bench.song_plays",
            "--pandas",
            str(spins_path),
            str(listeners_path),
            str(out / "pandas"),
        ]
    )
    rows = spins + spins // 50  # the generator adds 2 % exact repeats

    def row(name: str, m: Measured, startup_s: float) -> list[str]:
        work = m.seconds - startup_s
        return [name, f"{rows:,}", f"{m.seconds:.1f}", f"{startup_s:.1f}", f"{work:.1f}",
                f"{rows / work:,.0f}", f"{baseline.seconds / m.seconds:.2f}x",
                f"{m.peak_rss_mb:,.0f}"]  # fmt: skip

    print_table(
        f"DatasetGen on {rows:,} generated spins of one day (vs pandas = pandas wall time / this wall time;"
        "\nSpark's start-up = an empty application through spark-submit)",
        ["method", "spins", "wall s", "start-up s", "work s", "spins/s (work)", "vs pandas", "peak MB"],
        [row("spark-submit local[2] (PySpark job)", job, startup.seconds),
         row("pandas, one process (baseline)", baseline, 0.0)],
    )  # fmt: skip


def main() -> None:
    if "--pandas" in sys.argv:
        spins, listeners, out = sys.argv[sys.argv.index("--pandas") + 1 :]
        pandas_baseline(spins, listeners, out)
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spins", type=int, default=10_000_000)
    parser.add_argument("--work-dir", type=Path, default=Path("bench/out"))
    args, _ = parser.parse_known_args()
    work_dir = args.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    run(work_dir, args.spins)


if __name__ == "__main__":
    main()
