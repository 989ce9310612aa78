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


def latest_attempt_log(workspace, task_id: str) -> str:
    """The text of the task's latest attempt's log in the run of DATE."""
    [folder] = (workspace["logs"] / "dag_id=police_staging").glob(f"run_id=manual__{DATE}*/task_id={task_id}")
    attempts = sorted(folder.glob("attempt=*.log"), key=lambda p: int(p.stem.split("=")[1]))
    return attempts[-1].read_text()


def tables_reported(log: str, stage: str, status: str) -> list[str]:
    """The tables a stage's log reports with `status`, in the order it walked them."""
    return re.findall(rf"{stage}, level \d+: (\w+) +{status}", log)


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
    assert {run["tasks"][t] for t in ("create_tables", "populate_tables", "clean_tables")} == {"success"}
    created = tables_reported(latest_attempt_log(workspace, "create_tables"), "create", "created")
    assert len(created) == 14 and created.index("officers_hub") < created.index("events_hub") < created.index("charges")
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
    create_log = latest_attempt_log(workspace, "create_tables")
    assert tables_reported(create_log, "create", "already complete") == created
    assert "created staging_dev" not in create_log
    populate_log = latest_attempt_log(workspace, "populate_tables")
    assert len(tables_reported(populate_log, "populate", "already complete")) == 7
    assert populate_log.count("has rows: already complete") == 7
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
