"""user_page_views against a real S3-compatible server (moto's, over HTTP, through S3Hook) and a
real Postgres; the tables are compared with an independent pandas computation."""

from __future__ import annotations

import datetime as dt
import io

import pandas as pd
import pytest

from sandbox.generate_page_views import generate, upload
from steps import page_views as steps
from tests.conftest import S3_TEST_BUCKET as BUCKET
from tests.fingerprint import tables_fingerprint

DAY1, DAY2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def put(s3, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        s3.load_bytes(data, key=key, bucket_name=BUCKET, replace=True)


def expected_tables(files: dict[str, bytes], up_to: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables computed with pandas straight from the files."""
    days = {key: dt.date.fromisoformat(key.split("/")[1][:10]) for key in files}
    views = pd.concat(
        [pd.read_json(io.BytesIO(data), lines=True, dtype={"user_id": "int64"})
         for key, data in files.items() if key.startswith("PageViews/") and days[key] <= up_to]
    )  # fmt: skip
    views["ts"] = pd.to_datetime(views["ts"], utc=True)
    views = views.drop_duplicates()
    views = views[views["environment"] == "production"]
    updates = pd.concat(
        [pd.read_csv(io.BytesIO(data), header=None, names=["updated_at", "user_id", "email", "name", "environment"])
         for key, data in files.items() if key.startswith("UserUpdates/") and days[key] <= up_to]
    ).drop_duplicates()  # fmt: skip
    updates["updated_at"] = pd.to_datetime(updates["updated_at"], utc=True)
    updates = updates[updates["environment"] == "production"].sort_values(["user_id", "updated_at", "email"],
                                                                          ascending=[True, False, True])  # fmt: skip
    emails = updates.drop_duplicates("user_id")[["user_id", "email"]]
    upv = (
        views.groupby(["user_id", "url"]).agg(count=("ts", "size"), last_viewed=("ts", "max")).reset_index()
        .merge(emails, on="user_id", how="left")
    )  # fmt: skip
    seen = views[["user_id", "url"]].drop_duplicates()
    pairs = seen.merge(seen, on="url", suffixes=("", "_other"))
    pairs = pairs[pairs["user_id"] != pairs["user_id_other"]][["user_id", "user_id_other"]].drop_duplicates()
    candidates = pairs.merge(seen.rename(columns={"user_id": "user_id_other"}), on="user_id_other")
    candidates = candidates.merge(seen.assign(mine=True), on=["user_id", "url"], how="left")
    candidates = candidates[candidates["mine"].isna()]
    scores = candidates.groupby(["user_id", "url"])["user_id_other"].nunique().rename("viewers").reset_index()
    scores = scores.sort_values(["user_id", "viewers", "url"], ascending=[True, False, True])
    scores["rank"] = scores.groupby("user_id").cumcount() + 1
    recs = scores[scores["rank"] <= 3].merge(emails, on="user_id", how="left")
    return upv, recs.rename(columns={"url": "recommended_url"})[
        ["user_id", "email", "recommended_url", "rank"]
    ]


def table(conn, sql: str) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(sql)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def check_against_pandas(conn, files, up_to) -> None:
    want_upv, want_recs = expected_tables(files, up_to)
    got_upv = table(conn, "SELECT user_id, url, count, last_viewed, email FROM user_page_views")
    got_recs = table(conn, "SELECT user_id, email, recommended_url, rank FROM page_recommendations")
    key = ["user_id", "url"]
    want = (
        want_upv[["user_id", "url", "count", "last_viewed", "email"]].sort_values(key).reset_index(drop=True)
    )
    got = got_upv.sort_values(key).reset_index(drop=True)
    got["last_viewed"] = pd.to_datetime(got["last_viewed"], utc=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    key = ["user_id", "rank"]
    pd.testing.assert_frame_equal(
        got_recs.sort_values(key).reset_index(drop=True), want_recs.sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )  # fmt: skip


def test_tables_match_an_independent_computation_over_two_days(warehouse, s3):
    files = generate(DAY1, DAY2, users=60, views=600)
    put(s3, files)
    steps.load_day(warehouse, s3, BUCKET, DAY1)
    assert steps.build_tables(warehouse, DAY1)["days"] == 1
    check_against_pandas(warehouse, files, DAY1)
    steps.load_day(warehouse, s3, BUCKET, DAY2)
    summary = steps.build_tables(warehouse, DAY2)
    assert summary["days"] == 2 and summary["user_page_views"] > 0 and summary["page_recommendations"] > 0
    check_against_pandas(warehouse, files, DAY2)
    # The logs overlap: day 2's files repeat day 1's last hour, and each repeats some of its lines.
    overlap = files[f"PageViews/{DAY2}-a.jsonl"].splitlines()[0]
    assert overlap in files[f"PageViews/{DAY1}-a.jsonl"] + files[f"PageViews/{DAY1}-b.jsonl"]


def test_rerunning_a_day_gives_the_same_tables_and_reads_nothing_again(warehouse, s3, caplog):
    files = generate(DAY1, DAY1, users=40, views=300)
    put(s3, files)
    steps.load_day(warehouse, s3, BUCKET, DAY1)
    steps.build_tables(warehouse, DAY1)
    first = tables_fingerprint(warehouse)
    assert {"public.user_page_views", "public.page_recommendations"} <= set(first) and len(first) >= 4
    caplog.set_level("INFO")
    assert steps.load_day(warehouse, s3, BUCKET, DAY1)["already_loaded"]
    steps.build_tables(warehouse, DAY1)
    assert tables_fingerprint(warehouse) == first  # event tables and both built tables, whole
    assert "load_day: already complete" in caplog.text


def test_an_earlier_day_is_built_from_its_own_days_only(warehouse, s3):
    files = generate(DAY1, DAY2, users=40, views=300)
    put(s3, files)
    steps.load_day(warehouse, s3, BUCKET, DAY2)
    steps.load_day(warehouse, s3, BUCKET, DAY1)  # a backfill after the later day
    steps.build_tables(warehouse, DAY1)
    check_against_pandas(warehouse, files, DAY1)


@pytest.mark.parametrize(
    ("key", "content", "expected"),
    [
        (f"UserUpdates/{DAY2}.csv", '"2026-11-02T10:00:00","7","a@example.com","A"\n', r"line 1: expected 5 fields"),
        (f"UserUpdates/{DAY2}.csv", '"2026-11-02T10:00:00","7","a@x","A","production"\n"soon","8","b@x","B","production"\n',
         r"line 2, field updated_at: 'soon' \(Invalid isoformat string: 'soon'\)"),
        (f"PageViews/{DAY2}-a.jsonl", '{"ts": "2026-11-02T10:00:00Z", "url": "/", "environment": "production", "user_id": 1}\n{"ts": \n',
         r"line 2: not JSON"),
        (f"PageViews/{DAY2}-a.jsonl", '{"ts": "2026-11-02T10:00:00Z", "url": "/", "user_id": 1}\n', r"line 1: missing field\(s\) environment"),
    ],
    ids=["csv_fields", "csv_time", "json_syntax", "json_field"],
)  # fmt: skip
def test_malformed_rows_fail_naming_key_and_line_and_keep_the_tables(warehouse, s3, key, content, expected):
    put(s3, generate(DAY1, DAY1, users=30, views=200))
    steps.load_day(warehouse, s3, BUCKET, DAY1)
    steps.build_tables(warehouse, DAY1)
    before, contents = tables_fingerprint(warehouse, with_xmin=True), tables_fingerprint(warehouse)
    put(s3, {f"UserUpdates/{DAY2}.csv": b"", f"PageViews/{DAY2}-a.jsonl": b"", key: content.encode()})
    with pytest.raises(steps.BadLogError, match=rf"{key}: {expected}"):
        steps.load_day(warehouse, s3, BUCKET, DAY2)
    warehouse.rollback()
    # Not a row of the bad day in any table, events or built (xmin: not even rewritten) ...
    assert tables_fingerprint(warehouse, with_xmin=True) == before
    # ... so the day's build, should it run anyway, gives what day 1 alone gave.
    steps.build_tables(warehouse, DAY2)
    assert tables_fingerprint(warehouse) == contents


def test_generator_upload_reaches_the_same_server(s3_server, s3):
    upload(generate(DAY1, DAY1, users=10, views=50), BUCKET, s3_server, "testing", "testing")
    assert sorted(s3.list_keys(bucket_name=BUCKET)) == [
        f"PageViews/{DAY1}-a.jsonl", f"PageViews/{DAY1}-b.jsonl", f"UserUpdates/{DAY1}.csv",
    ]  # fmt: skip
