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


def reference_tables(views: pd.DataFrame, updates: pd.DataFrame, users=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(user_page_views, page_recommendations) of every user, or the recommendations of `users`
    alone (the co-view counts still come from every user's sample, as they must)."""
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
    # Each user's sample: the pages with the smallest md5 of "user url".
    seen = views[["user_id", "url"]].drop_duplicates()
    seen["h"] = [hashlib.md5(f"{u} {url}".encode()).hexdigest() for u, url in zip(seen["user_id"], seen["url"], strict=True)]
    sample = seen.sort_values(["user_id", "h", "url"]).groupby("user_id").head(steps.SAMPLE_PAGES)
    wanted = sample if users is None else sample[sample["user_id"].isin(users)]
    # Co-view counts of the pages in the wanted samples, over every user's sample.
    pairs = sample[sample["url"].isin(wanted["url"].unique())].merge(sample, on="user_id", suffixes=("", "_other"))
    pairs = pairs[pairs["url"] != pairs["url_other"]]
    co_views = pairs.groupby(["url", "url_other"]).size().rename("users").reset_index()
    neighbours = co_views.sort_values(["url", "users", "url_other"], ascending=[True, False, True])
    neighbours = neighbours.groupby("url").head(steps.NEIGHBOURS)[["url", "url_other"]]
    scores = wanted.merge(neighbours, on="url").merge(
        seen.rename(columns={"url": "url_other"}).assign(mine=True)[["user_id", "url_other", "mine"]],
        on=["user_id", "url_other"], how="left",
    )  # fmt: skip
    scores = scores[scores["mine"].isna()].groupby(["user_id", "url_other"]).size().rename("lists").reset_index()
    scores = scores.sort_values(["user_id", "lists", "url_other"], ascending=[True, False, True])
    scores["rank"] = scores.groupby("user_id").cumcount() + 1
    recs = scores[scores["rank"] <= steps.RECOMMENDATIONS_PER_USER].merge(emails, on="user_id", how="left")
    return upv, recs.rename(columns={"url_other": "recommended_url"})[["user_id", "email", "recommended_url", "rank"]]


def table(conn, sql: str, params=None) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def assert_tables_equal(conn, want_upv: pd.DataFrame | None, want_recs: pd.DataFrame, users=None) -> None:
    """The warehouse's tables equal the reference's, whole (or the recommendations of `users`)."""
    if want_upv is not None:
        key = ["user_id", "url"]
        got = table(conn, "SELECT user_id, url, count, last_viewed, email FROM user_page_views")
        got = got.sort_values(key).reset_index(drop=True)
        got["last_viewed"] = pd.to_datetime(got["last_viewed"], utc=True)
        want = want_upv[["user_id", "url", "count", "last_viewed", "email"]].sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
    sql = "SELECT user_id, email, recommended_url, rank FROM page_recommendations"
    got_recs = table(conn, sql) if users is None else table(conn, sql + " WHERE user_id = ANY(%s)", (list(users),))
    key = ["user_id", "rank"]
    pd.testing.assert_frame_equal(
        got_recs.sort_values(key).reset_index(drop=True), want_recs.sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )  # fmt: skip


def check_against_pandas(conn, files: dict[str, bytes], days: set[dt.date] | None = None) -> None:
    assert_tables_equal(conn, *reference_tables(*frames_from_files(files, days)))
