"""user_page_views through the real scheduler against an S3 server the test controls: a day whose
keys never come ends skipped, a day with a malformed line fails naming key and line."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from sandbox.embedded_postgres import free_port
from sandbox.generate_page_views import generate, upload
from tests.e2e.helpers import run_demo

pytestmark = pytest.mark.e2e


def test_missing_keys_end_skipped_and_a_bad_line_fails_naming_it(workspace, tmp_path):
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        day = dt.date(2026, 5, 1)
        files = generate(day, day, users=20, views=100)
        files["PageViews/2026-05-01-b.jsonl"] += b'{"ts": "2026-05-01T23:00:00Z", "url": "/cart"\n'
        upload(files, "pv-e2e", url, "testing", "testing")  # nothing for 2026-05-02
        conn = {"conn_type": "aws", "login": "testing", "password": "testing",
                "extra": {"endpoint_url": url, "region_name": "us-east-1"}}  # fmt: skip
        summary = tmp_path / "summary.json"
        result = run_demo(
            workspace, "--only", "user_page_views", "--date", "2026-05-01..2026-05-02", "--sensor-timeout", "10",
            "--summary-json", str(summary),
            AIRFLOW_CONN_AWS_DEFAULT=json.dumps(conn), PAGE_VIEWS_BUCKET="pv-e2e",
        )  # fmt: skip
    finally:
        server.stop()
    assert result.returncode == 1
    runs = {r["logical_date"][:10]: r for r in json.loads(summary.read_text())["runs"]}
    assert runs["2026-05-01"]["tasks"]["load_day"] == "failed"
    lines = files["PageViews/2026-05-01-b.jsonl"].count(b"\n")
    assert f"PageViews/2026-05-01-b.jsonl: line {lines}: not JSON" in result.stdout
    assert runs["2026-05-02"]["shown_state"] == "skipped"
    assert runs["2026-05-02"]["tasks"]["wait_for_logs"] == "skipped"
    assert runs["2026-05-02"]["tasks"]["build_tables"] == "skipped"
