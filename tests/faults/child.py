"""A step run in a process of its own, so that a fault test can kill it in the middle of its work
as the OS kills a task process: `python -m tests.faults.child <step> '<json arguments>'`. The
warehouse is reached as the DAGs reach it: connection `warehouse` (AIRFLOW_CONN_WAREHOUSE)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path


def load_candidates(folder: str) -> None:
    from steps.core.warehouse import warehouse_connection
    from steps.recsys import CANDIDATES_INFERENCE, load_recs_file

    with warehouse_connection() as conn:
        print(load_recs_file(conn, Path(folder), CANDIDATES_INFERENCE))


def fetch_estimates(api_url: str, token: str, data_dir: str, key: str) -> None:
    from steps import trip_time

    client = trip_time.EstimatesClient(api_url, token, tag=key)
    paths = trip_time.run_paths(Path(data_dir), key)
    print(trip_time.fetch_estimates(client, paths))


def build_page_views(day: str) -> None:
    from steps import page_views
    from steps.core.warehouse import warehouse_connection

    with warehouse_connection() as conn:
        print(page_views.build_tables(conn, dt.date.fromisoformat(day)))


def populate_police_table(schema: str, item: dict) -> None:
    from steps import police_staging
    from steps.core.warehouse import warehouse_connection

    with warehouse_connection() as conn:
        print(police_staging.populate_table(conn, schema, item))


def write_slowly(target: str) -> None:
    """Half a file written through atomic_path, then a long pause: a kill lands in the middle."""
    import time

    from steps.core.files import atomic_path

    with atomic_path(Path(target)) as tmp:
        tmp.write_text("half of the ")
        time.sleep(600)
        tmp.write_text("half of the content")


def long_statement() -> None:
    from steps.core.warehouse import warehouse_connection

    with warehouse_connection() as conn:
        conn.execute("SELECT pg_sleep(600)")


STEPS = {f.__name__: f for f in (load_candidates, fetch_estimates, build_page_views, populate_police_table, write_slowly,
                                   long_statement)}

if __name__ == "__main__":
    STEPS[sys.argv[1]](**json.loads(sys.argv[2]))
