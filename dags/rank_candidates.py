"""
### rank_candidates

Runs when both `candidates_train` and `candidates_inference` have been loaded (Airflow assets, not
the original's five-minute offsets), so it never ranks stale or half-loaded data.

`train_ranker` trains a scikit-learn model on `candidates_train` and records it with its
cross-validated metrics (ROC AUC, precision@10, NDCG@10, and the same for `als_score` alone) in
table `ranker_models` and beside the model file; a model worse than the last accepted one is
kept out of ranking. `rank` scores `candidates_inference` into `candidates_ranked` (`score`,
`rank` = 1.. per user by descending score), replacing the previous ranking in one transaction.
"""

import pendulum
from airflow.sdk import Asset, dag, task

from steps.core.dag_defaults import DEFAULT_ARGS
from steps.core.notify import run_notifications
from steps.inference_data import CANDIDATES_INFERENCE
from steps.training_data import CANDIDATES_TRAIN


def ranking_details(context) -> list[str]:
    """The success message's lines: the model's NDCG@10 next to als_score's, and its fate."""
    ranked = context["ti"].xcom_pull(task_ids="rank") or {}
    ndcg = (ranked.get("metrics") or {}).get("ndcg_at_10")
    baseline = (ranked.get("baseline_als_score") or {}).get("ndcg_at_10")
    return [
        f"model NDCG@10 {ndcg} (als_score alone: {baseline}); {ranked.get('this_run', '')}".rstrip("; "),
        f"ranked {ranked.get('candidates_ranked')} candidates with the model of "
        f"{ranked.get('ranked_with_model_of')}",
    ]


@dag(
    dag_id="rank_candidates",
    schedule=Asset(CANDIDATES_TRAIN.asset_name) & Asset(CANDIDATES_INFERENCE.asset_name),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["recsys", "weekly"],
    dagrun_timeout=pendulum.duration(hours=2),
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    **run_notifications(on_success=True, success_details=ranking_details),
)
def rank_candidates():
    @task
    def train_ranker(**context) -> dict:
        from steps import ranked_data
        from steps.core.settings import load_settings
        from steps.core.warehouse import warehouse_connection

        dag_run = context["dag_run"]
        with warehouse_connection() as conn:
            record = ranked_data.train_ranker(
                conn, load_settings().data_dir / "recsys" / "models", dag_run.run_id, run_time(dag_run)
            )
        return {"model": record["model_path"], "accepted": record["accepted"], "note": record["note"]}

    @task
    def rank(**context) -> dict:
        from steps import ranked_data
        from steps.core.warehouse import warehouse_connection

        dag_run = context["dag_run"]
        with warehouse_connection() as conn:
            return ranked_data.rank_candidates(conn, dag_run.run_id, run_time(dag_run))

    train_ranker() >> rank()


def run_time(dag_run):
    # Asset-triggered runs have no logical date; they are keyed by when they were due to run.
    return dag_run.logical_date or dag_run.run_after


rank_candidates()
