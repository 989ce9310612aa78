"""
### uber_trip_time

The Luigi trip-time project (PIPELINES.md 1), hourly (`TRIP_TIME_SCHEDULE` changes it):

`sample_pairs` (n distinct node pairs >= 500 m apart, from `TRIP_NODES_FILE`) -> `fetch_estimates`
(one call per pair to the estimates API of connection `uber_api`; 429s and transient errors are
retried, a pair that still fails is kept with its status) -> `store_estimates` (table
`trip_estimates`) -> `validate` (5-fold cross-validated durations, CSV per run) ->
`store_validation` (`trip_predictions`, MAE next to a mean-duration baseline in
`trip_model_runs`) -> `train` (continues the newest earlier model with `partial_fit`, or fits a
new one; one model file per run).

Param `fail_at` makes that step fail once, as the original's luigi_script_break.py did: clear the
task and the run resumes there, without calling the API again or inserting a row twice.
"""

import datetime as dt

import pendulum
from airflow.sdk import Param, dag, task

from steps import trip_time as steps
from steps.core.dag_defaults import DEFAULT_ARGS, RUN_TIME
from steps.core.notify import run_notifications
from steps.core.settings import load_settings

FETCH_TIMEOUT = dt.timedelta(minutes=20)


@dag(
    dag_id="uber_trip_time",
    schedule=load_settings().trip_time_schedule,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["luigi", "ml", "hourly"],
    dagrun_timeout=pendulum.duration(minutes=55),
    default_args=DEFAULT_ARGS,
    params={
        "n": Param(15, type="integer", minimum=1, maximum=100, description="node pairs to estimate"),
        "fail_at": Param("", enum=["", *steps.STEPS], description="fail once at this step (resume demo)"),
    },
    doc_md=__doc__,
    **run_notifications(on_success=False),
)
def uber_trip_time():
    @task
    def sample_pairs(n: int, stamp: str) -> dict:
        key = steps.run_key(pendulum.parse(stamp))
        return steps.plan_pairs(load_settings().trip_nodes_file, int(n), key, run_paths(key))

    @task(execution_timeout=FETCH_TIMEOUT)
    def fetch_estimates(fail_at: str, stamp: str, ti=None) -> dict:
        import time

        from airflow.sdk import BaseHook

        key = steps.run_key(pendulum.parse(stamp))
        steps.fail_if_asked("fetch", fail_at, ti.try_number)
        api = BaseHook.get_connection(steps.API_CONN_ID)
        # Waiting out a 429 must leave time to finish: stop a minute before the task's timeout.
        deadline = time.monotonic() + FETCH_TIMEOUT.total_seconds() - 60
        client = steps.EstimatesClient(api.host, api.password or "", deadline=deadline, tag=key)
        return steps.fetch_estimates(client, run_paths(key))

    @task
    def store_estimates(fail_at: str, stamp: str, ti=None) -> dict:
        def work(conn, key, when):
            return steps.store_estimates(conn, run_paths(key), key)

        return warehouse_step("store", fail_at, stamp, ti, work)

    @task
    def validate(fail_at: str, stamp: str, ti=None) -> dict:
        def work(conn, key, when):
            return steps.validate(conn, run_paths(key), key, when)

        return warehouse_step("validate", fail_at, stamp, ti, work)

    @task
    def store_validation(fail_at: str, stamp: str, ti=None) -> dict:
        def work(conn, key, when):
            return steps.store_validation(conn, run_paths(key), key)

        return warehouse_step("store_validation", fail_at, stamp, ti, work)

    @task
    def train(fail_at: str, stamp: str, ti=None) -> dict:
        def work(conn, key, when):
            return steps.train(conn, load_settings().data_dir, key, when)

        return warehouse_step("train", fail_at, stamp, ti, work)

    fail_at, stamp = "{{ params.fail_at }}", RUN_TIME
    (
        sample_pairs("{{ params.n }}", stamp)
        >> fetch_estimates(fail_at, stamp)
        >> store_estimates(fail_at, stamp)
        >> validate(fail_at, stamp)
        >> store_validation(fail_at, stamp)
        >> train(fail_at, stamp)
    )


def run_paths(key: str):
    return steps.run_paths(load_settings().data_dir, key)


def warehouse_step(name: str, fail_at: str, stamp: str, ti, work):
    """The shape of the warehouse steps: the run's key, the failure demo, a connection."""
    from steps.core.warehouse import warehouse_connection

    when = pendulum.parse(stamp)
    steps.fail_if_asked(name, fail_at, ti.try_number)
    with warehouse_connection() as conn:
        return work(conn, steps.run_key(when), when)


uber_trip_time()
