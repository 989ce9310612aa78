"""
### rank_candidates

Runs when `candidates_train`, `events` and `candidates_inference` have been loaded (Airflow
assets, not the original's five-minute offsets), so it never ranks stale or half-loaded data.

`train_ranker` trains a scikit-learn model on the candidates and what users did (a time split of
`events`) and measures it as it is used: every inference candidate of a user ranked, the top 10
scored against what the user did later (NDCG@10, precision@10, recall@10), beside the `als_score`
order. The model ranks only if it beats that order and the last accepted model; otherwise the
candidates are ranked by the last accepted model or in their `als_score` order, and the run says
so. Its record is in table `ranker_models`; a report (PNG and HTML) lies beside the model file.
`rank` writes `candidates_ranked` (`score`, `rank` = 1.. per user by descending score), replacing
the previous ranking in one transaction.
"""

import pendulum
from airflow.sdk import Asset, dag, task

from steps.core.dag_defaults import DEFAULT_ARGS, RUN_TIME
from steps.core.notify import run_notifications
from steps.recsys import CANDIDATES_INFERENCE, CANDIDATES_TRAIN, EVENTS


def ranking_details(context) -> list[str]:
    """The success message's lines: the model's NDCG@10 next to the als_score order's, what
    ranked the candidates, and where the report is."""
    ranked = context["ti"].xcom_pull(task_ids="rank") or {}
    ndcg = (ranked.get("metrics") or {}).get("ndcg_at_10")
    baseline = (ranked.get("baseline_als_score") or {}).get("ndcg_at_10")
    return [
        f"model NDCG@10 {ndcg} (als_score order: {baseline}); {ranked.get('this_run', '')}".rstrip("; "),
        f"ranked {ranked.get('candidates_ranked')} candidates by {ranked.get('ranked_by')}",
        f"report: {ranked.get('report')}",
    ]


@dag(
    dag_id="rank_candidates",
    schedule=(
        Asset(CANDIDATES_TRAIN.asset_name) & Asset(EVENTS.asset_name) & Asset(CANDIDATES_INFERENCE.asset_name)
    ),
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
    def train_ranker(stamp: str, run_id=None) -> dict:
        from steps import ranked_data
        from steps.core.settings import load_settings
        from steps.core.warehouse import warehouse_connection

        with warehouse_connection() as conn:
            record = ranked_data.train_ranker(
                conn, load_settings().data_dir / "recsys" / "models", run_id, pendulum.parse(stamp)
            )
        return {"model": record["model_path"], "accepted": record["accepted"], "note": record["note"],
                "report": record["report_path"]}  # fmt: skip

    @task
    def rank(stamp: str, run_id=None) -> dict:
        from steps import ranked_data
        from steps.core.warehouse import warehouse_connection

        with warehouse_connection() as conn:
            return ranked_data.rank_candidates(conn, run_id, pendulum.parse(stamp))

    # An asset-triggered run has no logical date: RUN_TIME dates it by when it was due to run.
    # (run_id, a context argument, is Airflow's to fill.)
    train_ranker(RUN_TIME) >> rank(RUN_TIME)


rank_candidates()
