"""The scheduler SIGKILLed with three runs in flight on the one-machine stack (its LocalExecutor's
task processes are its children: they die with it, as in a lost scheduler container), then started
again: every run ends as it would have without the kill, through Airflow's own recovery (the new
scheduler finds the dead one's tasks by their stopped heartbeats and retries them)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time

import pytest

from sandbox.embedded_postgres import free_port
from sandbox.estimates_api import EstimatesApi
from sandbox.runs import RunResult, _leaves, follow, trigger, unpause
from steps import trip_time

pytestmark = pytest.mark.e2e
DAY = dt.datetime(2026, 3, 2, 8, tzinfo=dt.UTC)
DAGS = ("song_plays", "police_staging", "uber_trip_time")
PAIRS = 15


@pytest.fixture
def stack(tmp_path, monkeypatch):
    from sandbox.runner import Stack

    api = EstimatesApi("kill-token").start()
    api.latency_seconds = 0.5  # a fetch of 7 s: still under way when the scheduler dies
    for name in [n for n in os.environ if n.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIPELINES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PIPELINES_TASK_RETRIES", "2")
    monkeypatch.setenv("AIRFLOW_CONN_UBER_API", json.dumps(
        {"conn_type": "http", "host": api.url, "password": "kill-token"}))  # fmt: skip
    # Airflow's recovery, on a test's time scale: a task whose heartbeat stopped 30 s ago is failed
    # (and retried), a scheduler silent for 15 s is dead and its queued tasks are adopted.
    monkeypatch.setenv("AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT", "30")
    monkeypatch.setenv("AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL", "5")
    monkeypatch.setenv("AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD", "15")
    monkeypatch.setenv("AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL", "10")
    started = Stack(tmp_path / "state", tmp_path / "logs", free_port(), "admin")
    try:
        yield started.start(list(DAGS), [DAY], use_schedules=False), api
    finally:
        started.stop()
        api.stop()


def running_tasks(api, runs: list[RunResult]) -> dict[str, int]:
    return {r.dag_id: sum(ti.state == "running" for ti in api.run_task_instances(r.dag_id, r.run_id)) for r in runs}


def test_scheduler_killed_with_three_runs_in_flight_every_run_ends_as_without_the_kill(stack, tmp_path):
    stack, estimates = stack
    api = stack.api()
    runs = []
    for dag_id in DAGS:
        unpause(api, dag_id)
        conf = {"n": PAIRS} if dag_id == "uber_trip_time" else {}
        runs.append(RunResult(dag_id, DAY, run_id=trigger(api, dag_id, DAY, conf), leaves=_leaves(api, dag_id)))

    deadline = time.monotonic() + 600  # a guard against a hang, not a measure
    while not all(running_tasks(api, runs).values()):
        assert time.monotonic() < deadline, f"the three runs never had tasks running together: {running_tasks(api, runs)}"
        time.sleep(0.5)
    in_flight = running_tasks(api, runs)
    os.killpg(stack.processes["scheduler"].pid, signal.SIGKILL)  # the scheduler and its task processes
    stack.processes["scheduler"].wait()
    stack._spawn("scheduler", ["airflow", "scheduler"])

    follow(api, runs, time.monotonic() + 900)
    states = {r.dag_id: r.state for r in runs}
    assert states == dict.fromkeys(DAGS, "success"), (states, in_flight)
    tries = {ti.task_id: ti.try_number for r in runs for ti in api.run_task_instances(r.dag_id, r.run_id)}
    print("in flight at the kill:", in_flight, "run again:", {t: n for t, n in tries.items() if n > 1})
    assert max(tries.values()) >= 2, f"no task was run again after the kill: {tries}"

    # One message per run outcome, as without the kill: police_staging (weekly) reports its
    # success once; the daily and hourly DAGs send nothing on success.
    deadline = time.monotonic() + 60
    while not any("DAG police_staging with run_id=" in m["text"] for m in stack.telegram.messages):
        assert time.monotonic() < deadline, "police_staging's success message never came"
        time.sleep(1)
    texts = [m["text"] for m in stack.telegram.messages]
    assert len(texts) == 1 and texts[0].startswith(f"DAG police_staging with run_id={runs[1].run_id} finished"), texts

    # The runs' results are a clean run's: the day's song-plays outputs, the whole police build,
    # the trip-time rows once each, and no estimates-API call repeated but the one in flight.
    data = tmp_path / "data"
    assert (data / "output/2026/03/02/dataset/_SUCCESS").exists()
    assert api.return_value("police_staging", runs[1].run_id, "verify_build")["tables"] == 14
    trained = api.return_value("uber_trip_time", runs[2].run_id, "train")
    assert trained["rows_stored"] == PAIRS and trained["rows_in_table"] == PAIRS
    key = trip_time.run_key(DAY)
    assert PAIRS <= len(estimates.requests_tagged(key)) <= PAIRS + 1
