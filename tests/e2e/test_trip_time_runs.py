"""uber_trip_time through the real scheduler, against an estimates API simulator that outlives
the runs (so its request log shows every call): the resume demo on the real Krasnodar nodes."""

from __future__ import annotations

import json

import pytest

from sandbox.estimates_api import EstimatesApi
from steps import trip_time
from tests.conftest import SHARED_DATA
from tests.e2e.helpers import run_demo, warehouse_between_runs
from tests.fingerprint import files_fingerprint, tables_fingerprint

pytestmark = pytest.mark.e2e
HOUR = "2026-03-02T08:00:00"
KEY = "2026-03-02T08:00:00Z"


def trip_time_state(workspace) -> tuple[dict, dict]:
    """The pipeline's tables (rows with their xmin) and every file it wrote."""
    with warehouse_between_runs(workspace) as conn:
        tables = {
            name: fingerprint
            for name, fingerprint in tables_fingerprint(conn, with_xmin=True).items()
            if name.startswith("public.trip_")
        }
    assert set(tables) == {"public.trip_estimates", "public.trip_predictions", "public.trip_model_runs"}
    files = files_fingerprint(workspace["data"] / "trip_time")
    assert any(name.endswith(".joblib") for name in files) and any("predictions" in n for n in files)
    return tables, files


def test_fail_at_validate_then_rerun_resumes_without_calling_the_api_again(workspace, tmp_path):
    api = EstimatesApi("e2e-token").start()
    nodes = SHARED_DATA / "uber" / "nodes.csv"
    env = {
        "AIRFLOW_CONN_UBER_API": json.dumps({"conn_type": "http", "host": api.url, "password": "e2e-token"}),
        **({"TRIP_NODES_FILE": str(nodes)} if nodes.exists() else {}),
    }
    try:
        summary = tmp_path / "first.json"
        first = run_demo(workspace, "--only", "uber_trip_time", "--date", HOUR, "--conf", "fail_at=validate",
                         "--conf", "n=8", "--summary-json", str(summary), **env)  # fmt: skip
        assert first.returncode == 1
        assert "--- task validate failed" in first.stdout and "failing at validate on purpose" in first.stdout
        [run] = json.loads(summary.read_text())["runs"]
        assert run["tasks"]["store_estimates"] == "success" and run["tasks"]["train"] == "upstream_failed"
        assert len(api.requests_tagged(KEY)) == 8

        summary = tmp_path / "second.json"
        second = run_demo(workspace, "--only", "uber_trip_time", "--date", HOUR, "--conf", "fail_at=validate",
                          "--conf", "n=8", "--summary-json", str(summary), **env)  # fmt: skip
        assert second.returncode == 0
        assert "cleared the existing run" in second.stdout
        [run] = json.loads(summary.read_text())["runs"]
        trained = run["outputs"]["train"]
        assert trained["rows_stored"] == 8 and trained["mae_s"] is not None
        assert len(api.requests_tagged(KEY)) == 8  # no call made twice
        pairs = json.loads((trip_time.run_paths(workspace["data"], KEY).pairs).read_text())
        assert len(pairs) == 8 and all(p["distance_m"] >= 500 for p in pairs)

        # A rerun of the finished run changes nothing: tables whole, files byte for byte, no call.
        before = trip_time_state(workspace)
        third = run_demo(workspace, "--only", "uber_trip_time", "--date", HOUR, "--conf", "fail_at=validate",
                         "--conf", "n=8", **env)  # fmt: skip
        assert third.returncode == 0
        assert trip_time_state(workspace) == before
        assert len(api.requests_tagged(KEY)) == 8
    finally:
        api.stop()
