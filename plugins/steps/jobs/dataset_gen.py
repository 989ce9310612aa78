"""DatasetGen, the workshop's Spark job (originally Scala), in PySpark.

    spark-submit dataset_gen.py --day 2019-02-08 --minrows 100 --listeners_path L --spins_path S
                                --dataset_out_path D --analysis_out_path A

Keeps spins longer than 30 seconds, joins them with the listeners on `fake_listener_id` (inner),
drops duplicate rows, and checks that at least `minrows` rows remain before writing anything.
Then writes the dataset and the spins counted per (fake_zipcode, subscription_type), each as one
gzip tab-separated file with a header and a `_SUCCESS` marker. Each output is written under a
temporary name beside its target and renamed into place, so a failure leaves no partial output.
"""

from __future__ import annotations

import argparse
import glob
import os
import secrets
import shutil
import sys

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
    from pyspark.sql import functions as fn

    spins = spark.read.parquet(spins_path).where(fn.col("elapsed_seconds") > MIN_ELAPSED_SECONDS)
    listeners = spark.read.parquet(listeners_path)
    dataset = spins.join(listeners, on="fake_listener_id", how="inner")
    # The spins' columns in their order, then the listener's (the key once).
    columns = spins.columns + [c for c in listeners.columns if c != "fake_listener_id"]
    dataset = dataset.select(*columns).distinct()
    counts = (
        dataset.groupBy("fake_zipcode", "subscription_type")
        .agg(fn.count(fn.lit(1)).alias("spins"))
        .orderBy("fake_zipcode", "subscription_type")
    )
    return dataset.orderBy(*columns), counts


def write_tsv(frame, target: str) -> None:
    """One gzip TSV file with a header and _SUCCESS, renamed into place when complete; a killed
    earlier attempt's temporary output is removed first."""
    target = target.rstrip("/")
    for stale in glob.glob(f"{glob.escape(target)}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)  # what a killed attempt was writing: never done
    temporary = f"{target}.tmp-{secrets.token_hex(4)}"
    try:
        (
            frame.coalesce(1)
            .write.option("sep", "\t")
            .option("header", True)
            .option("compression", "gzip")
            .option("escape", '"')  # a quote inside a field is doubled (RFC 4180), not backslashed
            .option("timestampFormat", "yyyy-MM-dd HH:mm:ss")
            .csv(temporary)
        )
        if os.path.exists(target):
            shutil.rmtree(target)  # a rerun that got this far replaces a partial earlier attempt
        os.rename(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def run(spark, args) -> dict:
    dataset, counts = build(spark, args.spins_path, args.listeners_path)
    dataset = dataset.cache()
    rows = dataset.count()
    if rows < args.minrows:
        raise TooFewRowsError(
            f"DatasetGen {args.day}: {rows} rows after the filter (elapsed_seconds > {MIN_ELAPSED_SECONDS}), "
            f"the join and de-duplication, fewer than minrows={args.minrows}; nothing was written"
        )
    os.makedirs(os.path.dirname(args.dataset_out_path.rstrip("/")), exist_ok=True)
    write_tsv(dataset, args.dataset_out_path)
    write_tsv(counts, args.analysis_out_path)
    return {"rows": rows, "dataset": args.dataset_out_path, "counts": args.analysis_out_path}


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
