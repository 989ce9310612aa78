"""
### load_candidates_inference

Weekly (Saturday 21:10 UTC): `POSTGRES_DATA_DIR/candidates_inference.parquet` -> table
`candidates_inference`, validated and upserted on `rec_id`. On success it updates the table's
asset, which (with the training candidates) schedules `rank_candidates`.
"""

from steps.recsys import CANDIDATES_INFERENCE, load_dag

# An Airflow DAG (the dag-processor parses only files that say "airflow" and "dag").
load_candidates_inference = load_dag(
    dag_id="load_candidates_inference", schedule="10 21 * * 6", recs_files=(CANDIDATES_INFERENCE,),
    doc_md=__doc__,
)  # fmt: skip
