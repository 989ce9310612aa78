"""User page views (PIPELINES.md 2c), the Luigi tutorial's exercise, and page recommendations.

Inputs, one day at a time, in an S3 bucket:
- `UserUpdates/YYYY-MM-DD*.csv`: no header, quoted: updated_at, user_id, email, name, environment
- `PageViews/YYYY-MM-DD*`: JSON lines {"ts", "url", "environment", "user_id"}

`load_day` parses a day's files strictly (a bad row fails the task naming the key and line) and
adds their rows to two event tables in the warehouse, where an exact duplicate (the logs overlap)
is kept once, remembering the first day that brought it. That is the state that makes the daily
build incremental: no past day is read from S3 again. `build_tables` then replaces, in one
transaction, `user_page_views(user_id, email, url, count, last_viewed)` and
`page_recommendations(user_id, email, recommended_url, rank)` over the production rows of every
day up to the run's day.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

AWS_CONN_ID = "aws_default"
USER_UPDATES_PREFIX = "UserUpdates/"
PAGE_VIEWS_PREFIX = "PageViews/"
PRODUCTION = "production"
RECOMMENDATIONS_PER_USER = 3


class BadLogError(ValueError):
    """A log file that cannot be read; names the key and the line."""


def day_prefixes(day: dt.date) -> tuple[str, str]:
    return f"{USER_UPDATES_PREFIX}{day:%Y-%m-%d}", f"{PAGE_VIEWS_PREFIX}{day:%Y-%m-%d}"


def _timestamp(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _field(key: str, number: int, name: str, value, convert):
    """`convert(value)`, or a BadLogError naming the key, line and field."""
    try:
        return convert(value)
    except (TypeError, ValueError) as err:
        raise BadLogError(f"{key}: line {number}, field {name}: {str(value)[:80]!r} ({err})"[:500]) from None


def parse_user_updates(key: str, text: str) -> list[tuple]:
    """Rows (updated_at, user_id, email, name, environment) of a header-less quoted CSV."""
    rows = []
    for number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields:
            continue
        if len(fields) != 5:
            raise BadLogError(f"{key}: line {number}: expected 5 fields (updated_at, user_id, email, name, "
                              f"environment), got {len(fields)}")  # fmt: skip
        updated_at, user_id, email, name, environment = fields
        rows.append((_field(key, number, "updated_at", updated_at, _timestamp),
                     _field(key, number, "user_id", user_id, int), email, name, environment))  # fmt: skip
    return rows


def parse_page_views(key: str, text: str) -> list[tuple]:
    """Rows (ts, url, environment, user_id) of a JSON-lines file."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise BadLogError(f"{key}: line {number}: not JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise BadLogError(f"{key}: line {number}: expected a JSON object, got {type(record).__name__}")
        missing = [f for f in ("ts", "url", "environment", "user_id") if f not in record]
        if missing:
            raise BadLogError(f"{key}: line {number}: missing field(s) {', '.join(missing)}")
        ts = _field(key, number, "ts", record["ts"], _timestamp)
        user_id = _field(key, number, "user_id", record["user_id"], int)
        rows.append((ts, str(record["url"]), str(record["environment"]), user_id))
    return rows


def read_log(s3, bucket: str, key: str) -> str:
    """A log file's text; bytes that are not UTF-8 fail naming the key and line."""
    from steps.core.files import utf8_text

    return utf8_text(s3.get_key(key, bucket_name=bucket).get()["Body"].read(), key, BadLogError)


EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS page_view_events (
    ts timestamptz NOT NULL, url text NOT NULL, environment text NOT NULL, user_id bigint NOT NULL,
    first_day date NOT NULL,
    PRIMARY KEY (ts, url, environment, user_id)
);
CREATE TABLE IF NOT EXISTS user_update_events (
    updated_at timestamptz NOT NULL, user_id bigint NOT NULL, email text NOT NULL, name text NOT NULL,
    environment text NOT NULL, first_day date NOT NULL,
    PRIMARY KEY (updated_at, user_id, email, name, environment)
);
CREATE TABLE IF NOT EXISTS page_views_loaded_days (
    day date PRIMARY KEY, keys jsonb NOT NULL, page_views bigint NOT NULL, user_updates bigint NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS user_page_views (
    user_id bigint NOT NULL, email text, url text NOT NULL, count bigint NOT NULL,
    last_viewed timestamptz NOT NULL, PRIMARY KEY (user_id, url)
);
CREATE TABLE IF NOT EXISTS page_recommendations (
    user_id bigint NOT NULL, email text, recommended_url text NOT NULL, rank integer NOT NULL,
    PRIMARY KEY (user_id, rank)
);
"""


def ensure_tables(conn) -> None:
    conn.execute(EVENTS_DDL)
    conn.commit()


def load_day(conn, s3, bucket: str, day: dt.date) -> dict:
    """Add a day's log rows to the event tables, in one transaction. `s3` lists and reads keys
    (S3Hook-like: list_keys(bucket_name, prefix), get_key(key, bucket_name))."""
    ensure_tables(conn)
    updates_prefix, views_prefix = day_prefixes(day)
    keys = sorted(
        [k for k in s3.list_keys(bucket_name=bucket, prefix=updates_prefix) or [] if k.endswith(".csv")]
        + list(s3.list_keys(bucket_name=bucket, prefix=views_prefix) or [])
    )
    done = conn.execute("SELECT keys FROM page_views_loaded_days WHERE day = %s", (day,)).fetchone()
    if done and done[0] == keys:
        log.info("load_day: already complete for %s (%d keys)", day, len(keys))
        return {"day": str(day), "keys": len(keys), "already_loaded": True}
    views, updates = [], []
    for key in keys:
        text = read_log(s3, bucket, key)
        if key.startswith(USER_UPDATES_PREFIX):
            updates += parse_user_updates(key, text)
        else:
            views += parse_page_views(key, text)
    with conn.cursor() as cur:
        _insert_events(cur, "page_view_events", ("ts", "url", "environment", "user_id"), views, day)
        _insert_events(cur, "user_update_events", ("updated_at", "user_id", "email", "name", "environment"),
                       updates, day)  # fmt: skip
        cur.execute(
            "INSERT INTO page_views_loaded_days (day, keys, page_views, user_updates) "
            "VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (day) DO UPDATE SET keys = EXCLUDED.keys, page_views = EXCLUDED.page_views, "
            "user_updates = EXCLUDED.user_updates, loaded_at = now()",
            (day, json.dumps(keys), len(views), len(updates)),
        )
    conn.commit()
    log.info(
        "load_day %s: %d page views and %d user updates from %d keys",
        day,
        len(views),
        len(updates),
        len(keys),
    )
    return {"day": str(day), "keys": len(keys), "page_views": len(views), "user_updates": len(updates)}


def _insert_events(cur, table: str, columns: tuple[str, ...], rows: Iterable[tuple], day: dt.date) -> None:
    """COPY into a temporary table, then add the rows not seen yet; a row seen before keeps the
    earliest day that brought it, so a rebuild for an earlier day still counts it."""
    listed = ", ".join(columns)
    cur.execute(f"CREATE TEMP TABLE incoming (LIKE {table}) ON COMMIT DROP")
    with cur.copy(f"COPY incoming ({listed}, first_day) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((*row, day))
    cur.execute(
        f"INSERT INTO {table} ({listed}, first_day) SELECT DISTINCT {listed}, first_day FROM incoming "
        f"ON CONFLICT ({listed}) DO UPDATE SET first_day = LEAST({table}.first_day, EXCLUDED.first_day) "
        f"WHERE EXCLUDED.first_day < {table}.first_day"
    )
    cur.execute("DROP TABLE incoming")


BUILD_SQL = """
DELETE FROM user_page_views;
DELETE FROM page_recommendations;
CREATE TEMP TABLE views ON COMMIT DROP AS
    SELECT user_id, url, ts FROM page_view_events WHERE environment = %(env)s AND first_day <= %(day)s;
CREATE TEMP TABLE emails ON COMMIT DROP AS
    SELECT DISTINCT ON (user_id) user_id, email FROM user_update_events
    WHERE environment = %(env)s AND first_day <= %(day)s
    ORDER BY user_id, updated_at DESC, email;
INSERT INTO user_page_views (user_id, email, url, count, last_viewed)
    SELECT v.user_id, e.email, v.url, count(*), max(v.ts)
    FROM views v LEFT JOIN emails e USING (user_id)
    GROUP BY v.user_id, e.email, v.url;
INSERT INTO page_recommendations (user_id, email, recommended_url, rank)
    WITH seen AS (SELECT DISTINCT user_id, url FROM views),
    -- Users who viewed at least one page in common, found once per pair: joining pages to the
    -- pages of every co-viewer directly would multiply rows by the pages per user.
    neighbours AS (
        SELECT DISTINCT a.user_id, b.user_id AS other
        FROM seen a JOIN seen b ON b.url = a.url AND b.user_id <> a.user_id
    ),
    co_views AS (
        SELECT n.user_id, s.url, count(*) AS viewers
        FROM neighbours n JOIN seen s ON s.user_id = n.other
        WHERE NOT EXISTS (SELECT 1 FROM seen m WHERE m.user_id = n.user_id AND m.url = s.url)
        GROUP BY n.user_id, s.url
    ),
    ranked AS (
        SELECT user_id, url, row_number() OVER (PARTITION BY user_id ORDER BY viewers DESC, url) AS rank
        FROM co_views
    )
    SELECT r.user_id, e.email, r.url, r.rank FROM ranked r LEFT JOIN emails e USING (user_id)
    WHERE r.rank <= %(top)s;
"""


def build_tables(conn, day: dt.date) -> dict:
    """Replace both tables with the result over every loaded day up to `day`, in one transaction."""
    ensure_tables(conn)
    with conn.cursor() as cur:
        for statement in filter(str.strip, BUILD_SQL.split(";\n")):
            cur.execute(statement, {"env": PRODUCTION, "day": day, "top": RECOMMENDATIONS_PER_USER})
        counts = {
            table: cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("user_page_views", "page_recommendations")
        }
        days = cur.execute("SELECT count(*) FROM page_views_loaded_days WHERE day <= %s", (day,)).fetchone()[
            0
        ]
    conn.commit()
    log.info("build_tables up to %s over %d days: %s", day, days, counts)
    return {**counts, "days": days}
