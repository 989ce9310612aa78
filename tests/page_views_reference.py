"""user_page_views and page_recommendations computed in pandas by the definitions in
`steps.page_views`' docstring, with none of its incremental machinery: the reference that the
tests and `bench page_views` compare the warehouse's tables with."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pandas as pd

from steps import page_views as steps


def frames_from_files(files: dict[str, bytes], days: set[dt.date] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The page views and user updates of the log files (of `days`, or all), as read from S3."""
    day_of = {key: dt.date.fromisoformat(key.split("/")[1][:10]) for key in files}
    chosen = [key for key in files if days is None or day_of[key] in days]
    views = pd.concat(
        [pd.read_json(io.BytesIO(files[key]), lines=True, dtype={"user_id": "int64"})
         for key in chosen if key.startswith("PageViews/")]
    )  # fmt: skip
    updates = pd.concat(
        [pd.read_csv(io.BytesIO(files[key]), header=None, names=["updated_at", "user_id", "email", "name", "environment"])
         for key in chosen if key.startswith("UserUpdates/")]
    )  # fmt: skip
    return views, updates


def page_hash(text: str) -> int:
    """page_views_hash (sql/page_views/tables.sql): the first 8 bytes of the md5, signed."""
    return int.from_bytes(hashlib.md5(text.encode()).digest()[:8], "big", signed=True)


def reference_tables(views: pd.DataFrame, updates: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(user_page_views, page_recommendations) of every user."""
    views = views.assign(ts=pd.to_datetime(views["ts"], utc=True)).drop_duplicates()
    views = views[views["environment"] == steps.PRODUCTION]
    updates = updates.assign(updated_at=pd.to_datetime(updates["updated_at"], utc=True)).drop_duplicates()
    updates = updates[updates["environment"] == steps.PRODUCTION].sort_values(
        ["user_id", "updated_at", "email"], ascending=[True, False, True]
    )
    emails = updates.drop_duplicates("user_id")[["user_id", "email"]]
    upv = (
        views.groupby(["user_id", "url"]).agg(count=("ts", "size"), last_viewed=("ts", "max")).reset_index()
        .merge(emails, on="user_id", how="left")
    )  # fmt: skip
    urls = pd.Series(upv["url"].unique())
    url_of = dict(zip([page_hash(u) for u in urls], urls, strict=True))
    page_of = {url: page for page, url in url_of.items()}
    seen = upv[["user_id", "url"]].assign(page_id=upv["url"].map(page_of))[["user_id", "page_id"]]
    # Each visit's (user's and UTC day's) sample: its pages of smallest hash of "user day page".
    visits = views.assign(day=views["ts"].dt.strftime("%Y-%m-%d"), page_id=views["url"].map(page_of))
    visits = visits[["user_id", "day", "page_id"]].drop_duplicates()
    visits["h"] = [page_hash(f"{u} {d} {p}") for u, d, p in zip(visits["user_id"], visits["day"], visits["page_id"],
                                                               strict=True)]  # fmt: skip
    sample = visits.sort_values(["user_id", "day", "h", "page_id"]).groupby(["user_id", "day"]).head(steps.VISIT_PAGES)
    pairs = sample.merge(sample, on=["user_id", "day"], suffixes=("", "_other"))
    pairs = pairs[pairs["page_id"] != pairs["page_id_other"]]
    co_views = pairs.groupby(["page_id", "page_id_other"]).size().rename("visits").reset_index()
    neighbours = co_views.sort_values(["page_id", "visits", "page_id_other"], ascending=[True, False, True])
    neighbours = neighbours.groupby("page_id").head(steps.NEIGHBOURS)[["page_id", "page_id_other"]]
    # Seeds: the sample of each user's latest visit.
    seeds = sample[sample["day"] == sample.groupby("user_id")["day"].transform("max")][["user_id", "page_id"]]
    scores = seeds.merge(neighbours, on="page_id").merge(
        seen.rename(columns={"page_id": "page_id_other"}).assign(mine=True), on=["user_id", "page_id_other"],
        how="left",
    )  # fmt: skip
    scores = scores[scores["mine"].isna()].groupby(["user_id", "page_id_other"]).size().rename("lists").reset_index()
    scores = scores.sort_values(["user_id", "lists", "page_id_other"], ascending=[True, False, True])
    scores["rank"] = scores.groupby("user_id").cumcount() + 1
    recs = scores[scores["rank"] <= steps.RECOMMENDATIONS_PER_USER].merge(emails, on="user_id", how="left")
    recs["recommended_url"] = recs["page_id_other"].map(url_of)
    return upv, recs[["user_id", "email", "recommended_url", "rank"]]


def table(conn, sql: str, params=None) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def assert_tables_equal(conn, want_upv: pd.DataFrame, want_recs: pd.DataFrame) -> None:
    """The warehouse's tables equal the reference's, whole."""
    key = ["user_id", "url"]
    got = table(conn, "SELECT user_id, url, count, last_viewed, email FROM user_page_views")
    got = got.sort_values(key).reset_index(drop=True)
    got["last_viewed"] = pd.to_datetime(got["last_viewed"], utc=True)
    want = want_upv[["user_id", "url", "count", "last_viewed", "email"]].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    got_recs = table(conn, "SELECT user_id, email, recommended_url, rank FROM page_recommendations")
    key = ["user_id", "rank"]
    pd.testing.assert_frame_equal(
        got_recs.sort_values(key).reset_index(drop=True), want_recs.sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )  # fmt: skip


def check_against_pandas(conn, files: dict[str, bytes], days: set[dt.date] | None = None) -> None:
    assert_tables_equal(conn, *reference_tables(*frames_from_files(files, days)))
