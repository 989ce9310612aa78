"""Loading one CSV file into Postgres three ways, side by side:

- ours: the warehouse loader (validation + COPY, one transaction, upsert on the key);
- psql \\copy: the limit, no validation;
- PostgresHook.insert_rows(..., replace=True): what the original recommender project did.

Then our loader again on a file ten times larger, to show its memory does not grow with the file.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from bench.common import Measured, measure, print_table
from sandbox.embedded_postgres import EmbeddedPostgres, bin_path, free_port

COLUMNS = (
    ("rec_id", "bigint"),
    ("user_id", "bigint"),
    ("item_id", "bigint"),
    ("als_score", "double precision"),
    ("category_id", "bigint"),
    ("parent_id", "bigint"),
    ("available", "boolean"),
    ("target", "bigint"),
)


def table_spec(name: str):
    from steps.core.warehouse import Column, TableSpec

    return TableSpec(
        name, tuple(Column(c, t, nullable=c != "als_score") for c, t in COLUMNS), key=("rec_id",)
    )


def generate_csv(path: Path, rows: int, seed: int = 7) -> Path:
    """Candidate-like rows, written in chunks so that generating a big file needs little memory."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    with pacsv.CSVWriter(tmp, pa.schema([(c, _arrow(t)) for c, t in COLUMNS])) as writer:
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            writer.write_table(pa.table({
                "rec_id": np.arange(start, start + n),
                "user_id": rng.integers(0, 100_000, n),
                "item_id": rng.integers(0, 200_000, n),
                "als_score": rng.random(n),
                "category_id": rng.integers(0, 1_000, n),
                "parent_id": rng.integers(0, 100, n),
                "available": rng.random(n) < 0.9,
                "target": (rng.random(n) < 0.02).astype("int64"),
            }))  # fmt: skip
    tmp.rename(path)
    return path


def _arrow(sql_type: str):
    import pyarrow as pa

    return {"bigint": pa.int64(), "double precision": pa.float64(), "boolean": pa.bool_()}[sql_type]


def load_one(method: str, uri: str, path: Path, table: str) -> None:
    """Run in a child process so that its memory is measured alone."""
    if method == "ours":
        import psycopg

        from steps.core.warehouse import load_file

        started = time.perf_counter()
        with psycopg.connect(uri) as conn:
            result = load_file(conn, path, table_spec(table))
        print(f"rows={result.rows_read} load_seconds={time.perf_counter() - started:.3f}")
    elif method == "insert_rows":
        import pandas as pd
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        started = time.perf_counter()
        frame = pd.read_csv(path)  # the original read the whole file, as here
        hook = PostgresHook(postgres_conn_id="warehouse")
        hook.insert_rows(
            table=table, rows=frame.values.tolist(), target_fields=list(frame.columns),
            replace=True, replace_index="rec_id", commit_every=10_000,
        )  # fmt: skip
        print(f"rows={len(frame)} load_seconds={time.perf_counter() - started:.3f}")
    else:
        raise SystemExit(f"unknown method {method}")


def load_seconds(measured: Measured) -> float:
    """The child's own time for the load, without interpreter start-up and imports (in Airflow
    the loader runs in a worker that has started already); the wall time when it says none."""
    found = re.search(r"load_seconds=([0-9.]+)", measured.output)
    return float(found[1]) if found else measured.seconds


def best_of(runs: int, run_once) -> Measured:
    """The fastest of `runs` runs: the machine is shared, the minimum is the least disturbed."""
    return min((run_once() for _ in range(runs)), key=load_seconds)


def run(work_dir: Path, rows: int, with_insert_rows: bool) -> None:
    work_dir.mkdir(parents=True, exist_ok=True)
    small = generate_csv(work_dir / f"candidates_{rows}.csv", rows)
    big = generate_csv(work_dir / f"candidates_{rows * 10}.csv", rows * 10)
    server = EmbeddedPostgres(work_dir / "postgres", free_port()).start()
    try:
        server.create_database("bench")
        uri = server.uri("bench")
        import psycopg

        def fresh_table(name: str) -> None:
            with psycopg.connect(uri, autocommit=True) as conn:
                conn.execute(f"DROP TABLE IF EXISTS {name}")
                conn.execute(table_spec(name).create_sql())

        me = [sys.executable, "-m", "bench.loader", "--child"]
        psql = [bin_path("psql"), uri, "-v", "ON_ERROR_STOP=1", "-c"]

        def psql_copy() -> Measured:
            fresh_table("t_psql")
            return measure([*psql, f"\\copy t_psql FROM '{small}' WITH (FORMAT csv, HEADER)"])

        def ours_into_empty() -> Measured:
            fresh_table("t_ours")
            return measure([*me, "ours", uri, str(small), "t_ours"])

        results = {
            "psql \\copy (the limit)": best_of(2, psql_copy),
            "our loader": best_of(2, ours_into_empty),
            "our loader, rerun (upsert, nothing changes)": measure([*me, "ours", uri, str(small), "t_ours"]),
        }
        if with_insert_rows:
            fresh_table("t_insert")
            results["PostgresHook.insert_rows(replace=True)"] = measure(
                [*me, "insert_rows", uri, str(small), "t_insert"],
                env={"AIRFLOW_CONN_WAREHOUSE": uri, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
            )
        fresh_table("t_big")
        results["our loader, 10x the file"] = measure([*me, "ours", uri, str(big), "t_big"])
    finally:
        server.stop()
    limit = load_seconds(results["psql \\copy (the limit)"]) / rows
    table = []
    for name, m in results.items():
        n = rows * 10 if "10x" in name else rows
        seconds = load_seconds(m)
        table.append([name, f"{n:,}", f"{m.seconds:.1f}", f"{seconds:.1f}", f"{n / seconds:,.0f}",
                      f"{limit * n / seconds:.2f}x", f"{m.peak_rss_mb:,.0f}"])  # fmt: skip
    print_table(
        f"Loading a CSV of {rows:,} candidate rows into Postgres, best of 2 for psql and our loader\n"
        "(load s = the load inside the process, without interpreter start-up; vs psql = per-row speed "
        "against psql \\copy)",
        ["method", "rows", "wall s", "load s", "rows/s", "vs psql", "peak MB"],
        table,
    )
    ours, big = results["our loader"], results["our loader, 10x the file"]
    print(
        f"our loader's peak memory: {ours.peak_rss_mb:,.0f} MB for {rows:,} rows, "
        f"{big.peak_rss_mb:,.0f} MB for {rows * 10:,} rows ({big.peak_rss_mb / ours.peak_rss_mb:.2f}x "
        "for 10x the rows)"
    )


def main() -> None:
    if "--child" in sys.argv:
        method, uri, path, table = sys.argv[sys.argv.index("--child") + 1 :]
        load_one(method, uri, Path(path), table)
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--work-dir", type=Path, default=Path("bench/out"))
    parser.add_argument("--skip-insert-rows", action="store_true", help="leave out the slow baseline")
    args = parser.parse_args()
    run(args.work_dir.resolve(), args.rows, not args.skip_insert_rows)


if __name__ == "__main__":
    main()
