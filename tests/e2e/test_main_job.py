"""The README's main command, `make demo` with no selection, as a user runs it: every DAG in
dags/ but the manual-only promotion runs and succeeds on embedded parts, and the Telegram
messages are the ones the README promises (success of the weekly DAGs only)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sandbox.embedded_postgres import free_port
from tests.dags.test_readme_schedules import readme_schedules
from tests.e2e.helpers import ROOT, runner_env
from tests.e2e.test_recsys_runs import check_recsys_runs, loaded_tables

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    """`make demo` once, as the README says; returns the finished process and its summary path."""
    base = tmp_path_factory.mktemp("main_job")
    workspace = {"state": base / "state", "logs": base / "logs", "data": base / "data"}
    summary = base / "summary.json"
    args = (f"--api-port {free_port()} --state-dir {workspace['state']} --logs-dir {workspace['logs']} "
            f"--summary-json {summary}")  # fmt: skip
    result = subprocess.run(["make", "--no-print-directory", "demo", f"ARGS={args}"], cwd=ROOT,
                            env=runner_env(workspace), capture_output=True, text=True, timeout=1200)  # fmt: skip
    print(result.stdout[-6000:], result.stderr[-3000:])
    return result, summary


def test_make_demo_runs_every_pipeline_and_sends_the_promised_messages(main_job):
    result, summary = main_job
    assert result.returncode == 0

    schedules = readme_schedules()
    runs = {r["dag_id"]: r for r in json.loads(summary.read_text())["runs"]}
    manual_only = {d for d, words in schedules.items() if words.startswith("manual")}
    assert manual_only == {"police_staging_promote"}
    assert set(runs) == set(schedules) - manual_only
    assert {d: r["state"] for d, r in runs.items()} == dict.fromkeys(runs, "success")
    assert runs["rank_candidates"]["started_by"] == "assets"

    messages = json.loads(summary.read_text())["telegram_messages"]
    succeeded = {m.split()[1] for m in messages if "finished successfully." in m}
    weekly = {d for d in runs if schedules[d] not in ("daily", "hourly")}
    assert succeeded == weekly and len(messages) == len(weekly), messages
    assert f"Telegram messages received by the fake Bot API ({len(weekly)}):" in result.stdout
    # The runner waited for exactly these (the DAGs with a success callback, read from Airflow's
    # serialized DAGs), not for messages the daily and hourly successes never send.
    assert "no Telegram message after" not in result.stdout


def test_the_recommender_runs_of_the_main_job_on_the_shipped_sample_files(main_job):
    result, summary = main_job
    runs = {r["dag_id"]: r for r in json.loads(summary.read_text())["runs"]}
    assert all(Path(o["file"]).parent == ROOT / "postgres_data" for o in loaded_tables(runs).values())
    check_recsys_runs(runs, json.loads(summary.read_text())["telegram_messages"], result.stdout)
