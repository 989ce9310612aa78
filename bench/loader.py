"""Loading the same rows into Postgres three ways, side by side:

- ours: the warehouse loader (validation + COPY, one transaction, upsert on the key);
- psql \\copy of the same rows as CSV: the limit, no validation;
- PostgresHook.insert_rows(..., replace=True): what the original recommender project did.

Two cases:
- `loader`: a 2,000,000-row CSV (and our loader on a file ten times larger, to show that its
  memory does not grow with the file);
- `recsys`: 5,000,000 generated training candidates, the recommender's own parquet file
  (`candidates_train`), as load_candidates_train loads it.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Measured, measure, print_table
from sandbox.embedded_postgres import EmbeddedPostgres, bin_path, free_port


def table_spec(name: str):
    """The training candidates' table, under another name: one table per method."""
    from steps.core.warehouse import TableSpec
    from steps.recsys import CANDIDATES_TRAIN

    return TableSpec(name, CANDIDATES_TRAIN.spec.columns, key=CANDIDATES_TRAIN.spec.key)


def generate_csv(path: Path, rows: int, seed: int = 7) -> Path:
    """Candidate-like rows, written in chunks so that generating a big file needs little memory."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    names = table_spec("x").column_names
    with pacsv.CSVWriter(
        tmp, pa.schema([(n, pa.float64() if n == "als_score" else pa.int64()) for n in names])
    ) as out:
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            columns = {
                "id": np.arange(start + 1, start + n + 1), "rec_id": np.arange(start, start + n),
                "user_id": rng.integers(0, 100_000, n), "item_id": rng.integers(0, 200_000, n),
                "als_score": rng.random(n), "category_id": rng.integers(0, 1_650, n),
                "parent_id": rng.integers(0, 1_700, n), "available": rng.integers(0, 2, n),
                "target": (rng.random(n) < 0.02).astype("int64"),
            }  # fmt: skip
            out.write_table(pa.table({name: columns[name] for name in names}))
    tmp.rename(path)
    return path


def parquet_as_csv(parquet: Path) -> Path:
    """The same rows as CSV, for psql (written once, not timed)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    csv_path = parquet.with_suffix(".csv")
    if not csv_path.exists():
        pacsv.write_csv(pq.read_table(parquet, columns=table_spec("x").column_names), csv_path)
    return csv_path


def load_one(method: str, uri: str, path: Path, table: str) -> None:
    """Run in a child process so that its memory is measured alone."""
    started = time.perf_counter()
    if method == "ours":
        import psycopg

        from steps.core.warehouse import load_file

        with psycopg.connect(uri) as conn:
            rows = load_file(conn, path, table_spec(table)).rows_read
    elif method == "insert_rows":
        import pandas as pd
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        # The original read the whole file with pandas and inserted its rows, as here.
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        frame = frame[table_spec(table).column_names]
        PostgresHook(postgres_conn_id="warehouse").insert_rows(
            table=table, rows=frame.values.tolist(), target_fields=list(frame.columns),
            replace=True, replace_index="rec_id", commit_every=10_000,
        )  # fmt: skip
        rows = len(frame)
    else:
        raise SystemExit(f"unknown method {method}")
    print(f"rows={rows} load_seconds={time.perf_counter() - started:.3f}")


def load_seconds(measured: Measured) -> float:
    """The child's own time for the load, without interpreter start-up and imports (in Airflow
    the loader runs in a worker that has started already); the wall time when it says none."""
    found = re.search(r"load_seconds=([0-9.]+)", measured.output)
    return float(found[1]) if found else measured.seconds


def best_of(runs: int, run_once: Callable[[], Measured]) -> Measured:
    """The fastest of `runs` runs: the machine is shared, the minimum is the least disturbed."""
    return min((run_once() for _ in range(runs)), key=load_seconds)


def compare(
    work_dir: Path, title: str, rows: int, ours_file: Path, csv_file: Path, with_insert_rows: bool,
    big_file: Path | None = None,
) -> None:  # fmt: skip
    """Load the same rows each way into an empty table of its own and print the table."""
    import psycopg

    server = EmbeddedPostgres(work_dir / "postgres", free_port()).start()
    try:
        server.create_database("bench")
        uri = server.uri("bench")

        def fresh_table(name: str) -> None:
            with psycopg.connect(uri, autocommit=True) as conn:
                conn.execute(f"DROP TABLE IF EXISTS {name}")
                conn.execute(table_spec(name).create_sql())

        me = [sys.executable, "-m", "bench.loader", "--child"]

        def psql_copy() -> Measured:
            fresh_table("t_psql")
            return measure([
                bin_path("psql"), uri, "-v", "ON_ERROR_STOP=1",
                "-c", f"\\copy t_psql FROM '{csv_file}' WITH (FORMAT csv, HEADER)",
            ])  # fmt: skip

        def ours_into_empty() -> Measured:
            fresh_table("t_ours")
            return measure([*me, "ours", uri, str(ours_file), "t_ours"])

        results = {
            ("psql \\copy (the limit)", rows): best_of(2, psql_copy),
            (f"our loader ({ours_file.suffix[1:]})", rows): best_of(2, ours_into_empty),
            ("our loader, rerun (upsert, nothing changes)", rows): measure(
                [*me, "ours", uri, str(ours_file), "t_ours"]
            ),
        }
        if with_insert_rows:
            fresh_table("t_insert")
            results[("PostgresHook.insert_rows(replace=True)", rows)] = measure(
                [*me, "insert_rows", uri, str(ours_file), "t_insert"],
                env={"AIRFLOW_CONN_WAREHOUSE": uri, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
            )
        if big_file is not None:
            fresh_table("t_big")
            results[("our loader, 10x the file", rows * 10)] = measure(
                [*me, "ours", uri, str(big_file), "t_big"]
            )
    finally:
        server.stop()
    per_row_limit = load_seconds(results[("psql \\copy (the limit)", rows)]) / rows
    table = []
    for (name, n), m in results.items():
        seconds = load_seconds(m)
        table.append([name, f"{n:,}", f"{m.seconds:.1f}", f"{seconds:.1f}", f"{n / seconds:,.0f}",
                      f"{per_row_limit * n / seconds:.2f}x", f"{m.peak_rss_mb:,.0f}"])  # fmt: skip
    print_table(
        f"{title}; best of 2 for psql and our loader\n(load s = the load inside the process, without "
        "interpreter start-up; vs psql = per-row speed against psql \\copy)",
        ["method", "rows", "wall s", "load s", "rows/s", "vs psql", "peak MB"],
        table,
    )
    if big_file is not None:
        ours, big = (
            results[(f"our loader ({ours_file.suffix[1:]})", rows)],
            results[("our loader, 10x the file", rows * 10)],
        )
        print(
            f"our loader's peak memory: {ours.peak_rss_mb:,.0f} MB for {rows:,} rows, "
            f"{big.peak_rss_mb:,.0f} MB for {rows * 10:,} rows "
            f"({big.peak_rss_mb / ours.peak_rss_mb:.2f}x for 10x the rows)"
        )


def run_csv_case(work_dir: Path, rows: int, with_insert_rows: bool) -> None:
    small = generate_csv(work_dir / f"candidates_{rows}.csv", rows)
    big = generate_csv(work_dir / f"candidates_{rows * 10}.csv", rows * 10)
    compare(work_dir, f"Loading a CSV of {rows:,} candidate rows into Postgres", rows, small, small,
            with_insert_rows, big_file=big)  # fmt: skip


def run_recsys_case(work_dir: Path, rows: int, with_insert_rows: bool) -> None:
    from sandbox.generate_recsys import REAL_SIZES, generate

    folder = work_dir / f"recsys_{rows}"
    parquet = folder / "candidates_train.parquet"
    if not parquet.exists():
        generate(folder, scale=rows / REAL_SIZES["candidates_train"])
    compare(work_dir, f"load_candidates_train: {rows:,} generated candidates (parquet) into Postgres", rows,
            parquet, parquet_as_csv(parquet), with_insert_rows)  # fmt: skip


CASES = {"loader": (run_csv_case, 2_000_000), "recsys": (run_recsys_case, 5_000_000)}


def main(case: str | None = None) -> None:
    if "--child" in sys.argv:
        method, uri, path, table = sys.argv[sys.argv.index("--child") + 1 :]
        load_one(method, uri, Path(path), table)
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, help="rows of the file (default: 2,000,000 / 5,000,000)")
    parser.add_argument("--work-dir", type=Path, default=Path("bench/out"), help="generated files (kept)")
    parser.add_argument("--skip-insert-rows", action="store_true", help="leave out the slow baseline")
    parser.add_argument("--quick", action="store_true", help="a tenth of the default rows")
    args, _ = parser.parse_known_args()
    work_dir = args.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    for name in [case] if case else list(CASES):
        run, default_rows = CASES[name]
        run(work_dir, args.rows or default_rows // (10 if args.quick else 1), not args.skip_insert_rows)


if __name__ == "__main__":
    main()
