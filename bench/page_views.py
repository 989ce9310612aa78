"""user_page_views over 30 days of 1,000,000 generated page views each (500 users, 65 pages):
each day's load (parse from S3, de-duplicate into the event tables) and build (both tables over
every day so far), wall time and the peak memory of the process doing it. The baseline beside it
is the naive build: re-reading every past day's files from S3 and computing the same first table
in pandas, as a run without the event tables would have to.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import time
from pathlib import Path

from bench.common import print_table
from sandbox.embedded_postgres import EmbeddedPostgres, free_port

START = dt.date(2026, 10, 1)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def naive_build(s3, bucket: str, up_to: dt.date):
    """Everything re-read and recomputed in pandas (the first table only)."""
    import io

    import pandas as pd

    keys = [k for k in s3.list_keys(bucket_name=bucket, prefix="PageViews/") if k[10:20] <= f"{up_to}"]
    views = pd.concat(
        pd.read_json(io.StringIO(s3.read_key(k, bucket)), lines=True) for k in keys
    ).drop_duplicates()
    views = views[views["environment"] == "production"]
    return views.groupby(["user_id", "url"]).agg(count=("ts", "size"), last_viewed=("ts", "max"))


def run(work_dir: Path, days: int, views: int, users: int) -> None:
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
    import os

    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
        {"conn_type": "aws", "login": "testing", "password": "testing",
         "extra": {"endpoint_url": url, "region_name": "us-east-1"}}
    )  # fmt: skip
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    s3 = S3Hook(aws_conn_id="aws_default")
    pg = EmbeddedPostgres(work_dir / "postgres_pv", free_port()).start()
    pg.create_database("pv_bench")
    with psycopg.connect(pg.uri("pv_bench"), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS page_view_events, user_update_events, page_views_loaded_days, "
                     "user_page_views, page_recommendations")  # fmt: skip
    rows = []
    try:
        with psycopg.connect(pg.uri("pv_bench")) as conn:
            for i in range(days):
                day = START + dt.timedelta(days=i)
                upload(day_files(day, users, views, seed=5), "pv-bench", url, "testing", "testing")
                started = time.perf_counter()
                loaded = steps.load_day(conn, s3, "pv-bench", day)
                load_s = time.perf_counter() - started
                started = time.perf_counter()
                built = steps.build_tables(conn, day)
                build_s = time.perf_counter() - started
                naive_s = None
                if i in (0, days // 2, days - 1):
                    started = time.perf_counter()
                    naive_build(s3, "pv-bench", day)
                    naive_s = time.perf_counter() - started
                rows.append([f"{day}", f"{loaded['page_views']:,}", f"{load_s:.1f}", f"{build_s:.1f}",
                             f"{built['user_page_views']:,}", "" if naive_s is None else f"{naive_s:.1f}",
                             "" if naive_s is None else f"{naive_s / (load_s + build_s):.2f}x",
                             f"{peak_mb():,.0f}"])  # fmt: skip
                print(f"day {i + 1}/{days} done", flush=True)
    finally:
        pg.stop()
        s3_server.stop()
    print_table(
        f"user_page_views: {days} days of {views:,} generated page views ({users} users); "
        "naive = re-read all days' files and aggregate in pandas; peak MB = this process so far",
        [
            "day",
            "views in files",
            "load s",
            "build s",
            "user_page_views",
            "naive s",
            "naive / ours",
            "peak MB",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--views", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--work-dir", type=Path, default=Path("bench/out"))
    args, _ = parser.parse_known_args()
    work_dir = args.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    run(work_dir, args.days, args.views, args.users)


if __name__ == "__main__":
    main()
