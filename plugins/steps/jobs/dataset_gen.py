"""DatasetGen, the workshop's Spark job (originally Scala), in PySpark.

    spark-submit dataset_gen.py --day 2019-02-08 --minrows 100 --listeners_path L --spins_path S
                                --dataset_out_path D --analysis_out_path A

Keeps spins longer than 30 seconds, joins them with the listeners on `fake_listener_id` (inner),
drops duplicate rows, and checks that at least `minrows` rows remain before writing anything.
Then writes the dataset, sorted on all its columns, and the spins counted per (fake_zipcode,
subscription_type), each as one gzip tab-separated file with a header and a `_SUCCESS` marker.
Each output is written under a temporary name beside its target and renamed into place, so a
failure leaves no partial output.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import secrets
import shutil
import sys
import time

MIN_ELAPSED_SECONDS = 30


class TooFewRowsError(RuntimeError):
    pass


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--day", required=True)
    parser.add_argument("--minrows", type=int, default=100)
    parser.add_argument("--listeners_path", required=True)
    parser.add_argument("--spins_path", required=True)
    parser.add_argument("--dataset_out_path", required=True)
    parser.add_argument("--analysis_out_path", required=True)
    return parser.parse_args(argv)


def build(spark, spins_path: str, listeners_path: str):
    """(dataset, counts). The dataset is range-partitioned on all its columns, de-duplicated and
    sorted within each partition: equal rows share a partition, so `distinct` needs no shuffle of
    its own, and partition i holds rows ordered before partition i+1's, so the partitions in order
    are the sorted dataset. One shuffle where distinct then orderBy took two. It is cached, so that
    the count, the file and the counts per zipcode read it once."""
    from pyspark.sql import functions as fn

    spins = spark.read.parquet(spins_path).where(fn.col("elapsed_seconds") > MIN_ELAPSED_SECONDS)
    listeners = spark.read.parquet(listeners_path)
    dataset = spins.join(listeners, on="fake_listener_id", how="inner")
    # The spins' columns in their order, then the listener's (the key once).
    columns = spins.columns + [c for c in listeners.columns if c != "fake_listener_id"]
    dataset = dataset.select(*columns).repartitionByRange(*columns).distinct().sortWithinPartitions(*columns)
    dataset = dataset.cache()
    counts = (
        dataset.groupBy("fake_zipcode", "subscription_type")
        .agg(fn.count(fn.lit(1)).alias("spins"))
        .orderBy("fake_zipcode", "subscription_type")
    )
    return dataset, counts


def write_tsv(frame, target: str) -> None:
    """One gzip TSV file with a header and _SUCCESS, renamed into place when complete; a killed
    earlier attempt's temporary output is removed first.

    Spark writes each partition of `frame` as a gzip file of its own, on every core, and the file
    is their concatenation behind a gzip member holding the header: a gzip file may hold several
    members, which every reader decompresses as one stream (RFC 1952). Partitions are numbered in
    the frame's order, so the rows stay sorted. `coalesce(1)` would sort and compress on one core.
    """
    target = target.rstrip("/")
    for stale in glob.glob(f"{glob.escape(target)}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)  # what a killed attempt was writing: never done
    temporary = f"{target}.tmp-{secrets.token_hex(4)}"
    parts = f"{temporary}/parts"
    try:
        (
            frame.write.option("sep", "\t")
            .option("header", False)
            .option("compression", "gzip")
            .option("escape", '"')  # a quote inside a field is doubled (RFC 4180), not backslashed
            .option("timestampFormat", "yyyy-MM-dd HH:mm:ss")
            .csv(parts)
        )
        with open(f"{temporary}/part-00000.csv.gz", "wb") as out:
            out.write(gzip.compress(("\t".join(frame.columns) + "\n").encode()))
            for part in sorted(glob.glob(f"{glob.escape(parts)}/part-*.csv.gz")):
                with open(part, "rb") as piece:
                    shutil.copyfileobj(piece, out)
        shutil.rmtree(parts)
        open(f"{temporary}/_SUCCESS", "wb").close()
        if os.path.exists(target):
            shutil.rmtree(target)  # a rerun that got this far replaces a partial earlier attempt
        os.rename(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def run(spark, args) -> dict:
    seconds: dict[str, float] = {}

    def timed(phase: str, action):
        started = time.monotonic()
        result = action()
        seconds[phase] = time.monotonic() - started
        return result

    dataset, counts = build(spark, args.spins_path, args.listeners_path)
    rows = timed("read, filter, join, de-duplicate, sort", dataset.count)
    if rows < args.minrows:
        raise TooFewRowsError(
            f"DatasetGen {args.day}: {rows} rows after the filter (elapsed_seconds > {MIN_ELAPSED_SECONDS}), "
            f"the join and de-duplication, fewer than minrows={args.minrows}; nothing was written"
        )
    os.makedirs(os.path.dirname(args.dataset_out_path.rstrip("/")), exist_ok=True)
    timed("write the dataset", lambda: write_tsv(dataset, args.dataset_out_path))
    timed("count and write the counts", lambda: write_tsv(counts, args.analysis_out_path))
    return {"rows": rows, "dataset": args.dataset_out_path, "counts": args.analysis_out_path,
            "seconds": seconds}  # fmt: skip


def main(argv=None) -> int:
    from pyspark.sql import SparkSession

    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = (
        SparkSession.builder.appName(f"DatasetGen {args.day}")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    try:
        result = run(spark, args)
    except TooFewRowsError as err:
        spark.stop()
        # Printed last, after Spark's shutdown lines, so that it ends the task's log.
        print(f"ERROR {err}", file=sys.stderr, flush=True)
        return 2
    spark.stop()
    print(f"DatasetGen {args.day}: wrote {result['rows']} rows to {result['dataset']}")
    print(f"DatasetGen {args.day}: wrote the counts to {result['counts']}")
    took = ", ".join(f"{phase} {s:.1f}s" for phase, s in result["seconds"].items())
    print(f"DatasetGen {args.day}: {took}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
