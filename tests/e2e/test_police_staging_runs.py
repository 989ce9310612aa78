"""police_staging and police_staging_promote through the real scheduler: the project's script set
builds and populates, a rerun creates nothing and says every table is already complete, and the
promotion moves the build to `staging` once confirmed. (A hostile schema param is refused when the
run is created: tests/dags/test_police_staging_dag.py.)"""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.helpers import run_demo, warehouse_between_runs
from tests.fingerprint import tables_fingerprint

pytestmark = pytest.mark.e2e

DATE = "2026-03-02"


def latest_attempt_logs(workspace, task_prefix: str) -> dict[str, str]:
    """{task/map_index: text of its latest attempt's log} for the run of DATE."""
    runs = workspace["logs"] / "dag_id=police_staging"
    logs = {}
    for folder in runs.glob(f"run_id=manual__{DATE}*/task_id={task_prefix}*/map_index=*"):
        attempts = sorted(folder.glob("attempt=*.log"), key=lambda p: int(p.stem.split("=")[1]))
        logs[f"{folder.parent.name}/{folder.name}"] = attempts[-1].read_text()
    return logs


def staging_dev_functions(conn) -> list[tuple]:
    """The schema's functions with their definitions and their catalog rows' xmin."""
    return conn.execute(
        "SELECT p.proname, p.xmin::text, pg_get_functiondef(p.oid) FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'staging_dev' ORDER BY 1, 3"
    ).fetchall()


def test_build_rerun_and_promote(workspace, tmp_path):
    summary = tmp_path / "summary.json"
    first = run_demo(workspace, "--only", "police_staging", "--date", DATE, "--summary-json", str(summary))
    assert first.returncode == 0
    run = json.loads(summary.read_text())["runs"][0]
    built = run["outputs"]["verify_build"]
    assert built["schema"] == "staging_dev" and built["tables"] == 14
    assert all(built["rows_by_table"].values())
    assert re.search(r"charges\s+\d+", first.stdout)  # the summary prints the row count per table
    mapped = [t for t in run["tasks"] if t.startswith("create_tables.level_") and "[" in t]
    assert len(mapped) == 14 and {run["tasks"][t] for t in mapped} == {"success"}
    [message] = json.loads(summary.read_text())["telegram_messages"]  # a weekly DAG: success is sent too
    assert message.startswith(f"DAG police_staging with run_id=manual__{DATE}") and "finished successfully." in message

    # The rerun clears the run: every task runs again, finds its work done and writes nothing.
    # The promotion after it is not confirmed: it fails without touching anything.
    with warehouse_between_runs(workspace) as conn:
        before = tables_fingerprint(conn, ("staging_dev",), with_xmin=True)
        functions = staging_dev_functions(conn)
    assert len(before) == 14 and functions
    second = run_demo(workspace, "--only", "police_staging,police_staging_promote", "--date", DATE,
                      "--summary-json", str(summary))  # fmt: skip
    runs = {r["dag_id"]: r for r in json.loads(summary.read_text())["runs"]}
    assert runs["police_staging"]["state"] == "success"
    create_logs = latest_attempt_logs(workspace, "create_tables.level_")
    assert len(create_logs) == 14
    assert all(
        "already complete" in text and "created staging_dev" not in text for text in create_logs.values()
    )
    populate_logs = latest_attempt_logs(workspace, "populate_tables.level_")
    assert len(populate_logs) == 7 and all("has rows: already complete" in t for t in populate_logs.values())
    assert runs["police_staging_promote"]["state"] == "failed" and second.returncode == 1
    assert "not confirmed: trigger with confirm=true" in second.stdout
    with warehouse_between_runs(workspace) as conn:
        # Every table whole, each row's xmin included (a row rewritten with equal values differs).
        assert tables_fingerprint(conn, ("staging_dev",), with_xmin=True) == before
        assert staging_dev_functions(conn) == functions
        officers = conn.execute("SELECT count(*) FROM staging_dev.officers_hub").fetchone()[0]
        assert not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'staging'").fetchone()

    promoted = run_demo(workspace, "--only", "police_staging_promote", "--date", DATE, "--conf", "confirm=true",
                        "--summary-json", str(summary))  # fmt: skip
    assert promoted.returncode == 0
    assert json.loads(summary.read_text())["runs"][0]["outputs"]["promote"]["tables"] == 14
    with warehouse_between_runs(workspace) as conn:
        tables = dict(conn.execute(
            "SELECT schemaname, count(*) FROM pg_tables WHERE schemaname LIKE 'staging%%' GROUP BY 1"
        ).fetchall())  # fmt: skip
        assert tables == {"staging": 14}
        assert conn.execute("SELECT count(*) FROM staging.officers_hub").fetchone()[0] == officers
        assert (
            conn.execute("SELECT staging.normalised_code(' Police  Officer')").fetchone()[0]
            == "police_officer"
        )
