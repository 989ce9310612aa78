"""Defaults every DAG of the project shares (the DAG policy tests check them)."""

from __future__ import annotations

import datetime as dt
import os

OWNER = "data-platform"

DEFAULT_ARGS = {
    "owner": OWNER,
    # PIPELINES_TASK_RETRIES=0 lets a test see a failure at once instead of after the retries.
    "retries": int(os.environ.get("PIPELINES_TASK_RETRIES", "2")),
    "retry_delay": dt.timedelta(minutes=1),
    "retry_exponential_backoff": True,
}
