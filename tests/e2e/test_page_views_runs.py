"""user_page_views through the real scheduler against an S3 server the test controls: a backfill
where one day loads, one has a malformed line (fails naming key and line) and one never gets its
keys (ends skipped); then the failed day, its file fixed, runs again with day 1's keys deleted:
it succeeds, and the tables hold both days, so no past day was read from S3 again."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest

from sandbox.generate_page_views import generate, upload
from tests.e2e.helpers import demo_runs, warehouse_between_runs
from tests.page_views_reference import check_against_pandas

pytestmark = pytest.mark.e2e
DAY1, DAY2 = dt.date(2026, 5, 1), dt.date(2026, 5, 2)
BUCKET = "pv-e2e"


def test_a_backfill_then_the_failed_day_again_without_reading_a_past_day(workspace, s3_server):
    files = generate(DAY1, DAY2, users=20, views=100)
    bad_key = f"PageViews/{DAY2}-b.jsonl"
    good = files[bad_key]
    upload({**files, bad_key: good + b'{"ts": "2026-05-02T23:00:00Z", "url": "/cart"\n'},
           BUCKET, s3_server, "testing", "testing")  # nothing at all for 2026-05-03  # fmt: skip
    conn = {"conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"endpoint_url": s3_server, "region_name": "us-east-1"}}  # fmt: skip
    env = {"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn), "PAGE_VIEWS_BUCKET": BUCKET}

    result, runs = demo_runs(workspace, "pv-backfill", "--only", "user_page_views", "--date",
                             "2026-05-01..2026-05-03", "--sensor-timeout", "10", **env)  # fmt: skip
    assert result.returncode == 1
    runs = {r["logical_date"][:10]: r for r in runs}
    assert runs["2026-05-01"]["state"] == "success"
    assert runs["2026-05-02"]["tasks"]["load_day"] == "failed"
    assert runs["2026-05-02"]["tasks"]["build_tables"] == "upstream_failed"
    bad_line = good.count(b"\n") + 1
    assert f"{bad_key}: line {bad_line}: not JSON" in result.stdout
    assert runs["2026-05-03"]["shown_state"] == "skipped"
    assert runs["2026-05-03"]["tasks"]["wait_for_logs"] == "skipped"
    assert runs["2026-05-03"]["tasks"]["build_tables"] == "skipped"

    s3 = boto3.client("s3", endpoint_url=s3_server, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")  # fmt: skip
    for key in files:
        if key.split("/")[1].startswith(str(DAY1)):
            s3.delete_object(Bucket=BUCKET, Key=key)
    s3.put_object(Bucket=BUCKET, Key=bad_key, Body=good)
    result, [run] = demo_runs(workspace, "pv-again", "--only", "user_page_views", "--date", str(DAY2), **env)
    assert result.returncode == 0 and run["state"] == "success"
    assert run["outputs"]["build_tables"]["days"] == 2
    with warehouse_between_runs(workspace) as warehouse:
        check_against_pandas(warehouse, files)  # day 1's rows came from the warehouse, not S3
