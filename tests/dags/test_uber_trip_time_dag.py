"""uber_trip_time's own task callables, in the DAG's order, against a real Postgres and the
estimates API simulator over HTTP: every `fail_at` value fails its step once, a clear of that
step (its second try) resumes the run there, and the run ends exactly where a clean run does."""

from __future__ import annotations

import secrets
import shutil
from types import SimpleNamespace

import psycopg
import pytest

from sandbox.estimates_api import EstimatesApi
from steps import trip_time
from tests.dags.test_dag_integrity import ROOT
from tests.fingerprint import files_fingerprint, tables_fingerprint

STAMP = "2026-03-02T08:00:00+00:00"
KEY = "2026-03-02T08:00:00Z"
PAIRS = 12
TASK_OF_STEP = {
    "fetch": "fetch_estimates",
    "store": "store_estimates",
    "validate": "validate",
    "store_validation": "store_validation",
    "train": "train",
}


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags" / "uber_trip_time.py")).dags["uber_trip_time"]


@pytest.fixture
def run_pipeline(dag, postgres_server, tmp_path, monkeypatch):
    """Runs the DAG's tasks in order in a fresh database and data folder (the same paths each time,
    so that file contents compare); returns the final state and the API's request log."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("PIPELINES_DATA_DIR", str(data_dir))
    databases = []

    def run(fail_at: str = "") -> dict:
        shutil.rmtree(data_dir, ignore_errors=True)
        database = f"trip_{secrets.token_hex(4)}"
        databases.append(database)
        with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", f"{postgres_server}/{database}")
        api = EstimatesApi("dag-token", clock=lambda: 1772438400.0).start()  # 2026-03-02 08:00 UTC
        monkeypatch.setenv("AIRFLOW_CONN_UBER_API", f'{{"conn_type": "http", "host": "{api.url}", '
                                                    f'"password": "dag-token"}}')  # fmt: skip
        failed, after = [], {}
        try:
            dag.get_task("sample_pairs").python_callable(str(PAIRS), STAMP)
            after["sample_pairs"] = state_of(data_dir, postgres_server, database)
            for task_id in TASK_OF_STEP.values():
                task = dag.get_task(task_id).python_callable
                try:
                    task(fail_at, STAMP, ti=SimpleNamespace(try_number=1))
                except trip_time.FailureDemoError:
                    failed.append((task_id, state_of(data_dir, postgres_server, database)))
                    task(fail_at, STAMP, ti=SimpleNamespace(try_number=2))  # what a clear of the task runs
                after[task_id] = state_of(data_dir, postgres_server, database)
        finally:
            api.stop()
        return {"failed": failed, "after": after, "state": after["train"], "calls": api.requests_tagged(KEY),
                "data_dir": data_dir}  # fmt: skip

    yield run
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        for database in databases:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def state_of(data_dir, postgres_server: str, database: str) -> dict:
    """Tables and files, without the wall-clock time each call was made at (not the run's time)."""
    with psycopg.connect(f"{postgres_server}/{database}") as conn:
        if conn.execute("SELECT to_regclass('trip_estimates')").fetchone()[0]:
            conn.execute("UPDATE trip_estimates SET requested_at = 'epoch'")
        tables = tables_fingerprint(conn)
        conn.rollback()
    files = {
        name: digest
        for name, digest in files_fingerprint(data_dir).items()
        if not name.endswith(("estimates.json", "estimates.progress.jsonl"))  # hold requested_at too
    } if data_dir.exists() else {}  # fmt: skip
    return {"tables": tables, "files": files}


def test_every_fail_at_step_fails_once_and_the_cleared_run_ends_as_a_clean_one(run_pipeline):
    clean = run_pipeline()
    assert clean["failed"] == [] and len(clean["calls"]) == PAIRS
    assert set(clean["state"]["tables"]) == {
        "public.trip_estimates", "public.trip_predictions", "public.trip_model_runs"}  # fmt: skip
    assert_model_file_predicts(
        clean["data_dir"] / "trip_time" / "models" / "trip_model_2026-03-02T080000Z.joblib",
        trip_time.run_paths(clean["data_dir"], KEY).estimates,
    )

    tasks = list(TASK_OF_STEP.values())
    for step, task_id in TASK_OF_STEP.items():
        run = run_pipeline(fail_at=step)
        [(failed_task, at_failure)] = run["failed"]
        assert failed_task == task_id
        # When a step fails, nothing of it is there: the state is a clean run's before that step.
        before = clean["after"][(["sample_pairs", *tasks])[tasks.index(task_id)]]
        assert at_failure == before, f"fail_at={step}: the failed step left a part of its output"
        assert run["state"] == clean["state"], f"fail_at={step}: the resumed run differs from a clean one"
        assert len(run["calls"]) == PAIRS, f"fail_at={step}: an API call was made twice"


def assert_model_file_predicts(path, estimates_file) -> None:
    """The README's promise: one model file per run, the scaler inside, usable as it is: on the
    run's own trips it predicts better than their mean duration does."""
    import datetime as dt
    import json

    import joblib
    import numpy as np
    import pandas as pd

    bundle = joblib.load(path)
    assert bundle["features"] == trip_time.FEATURES and bundle["run_key"] == KEY
    assert len(bundle["scaler"].mean_) == len(trip_time.FEATURES)  # a fitted StandardScaler
    trips = pd.DataFrame(json.loads(estimates_file.read_text())).rename(columns={"distance_m": "geodesic_m"})
    durations = np.array([r["trip"]["duration_estimate"] for r in trips["response"]], float)
    features = trip_time._features(trips, dt.datetime.fromisoformat(STAMP))
    predicted = bundle["model"].predict(bundle["scaler"].transform(features))
    assert np.abs(predicted - durations).mean() < np.abs(durations.mean() - durations).mean()
