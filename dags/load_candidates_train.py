"""
### load_candidates_train

Weekly (Saturday 21:10 UTC): `POSTGRES_DATA_DIR/candidates_train.parquet` -> table
`candidates_train`, validated and upserted on `rec_id`. On success it updates the table's asset,
which (with the inference candidates) schedules `rank_candidates`.
"""

from steps.recsys import load_dag
from steps.training_data import CANDIDATES_TRAIN

# An Airflow DAG (the dag-processor parses only files that say "airflow" and "dag").
load_candidates_train = load_dag(
    dag_id="load_candidates_train", schedule="10 21 * * 6", recs_file=CANDIDATES_TRAIN, doc_md=__doc__
)
