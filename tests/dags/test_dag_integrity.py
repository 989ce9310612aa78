"""Policy over every DAG file: it parses, and it follows the project's conventions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))
# Imported by step functions at run time only: at parse time they would slow every reparse.
HEAVY_MODULES = (
    "pandas",
    "sklearn",
    "pyspark",
    "boto3",
    "botocore",
    "pyarrow",
    "telegram",
    "psycopg",
    "numpy",
)


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_every_dag_file_imports_without_error(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_FILES, "no DAG files found"
    assert {Path(d.fileloc).name for d in dagbag.dags.values()} == {p.name for p in DAG_FILES}


def policy_problems(dag) -> list[str]:
    from airflow.sdk import BaseSensorOperator

    from steps.core.dag_defaults import OWNER
    from steps.core.operators import MAX_SENSOR_TIMEOUT_SECONDS
    from steps.core.retries import TransientOnlyRetryPolicy

    problems = []
    if not dag.tags:
        problems.append(f"{dag.dag_id}: no tags")
    if not dag.doc_md:
        problems.append(f"{dag.dag_id}: no doc_md")
    if dag.start_date is None or dag.start_date.utcoffset().total_seconds() != 0:
        problems.append(f"{dag.dag_id}: start_date must be set, in UTC")
    if not dag.on_failure_callback:
        problems.append(f"{dag.dag_id}: no failure notifier")
    # One stuck run must not block the DAG's next runs for ever (max_active_runs).
    if dag.dagrun_timeout is None:
        problems.append(f"{dag.dag_id}: no dagrun_timeout")
    for task in dag.tasks:
        name = f"{dag.dag_id}.{task.task_id}"
        if task.owner != OWNER:
            problems.append(f"{name}: owner {task.owner!r}")
        if task.retries < 1:
            problems.append(f"{name}: no retries")
        if not isinstance(task.retry_policy, TransientOnlyRetryPolicy):
            problems.append(f"{name}: retries every failure (no TransientOnlyRetryPolicy)")
        # e.g. a Spark job that finds no free executor waits for ever, holding a worker slot.
        if task.execution_timeout is None:
            problems.append(f"{name}: no execution_timeout")
        if isinstance(task, BaseSensorOperator):
            if not getattr(task, "deferrable", False):
                problems.append(f"{name}: a sensor that holds a worker slot while it waits (not deferrable)")
            # The run may wait as long as its sensors may, and then still do its work.
            if dag.dagrun_timeout is not None and dag.dagrun_timeout.total_seconds() <= MAX_SENSOR_TIMEOUT_SECONDS:
                problems.append(f"{dag.dag_id}: dagrun_timeout shorter than its sensors' longest wait")
    return problems


def test_each_dag_follows_the_policy(dagbag):
    assert [p for dag in dagbag.dags.values() for p in policy_problems(dag)] == []


def test_the_policy_check_reports_a_dag_that_breaks_it(tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "bare.py").write_text(
        "import pendulum\nfrom airflow.sdk import dag, task\n"
        "from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator\n"
        "from airflow.providers.http.sensors.http import HttpSensor\n"
        '@dag(dag_id="bare", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))\n'
        "def bare():\n    @task(retries=0)\n    def t():\n        pass\n    t()\n"
        '    SparkSubmitOperator(task_id="job", application="job.py", retries=1)\n'
        '    HttpSensor(task_id="wait", endpoint="x", retries=1)\nbare()\n'
    )
    dag = DagBag(dag_folder=str(tmp_path)).dags["bare"]
    assert policy_problems(dag) == [
        "bare: no tags",
        "bare: no doc_md",
        "bare: no failure notifier",
        "bare: no dagrun_timeout",
        "bare.t: owner 'airflow'",
        "bare.t: no retries",
        "bare.t: retries every failure (no TransientOnlyRetryPolicy)",
        "bare.t: no execution_timeout",
        "bare.job: owner 'airflow'",
        "bare.job: retries every failure (no TransientOnlyRetryPolicy)",
        "bare.job: no execution_timeout",
        "bare.wait: owner 'airflow'",
        "bare.wait: retries every failure (no TransientOnlyRetryPolicy)",
        "bare.wait: no execution_timeout",
        "bare.wait: a sensor that holds a worker slot while it waits (not deferrable)",
    ]


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_no_heavy_import_at_module_level(dag_file):
    """What a parse of the file imports in the dag-processor: its parent process pre-imports the
    `airflow.*` modules a DAG file imports itself, once, before it forks the parse."""
    code = (
        "import sys, runpy, importlib\n"
        "import airflow.sdk\n"
        "from airflow.utils.file import iter_airflow_imports\n"
        f"for module in iter_airflow_imports({str(dag_file)!r}):\n"
        "    importlib.import_module(module)\n"
        "before = set(sys.modules)\n"
        f"runpy.run_path({str(dag_file)!r})\n"
        f"heavy = sorted({{m.split('.')[0] for m in set(sys.modules) - before}} & set({HEAVY_MODULES!r}))\n"
        "print(','.join(heavy))\n"
    )
    env = {
        "PYTHONPATH": str(ROOT / "plugins"),
        "PATH": "/usr/bin:/bin",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    import os

    env["AIRFLOW_HOME"] = os.environ["AIRFLOW_HOME"]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip().splitlines()[-1:] in ([], [""]), f"{dag_file.name} imports {result.stdout}"
