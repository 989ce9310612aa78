"""
### user_page_views

The Luigi tutorial's exercise (PIPELINES.md 2c), daily:

1. `wait_for_logs`: waits until the day's `UserUpdates/YYYY-MM-DD*` and `PageViews/YYYY-MM-DD*`
   keys are in the profile's bucket (`PAGE_VIEWS_BUCKET` overrides it), on connection
   `aws_default`; after `sensor_timeout_seconds` the run ends **skipped**.
2. `load_day`: parses the day's files (quoted header-less CSV, JSON lines read by Arrow; a bad
   row fails the task naming key and line) into the warehouse's event tables, exact duplicates
   kept once; the production rows that were new wait in two delta tables.
3. `build_tables`: applies the delta, in one transaction, to `user_page_views` (per user and url:
   de-duplicated production views, latest view, the user's latest email) and
   `page_recommendations` (top 3 unseen urls per user from the pages most often viewed on the same
   visit as those of their latest visit). A day costs what it brought; days loaded in any order end
   in the same tables.
"""

import pendulum
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.sdk import dag, task

from steps import page_views as steps
from steps.core.dag_defaults import DEFAULT_ARGS, RUN_DAY
from steps.core.notify import run_notifications
from steps.core.operators import sensor_timeout_param, waiting_for_input
from steps.core.settings import load_settings


@dag(
    dag_id="user_page_views",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["luigi", "s3", "daily"],
    dagrun_timeout=pendulum.duration(hours=23),
    default_args=DEFAULT_ARGS,
    params={
        **sensor_timeout_param("the day's logs"),
    },
    doc_md=__doc__,
    **run_notifications(on_success=False),
)
def user_page_views():
    @task
    def load_day(bucket_name: str, day: str) -> dict:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from steps.core.warehouse import warehouse_connection

        with warehouse_connection() as conn:
            return steps.load_day(
                conn, S3Hook(aws_conn_id=steps.AWS_CONN_ID), bucket_name, pendulum.parse(day).date()
            )

    @task
    def build_tables(day: str) -> dict:
        from steps.core.warehouse import warehouse_connection

        with warehouse_connection() as conn:
            return steps.build_tables(conn, pendulum.parse(day).date())

    bucket_name = load_settings().page_views_bucket
    wait_for_logs = waiting_for_input(S3KeySensor)(
        task_id="wait_for_logs",
        bucket_name=bucket_name,
        bucket_key=[f"UserUpdates/{RUN_DAY}*", f"PageViews/{RUN_DAY}*"],
        wildcard_match=True,
        aws_conn_id=steps.AWS_CONN_ID,
    )
    wait_for_logs >> load_day(bucket_name, RUN_DAY) >> build_tables(RUN_DAY)


user_page_views()
