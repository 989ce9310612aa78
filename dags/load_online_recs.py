"""
### load_online_recs

Weekly (Saturday 21:05 UTC): `POSTGRES_DATA_DIR/similar.parquet` -> table `online_recs`
(item-to-item similar items), validated and upserted on `rec_id` in one transaction.
"""

from steps.recsys import ONLINE_RECS, load_dag

# An Airflow DAG (the dag-processor parses only files that say "airflow" and "dag").
load_online_recs = load_dag(
    dag_id="load_online_recs", schedule="5 21 * * 6", recs_files=(ONLINE_RECS,), doc_md=__doc__
)
