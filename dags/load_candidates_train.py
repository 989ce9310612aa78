"""
### load_candidates_train

Weekly (Saturday 21:10 UTC), the ranker's training data, one task per file:
`POSTGRES_DATA_DIR/candidates_train.parquet` -> table `candidates_train` (validated, upserted on
`rec_id`) and `POSTGRES_DATA_DIR/events.parquet` -> table `events` (the users' interactions the
candidates were made from: the whole log each week, so it replaces the table). Each task updates
its table's asset; with the inference candidates they schedule `rank_candidates`.
"""

from steps.recsys import CANDIDATES_TRAIN, EVENTS, load_dag

# An Airflow DAG (the dag-processor parses only files that say "airflow" and "dag").
load_candidates_train = load_dag(
    dag_id="load_candidates_train", schedule="10 21 * * 6", recs_files=(CANDIDATES_TRAIN, EVENTS),
    doc_md=__doc__,
)  # fmt: skip
