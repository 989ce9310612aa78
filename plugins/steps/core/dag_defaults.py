"""Defaults every DAG of the project shares (the DAG policy tests check them)."""

from __future__ import annotations

import datetime as dt

OWNER = "data-platform"

DEFAULT_ARGS = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=1),
    "retry_exponential_backoff": True,
}
