"""Defaults every DAG of the project shares (the DAG policy tests check them).

Every task is bounded (`execution_timeout`, the profile's `task_timeout_minutes` unless the task
sets its own) and retried only for failures a retry can fix (`steps.core.retries`). Every DAG sets
its own `dagrun_timeout`: a stuck run ends failed instead of blocking the next ones.
"""

from __future__ import annotations

import datetime as dt

from steps.core.notify import remember_error
from steps.core.retries import TransientOnlyRetryPolicy
from steps.core.settings import load_settings

OWNER = "data-platform"

# The run's day and time, as templates for task arguments. A run triggered without a logical date
# (Airflow 3 allows it, from the API or the UI) has no `ds` or `ts`: it is dated by when it was
# due to run, as the scheduler dates it.
RUN_DAY = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
RUN_TIME = "{{ (dag_run.logical_date or dag_run.run_after) | ts }}"

_settings = load_settings()
DEFAULT_ARGS = {
    "owner": OWNER,
    # A test sets PIPELINES_TASK_RETRIES=0 to see a failure at once instead of after the retries;
    # the deployment test shortens the first retry's delay (it doubles after it).
    "retries": _settings.task_retries,
    "retry_delay": dt.timedelta(seconds=_settings.retry_delay_seconds),
    "retry_exponential_backoff": True,
    "retry_policy": TransientOnlyRetryPolicy(),
    "execution_timeout": dt.timedelta(minutes=_settings.task_timeout_minutes),
    "on_failure_callback": remember_error,  # the run's failure message quotes the error
}
