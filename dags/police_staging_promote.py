"""
### police_staging_promote

Manual only. Replaces schema `target` (default `staging`) with the build in `source` (default
`staging_dev`) and recreates an empty `source`, in one transaction: a failure or a lost
connection at any point leaves both schemas as they were. Queries still reading the old `target`
are waited for up to `lock_timeout_seconds`; after that the promotion gives up, changing nothing.

Set `confirm` to true to run it: an unconfirmed run fails without touching anything.
"""

import pendulum
from airflow.sdk import Param, dag, task

from steps import police_staging as steps
from steps.core.dag_defaults import DEFAULT_ARGS
from steps.core.identifiers import IDENTIFIER_PATTERN
from steps.core.notify import run_notifications


@dag(
    dag_id="police_staging_promote",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["luigi", "postgres", "manual"],
    dagrun_timeout=pendulum.duration(hours=1),
    default_args=DEFAULT_ARGS,  # a retry is safe: a failed promotion changed nothing
    params={
        "confirm": Param(
            False, type="boolean", description="true: replace the target schema with the source"
        ),
        "source": Param(steps.DEFAULT_SCHEMA, type="string", pattern=IDENTIFIER_PATTERN),
        "target": Param(steps.PROMOTED_SCHEMA, type="string", pattern=IDENTIFIER_PATTERN),
        "lock_timeout_seconds": Param(
            60, type="integer", minimum=1, description="how long to wait for queries still reading the target"
        ),
    },  # fmt: skip
    render_template_as_native_obj=True,
    doc_md=__doc__,
    **run_notifications(on_success=True),
)
def police_staging_promote():
    @task
    def promote(confirm: bool, source: str, target: str, lock_timeout_seconds: int) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from steps.core.warehouse import warehouse_connection

        if confirm is not True:  # no retry: only a new run with the param set can confirm
            raise AirflowFailException(
                f"not confirmed: trigger with confirm=true to replace {target} with {source}"
            )
        with warehouse_connection() as conn:
            return steps.promote(conn, source, target, lock_timeout_seconds)

    promote(
        "{{ params.confirm }}",
        "{{ params.source }}",
        "{{ params.target }}",
        "{{ params.lock_timeout_seconds }}",
    )


police_staging_promote()
