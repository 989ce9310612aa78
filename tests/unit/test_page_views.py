"""user_page_views against a real S3-compatible server (moto's, over HTTP, through S3Hook) and a
real Postgres; the tables are compared with an independent pandas computation."""

from __future__ import annotations

import datetime as dt

import pytest

from sandbox.generate_page_views import generate, upload
from steps import page_views as steps
from tests.conftest import S3_TEST_BUCKET as BUCKET
from tests.fingerprint import tables_fingerprint
from tests.page_views_reference import check_against_pandas

DAY1, DAY2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def put(s3, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        s3.load_bytes(data, key=key, bucket_name=BUCKET, replace=True)


def test_tables_match_an_independent_computation_over_two_days(warehouse, s3):
    files = generate(DAY1, DAY2, users=60, views=600)
    put(s3, files)
    steps.load_day(warehouse, s3, BUCKET, DAY1)
    assert steps.build_tables(warehouse, DAY1)["days"] == 1
    check_against_pandas(warehouse, files, {DAY1})
    steps.load_day(warehouse, s3, BUCKET, DAY2)
    summary = steps.build_tables(warehouse, DAY2)
    assert summary["days"] == 2 and summary["user_pages_new"] > 0 and summary["recommendations_written"] > 0
    check_against_pandas(warehouse, files)
    # The logs overlap: day 2's files repeat day 1's last hour, and each repeats some of its lines.
    overlap = files[f"PageViews/{DAY2}-a.jsonl"].splitlines()[0]
    assert overlap in files[f"PageViews/{DAY1}-a.jsonl"] + files[f"PageViews/{DAY1}-b.jsonl"]


def test_rerunning_a_day_gives_the_same_tables_and_reads_nothing_again(warehouse, s3, caplog):
    files = generate(DAY1, DAY1, users=40, views=300)
    put(s3, files)
    steps.load_day(warehouse, s3, BUCKET, DAY1)
    steps.build_tables(warehouse, DAY1)
    first = tables_fingerprint(warehouse)
    assert {"public.user_page_counts", "public.page_recommendation_ranks"} <= set(first) and len(first) >= 4
    caplog.set_level("INFO")
    assert steps.load_day(warehouse, s3, BUCKET, DAY1)["already_loaded"]
    steps.build_tables(warehouse, DAY1)
    assert tables_fingerprint(warehouse) == first  # event tables and both built tables, whole
    assert "load_day: already complete" in caplog.text


@pytest.mark.parametrize(("sample", "neighbours"), [(steps.VISIT_PAGES, steps.NEIGHBOURS), (2, 4)],
                         ids=["as_shipped", "small_caps"])  # fmt: skip
def test_days_loaded_in_any_order_end_in_identical_tables(warehouse, s3, postgres_server, monkeypatch, sample,
                                                          neighbours):  # fmt: skip
    """Days 1..4 in order, built after each; the same days shuffled, with a missed day loaded last
    and a day loaded twice, in a second database: every table but the loading log is identical,
    and both equal the pandas computation over all four days. With small caps, pages enter and
    leave the visits' samples (day 2's logs repeat day 1's last hour, so a visit gets rows from two
    loads) and the neighbour lists fill up, so those paths run too."""
    import psycopg

    from tests.conftest import fresh_database

    monkeypatch.setattr(steps, "VISIT_PAGES", sample)
    monkeypatch.setattr(steps, "NEIGHBOURS", neighbours)

    days = [DAY1 + dt.timedelta(days=n) for n in range(4)]
    files = generate(days[0], days[-1], users=50, views=500)
    put(s3, files)

    def state(conn) -> dict:
        return {t: h for t, h in tables_fingerprint(conn).items() if t != "public.page_views_loaded_days"}

    for day in days:
        steps.load_day(warehouse, s3, BUCKET, day)
        steps.build_tables(warehouse, day)
    in_order = state(warehouse)
    samples, most_pages, lists = warehouse.execute(
        "SELECT (SELECT max(n) FROM (SELECT count(*) n FROM visit_samples GROUP BY user_id, day) s), "
        "(SELECT max(n) FROM (SELECT count(DISTINCT url) n FROM page_view_events WHERE environment = 'production' "
        "GROUP BY user_id, (ts AT TIME ZONE 'UTC')::date) v), "
        "(SELECT max(n) FROM (SELECT count(*) n FROM page_neighbours GROUP BY page_id) l)"
    ).fetchone()
    assert samples == min(sample, most_pages) and lists == neighbours
    if sample < most_pages:
        print(f"visits with more pages than their sample of {sample}: up to {most_pages} pages")
    with fresh_database(postgres_server) as uri, psycopg.connect(uri) as other:
        for day in (days[2], days[0], days[3], days[0]):
            steps.load_day(other, s3, BUCKET, day)
            steps.build_tables(other, day)
        steps.load_day(other, s3, BUCKET, days[1])  # the missed day, loaded and built last
        steps.load_day(other, s3, BUCKET, days[1])
        steps.build_tables(other, days[1])
        assert state(other) == in_order
        check_against_pandas(other, files)


def test_the_columnar_reader_gives_the_line_parser_rows():
    """The fast path (Arrow's JSON reader) against the slow reference (the line parser), on
    generated logs and on lines where the two could differ: offsets, no zone, text user ids,
    numbers as urls, blank lines, extra fields."""
    files = generate(DAY1, DAY1, users=30, views=300)
    odd = (b'{"ts": "2026-11-01T10:00:00+03:00", "url": "/a", "environment": "production", "user_id": 1}\n'
           b'\n{"ts": "2026-11-01T10:00:00", "url": "/b", "environment": "production", "user_id": 2, "x": [1]}\n'
           b'{"ts": "2026-11-01T10:00:00.5Z", "url": 7, "environment": "staging", "user_id": "3"}\n')  # fmt: skip
    for key, data in [*((k, v) for k, v in files.items() if k.startswith("PageViews/")), ("PageViews/odd", odd)]:
        table = steps.read_page_views(key, data)
        reference = steps.parse_page_views(key, data.decode())
        assert [tuple(row.values()) for row in table.to_pylist()] == reference, key
        assert len(reference) > 2


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


# The first layout's tables (until 2026-12), as a deployment that ran it holds them.
FIRST_LAYOUT = """
CREATE TABLE page_view_events (ts timestamptz NOT NULL, url text NOT NULL, environment text NOT NULL,
    user_id bigint NOT NULL, first_day date NOT NULL, PRIMARY KEY (ts, url, environment, user_id));
CREATE TABLE user_update_events (updated_at timestamptz NOT NULL, user_id bigint NOT NULL, email text NOT NULL,
    name text NOT NULL, environment text NOT NULL, first_day date NOT NULL,
    PRIMARY KEY (updated_at, user_id, email, name, environment));
CREATE TABLE page_view_delta (user_id bigint NOT NULL, url text NOT NULL, ts timestamptz NOT NULL);
CREATE TABLE user_update_delta (user_id bigint NOT NULL, email text NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE user_emails (user_id bigint PRIMARY KEY, email text NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE user_page_views (user_id bigint NOT NULL, email text, url text NOT NULL, count bigint NOT NULL,
    last_viewed timestamptz NOT NULL, PRIMARY KEY (user_id, url));
CREATE TABLE user_page_samples (user_id bigint NOT NULL, url text NOT NULL, h text NOT NULL,
    PRIMARY KEY (user_id, url));
CREATE TABLE page_co_views (url text NOT NULL, other_url text NOT NULL, users bigint NOT NULL,
    PRIMARY KEY (url, other_url));
CREATE TABLE page_neighbours (url text NOT NULL, other_url text NOT NULL, PRIMARY KEY (url, other_url));
CREATE TABLE page_recommendations (user_id bigint NOT NULL, email text, recommended_url text NOT NULL,
    rank integer NOT NULL, PRIMARY KEY (user_id, rank));
"""


def test_a_warehouse_of_the_first_layout_is_rebuilt_from_its_events(warehouse, s3):
    """The first layout's built tables (some rows in them, stale) are replaced: the next load
    queues every loaded event again, and its build gives what the files give."""
    from tests.page_views_reference import frames_from_files

    files = generate(DAY1, DAY2, users=40, views=400)
    put(s3, files)
    warehouse.execute(FIRST_LAYOUT)
    views, updates = frames_from_files(files, {DAY1})
    with warehouse.cursor().copy("COPY page_view_events (ts, url, environment, user_id, first_day) FROM STDIN") as copy:
        for row in views.drop_duplicates().itertuples(index=False):
            copy.write_row((row.ts, row.url, row.environment, row.user_id, DAY1))
    with warehouse.cursor().copy("COPY user_update_events (updated_at, user_id, email, name, environment, "
                                 "first_day) FROM STDIN") as copy:  # fmt: skip
        for row in updates.drop_duplicates().itertuples(index=False):
            copy.write_row((row.updated_at, row.user_id, row.email, row.name, row.environment, DAY1))
    warehouse.execute("INSERT INTO user_page_views VALUES (1, 'stale@x', '/stale', 99, now())")
    warehouse.commit()

    steps.load_day(warehouse, s3, BUCKET, DAY2)
    assert steps.build_tables(warehouse, DAY2)["recommendations_written"] > 0
    check_against_pandas(warehouse, files)
    kinds = dict(warehouse.execute("SELECT relname, relkind FROM pg_class WHERE relname IN "
                                   "('user_page_views', 'page_recommendations', 'user_page_samples')").fetchall())
    assert kinds == {"user_page_views": "v", "page_recommendations": "v"}
