"""
### song_plays

The Luigi + Spark workshop (PIPELINES.md 3), daily:

1. `wait_for_spins`: HEAD `spins-{ds}.snappy.parquet` on connection `song_plays_http` until it is
   there (404 = not ready); after `sensor_timeout_seconds` the run ends **skipped**, not failed.
2. `download_spins` -> `data/spins/YYYY/MM/DD/spins.snappy.parquet`;
   `download_listeners` -> `data/listeners/listeners.snappy.parquet`, at most once a day (marker
   `data/markers/YYYY/MM/DD/listeners_downloaded.SUCCESS`).
3. `dataset_gen`: the PySpark job, spark-submitted on connection `spark_default` (local or a
   standalone cluster): spins > 30 s, inner join with listeners, distinct; fails without writing
   when fewer than `minrows` rows remain; else `data/output/YYYY/MM/DD/dataset/` and
   `.../counts_by_zip_sub/` (gzip TSV + `_SUCCESS`).

Every step checks its outputs first: a rerun of a finished day downloads nothing and submits no
job. A backfill over a date range therefore only works on the days that are missing.
"""

import pendulum
from airflow.providers.http.sensors.http import HttpSensor
from airflow.sdk import Param, dag, task

from steps import song_plays as steps
from steps.core.dag_defaults import DEFAULT_ARGS, RUN_DAY
from steps.core.notify import run_notifications
from steps.core.operators import OutputCheckedSparkSubmitOperator, sensor_timeout_param, waiting_for_input


@dag(
    dag_id="song_plays",
    schedule="@daily",
    start_date=pendulum.datetime(2019, 2, 1, tz="UTC"),
    catchup=False,
    max_active_runs=2,
    tags=["luigi", "spark", "daily"],
    dagrun_timeout=pendulum.duration(hours=23),
    default_args=DEFAULT_ARGS,
    params={
        "minrows": Param(100, type="integer", minimum=0, description="fewest rows the dataset may have"),
        **sensor_timeout_param("the spins file"),
    },
    doc_md=__doc__,
    **run_notifications(on_success=False),
)
def song_plays():
    wait_for_spins = waiting_for_input(HttpSensor)(
        task_id="wait_for_spins",
        http_conn_id=steps.HTTP_CONN_ID,
        endpoint=f"spins-{RUN_DAY}.snappy.parquet",
        method="HEAD",
    )

    @task
    def download_spins(day: str) -> str:
        return steps.download_spins(steps.http_fetcher(), pendulum.parse(day).date(), data_dir())

    @task
    def download_listeners(day: str) -> str:
        return steps.download_listeners(steps.http_fetcher(), pendulum.parse(day).date(), data_dir())

    @task
    def plan_job(day: str, minrows: int) -> dict:
        day = pendulum.parse(day).date()
        paths = steps.day_paths(data_dir(), day)
        return {
            "args": steps.job_arguments(day, int(minrows), data_dir()),
            "outputs": [str(p) for p in paths.outputs_done],
        }

    plan = plan_job(RUN_DAY, "{{ params.minrows }}")
    dataset_gen = OutputCheckedSparkSubmitOperator(
        task_id="dataset_gen",
        conn_id="spark_default",
        application=str(steps.JOB),
        application_args=plan["args"],
        outputs=plan["outputs"],
        name="DatasetGen",
        conf={"spark.sql.session.timeZone": "UTC"},
        # A cluster with no free executor leaves a submitted job waiting for ever: bound it.
        execution_timeout=pendulum.duration(hours=1),
    )
    downloads = [download_spins(RUN_DAY), download_listeners(RUN_DAY)]
    wait_for_spins >> downloads
    downloads >> plan >> dataset_gen


def data_dir():
    from steps.core.settings import load_settings

    return load_settings().data_dir


song_plays()
