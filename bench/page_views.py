"""user_page_views over 30 days at a realistic shape: 40,000 users, 20,000 pages whose popularity
follows Zipf's law, 400,000 page views a day (plus staging rows, e-mail changes and overlapping
files). Each day's load (parse from S3, de-duplicate into the event tables) and build (apply the
day's new rows to both tables) is timed, with the peak memory of the process during that day.

The baseline beside it is the naive rebuild: re-read every day's files so far from S3 into pandas,
compute both tables from their definitions (tests/page_views_reference.py), as a run without the
event tables would have to, and write them to the warehouse, since the tables there are what the
pipeline delivers (on day 1, the middle day and the last; its compute time alone is printed too).
Its result checks ours: both tables, whole, row for row.

    python -m bench page_views [--days 30 --views 400000 --users 40000 --urls 20000] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.common import print_table
from sandbox.embedded_postgres import EmbeddedPostgres, free_port
from tests.page_views_reference import assert_tables_equal, frames_from_files, reference_tables

START = dt.date(2026, 10, 1)
BUCKET = "pv-bench"


def reset_peak_memory() -> None:
    """Start this process's peak resident memory (VmHWM) afresh (Linux: clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def naive_build(s3, up_to: dt.date):
    """Every day's files so far re-read from S3 and both tables computed in pandas by their
    definitions (tests/page_views_reference.py), as a run without the event tables would have to."""
    files = {k: s3.get_key(k, BUCKET).get()["Body"].read()
             for k in s3.list_keys(bucket_name=BUCKET) if k.split("/")[1][:10] <= f"{up_to}"}  # fmt: skip
    return reference_tables(*frames_from_files(files))


def naive_day(warehouse_uri: str, day: dt.date) -> tuple[float, float, float]:
    """The naive rebuild up to `day`, then our tables checked against its, whole: (compute s, total
    s, peak MB). `run` calls it in a process of its own, so that the peak is the rebuild's alone
    and the memory pandas keeps afterwards does not count as ours on the days that follow."""
    import psycopg
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    started = time.perf_counter()
    reference = naive_build(S3Hook(aws_conn_id="aws_default"), day)
    compute_s = time.perf_counter() - started
    with psycopg.connect(warehouse_uri) as conn:
        naive_write(conn, *reference)
        total_s = time.perf_counter() - started
        assert_tables_equal(conn, *reference)  # both tables, whole, equal the reference's
    return compute_s, total_s, peak_mb()


# The naive rebuild's two tables: columns and key.
NAIVE_TABLES = {
    "user_page_views": (
        "user_id bigint, email text, url text, count bigint, last_viewed timestamptz", "user_id, url"
    ),
    "page_recommendations": (
        "user_id bigint, email text, recommended_url text, rank integer", "user_id, rank"
    ),
}


def naive_write(conn, upv, recs) -> None:
    """The naive rebuild's tables replace its last ones in the warehouse (schema naive), by COPY
    (the project's copy_batches, as its loads do)."""
    import pyarrow as pa

    from steps.core.warehouse import copy_batches

    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS naive CASCADE")
        cur.execute("CREATE SCHEMA naive")
        for (name, (columns, key)), frame in zip(NAIVE_TABLES.items(), (upv, recs), strict=True):
            cur.execute(f"CREATE TABLE naive.{name} ({columns}, PRIMARY KEY ({key}))")
            names = [column.split()[0] for column in columns.split(", ")]
            batches = pa.Table.from_pandas(frame[names], preserve_index=False).to_batches(100_000)
            copy_batches(cur, f"naive.{name}", ", ".join(names), batches, f"naive {name}")
    conn.commit()


def run(work_dir: Path, days: int, views: int, users: int, urls: int) -> None:
    import logging

    import psycopg
    from moto.server import ThreadedMotoServer

    from sandbox.generate_page_views import day_files, upload
    from steps import page_views as steps

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    s3_server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    s3_server.start()
    url = f"http://127.0.0.1:{port}"
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
        {"conn_type": "aws", "login": "testing", "password": "testing",
         "extra": {"endpoint_url": url, "region_name": "us-east-1"}}
    )  # fmt: skip
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    s3 = S3Hook(aws_conn_id="aws_default")
    pg = EmbeddedPostgres(work_dir / "postgres_pv", free_port()).start()
    with psycopg.connect(pg.uri(), autocommit=True) as admin:  # a run starts from no table at all
        admin.execute("DROP DATABASE IF EXISTS pv_bench WITH (FORCE)")
    pg.create_database("pv_bench")
    rows, checked = [], []
    naive_days = {0, days // 2, days - 1}
    # a fresh process for each naive rebuild (spawned: this one runs threads, the S3 server's)
    spawn = multiprocessing.get_context("spawn")
    naive_processes = ProcessPoolExecutor(1, mp_context=spawn, max_tasks_per_child=1)
    try:
        with psycopg.connect(pg.uri("pv_bench")) as conn:
            for i in range(days):
                day = START + dt.timedelta(days=i)
                upload(day_files(day, users, views, seed=5, urls=urls), BUCKET, url, "testing", "testing")
                reset_peak_memory()
                started = time.perf_counter()
                loaded = steps.load_day(conn, s3, BUCKET, day)
                load_s = time.perf_counter() - started
                started = time.perf_counter()
                steps.build_tables(conn, day)
                build_s = time.perf_counter() - started
                ours_mb = peak_mb()
                naive = ["", "", "", "", ""]
                if i in naive_days:
                    rebuild = naive_processes.submit(naive_day, pg.uri("pv_bench"), day)
                    compute_s, naive_s, naive_mb = rebuild.result()
                    ours_s = load_s + build_s
                    naive = [f"{compute_s:.1f}", f"{naive_s:.1f}", f"{compute_s / ours_s:.2f}x",
                             f"{naive_s / ours_s:.2f}x", f"{naive_mb:,.0f}"]  # fmt: skip
                    checked.append(f"{i + 1}")
                upv_rows, recs = conn.execute("SELECT (SELECT count(*) FROM user_page_counts), "
                                              "(SELECT count(*) FROM page_recommendation_ranks)").fetchone()
                rows.append([f"{i + 1}", f"{loaded['page_views']:,}", f"{load_s:.1f}", f"{build_s:.1f}",
                             f"{upv_rows:,}", f"{recs:,}", f"{ours_mb:,.0f}", *naive])  # fmt: skip
                print(f"day {i + 1}/{days}: load {load_s:.1f}s, build {build_s:.1f}s", flush=True)
    finally:
        naive_processes.shutdown()
        pg.stop()
        s3_server.stop()
    print_table(
        f"user_page_views: {days} days of {views:,} generated page views a day ({users:,} users, "
        f"{urls:,} pages by Zipf's law);\nnaive = re-read every day's files so far, compute both tables "
        "in pandas (compute s), write them to the warehouse (total s); vs = naive s / (load s + build s);\n"
        "peak MB = this process during the day's work (the naive rebuild runs in a process of its own)",
        ["day", "views in files", "load s", "build s", "user_page_views", "recommendations", "peak MB",
         "naive compute s", "naive total s", "vs compute", "vs total", "naive peak MB"],
        rows,
    )  # fmt: skip
    print(f"checked: on days {', '.join(checked)} both tables equal the naive rebuild's, row for row")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--views", type=int, default=400_000, help="page views a day")
    parser.add_argument("--users", type=int, default=40_000)
    parser.add_argument("--urls", type=int, default=20_000, help="pages on the site")
    parser.add_argument("--quick", action="store_true", help="a tenth of the views, users and pages")
    parser.add_argument("--work-dir", type=Path, default=Path("bench/out"))
    args, _ = parser.parse_known_args()
    scale = 10 if args.quick else 1
    work_dir = args.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    run(work_dir, args.days, args.views // scale, args.users // scale, args.urls // scale)


if __name__ == "__main__":
    main()
