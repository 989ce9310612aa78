"""User page views (PIPELINES.md 2c), the Luigi tutorial's exercise, and page recommendations.

Inputs, one day at a time, in an S3 bucket:
- `UserUpdates/YYYY-MM-DD*.csv`: no header, quoted: updated_at, user_id, email, name, environment
- `PageViews/YYYY-MM-DD*`: JSON lines {"ts", "url", "environment", "user_id"}

`load_day` reads a day's files with Arrow's columnar JSON reader (a file it refuses is parsed again
line by line, so that a bad row fails the task naming the key and line), and adds their rows to
two event tables in the warehouse, where an exact duplicate (the logs overlap) is kept once. The
production rows that were new are also queued in two delta tables. `build_tables` applies that
delta, in one transaction, to the aggregates: no past day is read again, from S3 or from the
event tables, so a day costs what it brought, not what the deployment's history holds.

- `user_page_views(user_id, email, url, count, last_viewed)`, a view of `user_page_counts` (added
  to from the delta) with the user's latest email (`user_emails`) and the page's url (`pages`).
- `page_recommendations(user_id, email, recommended_url, rank)`: item-to-item, "viewed together".
  A visit is a user's views on one UTC day. `page_co_views(page_id, other_id, visits)` counts the
  visits in which both pages were viewed, over a sample of each visit: its `VISIT_PAGES` pages of
  smallest hash (of user, day and page). Counting per visit, not per user over all time, keeps a
  day's cost to the visits it brought (a user's history never enters a pair again, and nothing has
  to leave a sample when a new day arrives) and says what people look at together. Each page
  keeps its `NEIGHBOURS` most co-viewed pages (`page_neighbours`); a user is recommended the
  unseen pages found in the most neighbour lists of their latest visit's sample (`user_last_visits`),
  ties by page id (a fixed hash of the url), and is ranked again only when they saw a new page,
  got new seeds, or a seed's list changed.

Pages are keyed by a hash of their url (`page_views_hash`), so that ids, like every table, do not
depend on the order the days were loaded in. The statements are in `sql/page_views/`: the tables,
load_day's (`add_views.sql`, `add_updates.sql`) and build_tables' steps in order (`apply_delta.sql`).

The aggregates are a function of the set of rows loaded, so days loaded in any order, a missed
day loaded later, or a day loaded again end in the same tables.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re

log = logging.getLogger(__name__)

AWS_CONN_ID = "aws_default"
USER_UPDATES_PREFIX = "UserUpdates/"
PAGE_VIEWS_PREFIX = "PageViews/"
PRODUCTION = "production"
RECOMMENDATIONS_PER_USER = 3
# The caps that bound a day's cost (bench page_views: 40,000 users, 20,000 pages, 400,000 views a
# day): a visit adds at most VISIT_PAGES * (VISIT_PAGES - 1) co-view pairs, and a user's
# recommendations score at most VISIT_PAGES * NEIGHBOURS candidates. Visits there hold about 7
# distinct pages; at 5 a day brings about 800,000 pair increments. With 10 neighbours, users held
# 1.7 recommendations of 3 on average by day 30 (the lists are the most popular pages, which most
# users have seen by then); with 20, 2.98.
VISIT_PAGES = 5
NEIGHBOURS = 20


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


def sql_text(name: str) -> str:
    """A statement file of sql/page_views/ (the pipeline's SQL lives there, beside police staging's)."""
    from steps.core.settings import PROJECT_ROOT

    return (PROJECT_ROOT / "sql" / "page_views" / name).read_text()


def sql_steps(name: str) -> list[tuple[str, str]]:
    """A statement file's statements, in order, each with the step (its `-- step:` header) the log
    times it under."""
    pieces = re.split(r"^-- step: (.+)$", sql_text(name), flags=re.MULTILINE)
    names, statements = pieces[1::2], pieces[2::2]
    return [(name.strip(), statement.strip()) for name, statement in zip(names, statements, strict=True)]


def ensure_tables(conn) -> None:
    """The pipeline's tables, created by load_day, which comes first in every run."""
    conn.execute(sql_text("tables.sql"))
    conn.commit()


def _view_schema():
    import pyarrow as pa

    return pa.schema([("ts", pa.timestamp("us", tz="UTC")), ("url", pa.string()),
                      ("environment", pa.string()), ("user_id", pa.int64())])  # fmt: skip


def read_page_views(key: str, data: bytes):
    """An Arrow table (ts, url, environment, user_id) of a JSON-lines file. Arrow's columnar reader
    takes a well-formed file; a file it refuses, or with a field missing, is parsed again line by
    line (`parse_page_views`), which names the bad line, or gives the rows where Arrow was only
    stricter than the log format (a number where a text was expected, say)."""
    import pyarrow as pa
    import pyarrow.json as pj

    from steps.core.files import utf8_text

    text = utf8_text(data, key, BadLogError)  # Arrow would take some bytes that are not UTF-8
    schema = _view_schema()
    try:
        table = pj.read_json(
            io.BytesIO(data),
            read_options=pj.ReadOptions(block_size=1 << 24),
            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
        if not any(column.null_count for column in table.columns):
            return table
    except pa.ArrowInvalid:
        pass
    rows = parse_page_views(key, text)
    return pa.Table.from_pylist([dict(zip(schema.names, row, strict=True)) for row in rows], schema=schema)


def read_log(s3, bucket: str, key: str) -> bytes:
    return s3.get_key(key, bucket_name=bucket).get()["Body"].read()


def load_day(conn, s3, bucket: str, day: dt.date) -> dict:
    """Add a day's log rows to the event tables, and the new production rows to the delta, in one
    transaction. `s3` lists and reads keys (S3Hook-like: list_keys(bucket_name, prefix),
    get_key(key, bucket_name))."""
    from steps.core.files import utf8_text
    from steps.core.warehouse import copy_batches

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
        data = read_log(s3, bucket, key)
        if key.startswith(USER_UPDATES_PREFIX):
            updates += parse_user_updates(key, utf8_text(data, key, BadLogError))
        else:
            views.append(read_page_views(key, data))
    params = {"env": PRODUCTION}
    seconds: dict[str, float] = {}
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE incoming_views (ts timestamptz, url text, environment text, "
                    "user_id bigint) ON COMMIT DROP")  # fmt: skip
        view_rows = copy_batches(cur, "incoming_views", "ts, url, environment, user_id",
                                 (b for t in views for b in t.to_batches()), f"{views_prefix}*")  # fmt: skip
        cur.execute("ANALYZE incoming_views")
        new_views = run_steps(cur, "add_views.sql", params, seconds)["delta"]
        cur.execute("CREATE TEMP TABLE incoming_updates (updated_at timestamptz, user_id bigint, email text, "
                    "name text, environment text) ON COMMIT DROP")  # fmt: skip
        with cur.copy("COPY incoming_updates FROM STDIN") as copy:
            for row in updates:
                copy.write_row(row)
        new_updates = run_steps(cur, "add_updates.sql", params, seconds)["updates"]
        cur.execute(
            "INSERT INTO page_views_loaded_days (day, keys, page_views, user_updates) "
            "VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (day) DO UPDATE SET keys = EXCLUDED.keys, page_views = EXCLUDED.page_views, "
            "user_updates = EXCLUDED.user_updates, loaded_at = now()",
            (day, json.dumps(keys), view_rows, len(updates)),
        )
    conn.commit()
    log.info("load_day %s: %d page views and %d user updates from %d keys; new production rows: %d views, "
             "%d updates (%s)", day, view_rows, len(updates), len(keys), new_views, new_updates,
             took(seconds))  # fmt: skip
    return {"day": str(day), "keys": len(keys), "page_views": view_rows, "user_updates": len(updates),
            "new_production_views": new_views, "new_production_updates": new_updates}  # fmt: skip


# A statement that fills a temporary table, which run_steps analyses (apply_delta.sql says why).
FILLED_TEMP_TABLE = re.compile(r"CREATE TEMP TABLE (\w+) ON COMMIT DROP AS")


def run_steps(cur, name: str, params: dict, seconds: dict[str, float]) -> dict[str, int]:
    """Run a statement file's steps in order; each step's seconds are added to `seconds`, and the
    rows its last statement touched are returned by step."""
    import time

    rows = {}
    for step, statement in sql_steps(name):
        started = time.monotonic()
        rows[step] = cur.execute(statement, params if "%(" in statement else None).rowcount
        if filled := FILLED_TEMP_TABLE.search(statement):
            cur.execute(f"ANALYZE {filled[1]}")
        seconds[step] = seconds.get(step, 0.0) + time.monotonic() - started
    return rows


def took(seconds: dict[str, float]) -> str:
    return ", ".join(f"{step} {s:.1f}s" for step, s in seconds.items())


def build_tables(conn, day: dt.date) -> dict:
    """Apply what the loaded days added since the last build to `user_page_views` and
    `page_recommendations`, in one transaction; with nothing new it changes nothing."""
    params = {"sample": VISIT_PAGES, "neighbours": NEIGHBOURS, "top": RECOMMENDATIONS_PER_USER}
    seconds: dict[str, float] = {}
    with conn.cursor() as cur:
        rows = run_steps(cur, "apply_delta.sql", params, seconds)
        facts = cur.execute(
            "SELECT (SELECT count(*) FROM new_pages), (SELECT count(*) FROM co_view_change), "
            "(SELECT count(*) FROM users_to_rank), (SELECT count(*) FROM page_views_loaded_days)"
        ).fetchone()
    conn.commit()
    summary = dict(zip(("user_pages_new", "co_view_changes", "users_ranked", "days"), facts, strict=True))
    summary["recommendations_written"] = rows["page_recommendations"]
    log.info("build_tables for %s: %s (%s)", day, summary, took(seconds))
    return summary
