"""What the recommender's five DAGs share: the input files and their tables, the load step, and
the load DAG they are all built from (PIPELINES.md 4). Every table the recommender loads is
defined here; the ranker's own table is in `ranked_data`.

Each load reads `POSTGRES_DATA_DIR/<file>.parquet`, validates its columns and types, creates the
table if missing and upserts on `rec_id` (or, for the interactions log, replaces the table) in one
transaction, then marks its asset as updated; rank_candidates is scheduled on the candidate and
interaction assets, so it never ranks half-loaded data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from steps.core.warehouse import Column, TableSpec, load_file, warehouse_connection


@dataclass(frozen=True)
class RecsFile:
    """One input file of the recommender and the warehouse table it is loaded into."""

    file_name: str
    spec: TableSpec
    # "upsert" on the spec's key, or "replace" for a file that is always the whole table.
    mode: str = "upsert"

    @property
    def asset_name(self) -> str:
        # Assets name tables: a DAG scheduled on it runs after the table changed, not the file.
        return f"warehouse.{self.spec.schema}.{self.spec.name}"


CANDIDATE_COLUMNS = (
    Column("id", "bigint"),
    Column("rec_id", "bigint", nullable=False),
    Column("user_id", "bigint", nullable=False),
    Column("item_id", "bigint", nullable=False),
    Column("als_score", "double precision", nullable=False),
    Column("category_id", "bigint", nullable=False),
    Column("parent_id", "bigint", nullable=False),
    Column("available", "bigint", nullable=False),
)

# Training candidates: ALS candidates per user with the observed target, for the ranker.
CANDIDATES_TRAIN = RecsFile(
    "candidates_train.parquet",
    TableSpec(
        "candidates_train", (*CANDIDATE_COLUMNS, Column("target", "bigint", nullable=False)), key=("rec_id",)
    ),
)

# Inference candidates: the candidates to rank for each user (no target yet).
CANDIDATES_INFERENCE = RecsFile(
    "candidates_inference.parquet",
    TableSpec("candidates_inference", CANDIDATE_COLUMNS, key=("rec_id",)),
)

# The interactions the candidates were made from (RetailRocket events: view, addtocart,
# transaction). The ranker learns from what users did after a point in time and measures itself
# on what they did later (steps/ranked_data.py). The file is the whole log each week, and may hold
# identical lines, so it replaces the table instead of upserting on a key.
EVENTS = RecsFile(
    "events.parquet",
    TableSpec(
        "events",
        (
            Column("timestamp", "bigint", nullable=False),  # milliseconds since the epoch, as in the file
            Column("user_id", "bigint", nullable=False),
            Column("item_id", "bigint", nullable=False),
            Column("event", "text", nullable=False),
        ),
    ),
    mode="replace",
)

# Default recommendations: the most popular items, shown to users without history.
DEFAULT_RECS = RecsFile(
    "top_popular.parquet",
    TableSpec(
        "default_recs",
        (
            Column("id", "bigint"),
            Column("rec_id", "bigint", nullable=False),
            Column("item_id", "bigint", nullable=False),
            # The original project named it items_selected; the published file says items_cnt.
            Column("items_selected", "bigint", aliases=("items_cnt",)),
            Column("item_id_encoded", "bigint"),
        ),
        key=("rec_id",),
    ),
)

# Online recommendations: items similar to one the user is looking at.
ONLINE_RECS = RecsFile(
    "similar.parquet",
    TableSpec(
        "online_recs",
        (
            Column("id", "bigint"),
            Column("rec_id", "bigint", nullable=False),
            Column("itemid_1", "bigint", nullable=False),
            Column("itemid_2", "bigint", nullable=False),
            Column("score", "double precision"),
        ),
        key=("rec_id",),
    ),
)


def load_recs_file(conn, input_dir: Path, recs_file: RecsFile) -> dict:
    """Upsert one file into its table; returns a summary for the run's log and the runner."""
    result = load_file(conn, Path(input_dir) / recs_file.file_name, recs_file.spec, mode=recs_file.mode)
    total = conn.execute(f"SELECT count(*) FROM {recs_file.spec.qualified}").fetchone()[0]
    return {
        "table": result.table,
        "file": result.source,
        "rows_in_file": result.rows_read,
        "rows_changed": result.rows_written,
        "rows_in_table": total,
    }


def load_dag(*, dag_id: str, schedule: str, recs_files: tuple[RecsFile, ...], doc_md: str):
    """A weekly DAG with one task per file: load it, then mark its table's asset as updated."""
    import pendulum
    from airflow.sdk import dag

    from steps.core.dag_defaults import DEFAULT_ARGS
    from steps.core.notify import run_notifications

    @dag(
        dag_id=dag_id,
        schedule=schedule,  # a cron string is a CronTriggerTimetable in Airflow 3, as in the other DAGs
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["recsys", "weekly"],
        dagrun_timeout=pendulum.duration(hours=2),
        default_args=DEFAULT_ARGS,
        doc_md=doc_md,
        **run_notifications(on_success=True),
    )
    def load_recs():
        for recs_file in recs_files:
            load_task(recs_file)()

    return load_recs()


def load_task(recs_file: RecsFile):
    """The task loading `recs_file`, with its table's asset as outlet."""
    from airflow.sdk import Asset, task

    asset = Asset(recs_file.asset_name)

    @task(task_id=f"load_{recs_file.spec.name}", outlets=[asset])
    def load(outlet_events=None) -> dict:
        from steps.core.settings import load_settings

        with warehouse_connection() as conn:
            summary = load_recs_file(conn, load_settings().postgres_data_dir, recs_file)
        # What the asset event says in the UI (and to the DAGs it schedules).
        outlet_events[asset].extra = {k: summary[k] for k in ("file", "rows_in_file", "rows_in_table")}
        return summary

    return load
