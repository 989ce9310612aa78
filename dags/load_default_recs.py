"""
### load_default_recs

Weekly (Saturday 21:05 UTC): `POSTGRES_DATA_DIR/top_popular.parquet` -> table `default_recs`,
validated and upserted on `rec_id` in one transaction (PIPELINES.md 4). Both spellings of the
popularity column, `items_selected` and `items_cnt`, are accepted.
"""

from steps.recsys import DEFAULT_RECS, load_dag

# An Airflow DAG (the dag-processor parses only files that say "airflow" and "dag").
load_default_recs = load_dag(
    dag_id="load_default_recs", schedule="5 21 * * 6", recs_files=(DEFAULT_RECS,), doc_md=__doc__
)
