"""A run triggered without a logical date (Airflow 3 allows it, from the API or the UI) has no
`ds` or `ts`: the DAGs date their runs with RUN_DAY / RUN_TIME, which fall back on when the run
was due. (A manual uber_trip_time run without a date failed in the deployment test with
"'ts' is undefined".)"""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace

import pytest

from steps.core.dag_defaults import RUN_DAY, RUN_TIME
from tests.dags.test_dag_integrity import ROOT

DUE = dt.datetime(2026, 11, 23, 8, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("logical_date", "day", "time"),
    [(dt.datetime(2026, 11, 20, tzinfo=dt.UTC), "2026-11-20", "2026-11-20T00:00:00+00:00"),
     (None, "2026-11-23", "2026-11-23T08:30:00+00:00")],
    ids=["scheduled", "triggered_without_a_date"],
)  # fmt: skip
def test_the_run_is_dated_by_its_logical_date_or_else_when_it_was_due(logical_date, day, time):
    from airflow.sdk import DAG

    templates = DAG("dates", schedule=None).get_template_env()
    dag_run = SimpleNamespace(logical_date=logical_date, run_after=DUE)
    assert templates.from_string(RUN_DAY).render(dag_run=dag_run) == day
    assert templates.from_string(RUN_TIME).render(dag_run=dag_run) == time


def test_no_dag_reads_ds_or_ts_which_a_run_without_a_date_lacks():
    for path in sorted((ROOT / "dags").glob("*.py")):
        found = re.findall(r"\{\{\s*(?:ds|ts|ds_nodash|ts_nodash|logical_date)\b", path.read_text())
        assert not found, f"{path.name}: {found}; use RUN_DAY / RUN_TIME from steps.core.dag_defaults"
