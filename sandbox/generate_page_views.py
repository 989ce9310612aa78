"""Generate realistic daily page-view and user-update logs, seeded, for any days and users:

    python -m sandbox.generate_page_views --out DIR --start 2026-11-01 --end 2026-11-03 \\
        [--users 200 --views 2000]          # or upload with --bucket B --endpoint-url URL

Per day: `UserUpdates/YYYY-MM-DD.csv` (no header, every field quoted: updated_at, user_id, email,
name, environment) and `PageViews/YYYY-MM-DD-a.jsonl` + `-b.jsonl` (JSON lines: ts, url,
environment, user_id). Users change their email now and then, sometimes twice a day; about 10 %
of the rows are from staging; each day's logs repeat the last hour of the day before and some of
their own lines (exact duplicates), as overlapping log shipping does.

By default the site has 65 named pages, equally popular. `--urls N` makes it a site of N pages whose
popularity follows Zipf's law (a few pages seen by most users, a long tail seen by few), the shape
at which a recommender that pairs users up explodes: the benchmark runs at 40,000 users, 20,000
pages and 400,000 views a day.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
from pathlib import Path

URLS = [f"/products/{i}" for i in range(60)] + ["/", "/cart", "/checkout", "/search", "/help"]
ZIPF_EXPONENT = 1.0  # the classic exponent of web page popularity


def _pages(urls: int | None) -> tuple[list[str], object]:
    """The site's pages and their popularity (None: all equal)."""
    import numpy as np

    if urls is None:
        return URLS, None
    weights = 1.0 / np.arange(1, urls + 1) ** ZIPF_EXPONENT
    return [f"/pages/{rank}" for rank in range(1, urls + 1)], weights / weights.sum()


def _views(day: dt.date, users: int, views: int, seed: int, urls: int | None = None
           ) -> tuple[list[float], list[str]]:  # fmt: skip
    """One day's page views: (seconds into the day, JSON line), in time order."""
    import numpy as np

    rng = np.random.default_rng([seed, day.toordinal()])
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    names, popularity = _pages(urls)

    def draw(size):
        if popularity is None:
            return rng.integers(0, len(names), size)
        return rng.choice(len(names), size, p=popularity)

    taste = draw((users, 4))  # each user prefers a few pages: co-views mean something
    user_ids = rng.integers(1, users + 1, views)
    liked = rng.random(views) < 0.7
    pages = np.where(liked, taste[user_ids - 1, rng.integers(0, 4, views)], draw(views))
    envs = np.where(rng.random(views) < 0.1, "staging", "production")
    offsets = np.sort(rng.random(views) * 86_400)
    lines = [
        json.dumps({"ts": (start + dt.timedelta(seconds=float(o))).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "url": names[p], "environment": e, "user_id": int(i)})
        for o, i, p, e in zip(offsets, user_ids, pages, envs, strict=True)
    ]  # fmt: skip
    return list(offsets), lines


def day_files(day: dt.date, users: int, views: int, seed: int, urls: int | None = None) -> dict[str, bytes]:
    import numpy as np

    rng = np.random.default_rng([seed, day.toordinal(), 1])
    _, lines = _views(day, users, views, seed, urls)
    previous_offsets, previous_lines = _views(day - dt.timedelta(days=1), users, views, seed, urls)
    late = [line for o, line in zip(previous_offsets, previous_lines, strict=True) if o >= 82_800]
    lines = late + lines + [lines[i] for i in rng.integers(0, len(lines), max(1, views // 100))]
    half = len(lines) // 2

    updates = io.StringIO()
    writer = csv.writer(updates, quoting=csv.QUOTE_ALL)
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    for user in rng.choice(np.arange(1, users + 1), size=max(1, users // 5), replace=False):
        for change in range(1 + int(rng.random() < 0.3)):  # sometimes twice the same day
            when = (start + dt.timedelta(seconds=float(rng.random() * 86_000 + change))).isoformat()
            env = "staging" if rng.random() < 0.1 else "production"
            writer.writerow(
                [when, int(user), f"user{user}+{day:%m%d}{change}@example.com", f"User {user}", env]
            )
    return {
        f"UserUpdates/{day:%Y-%m-%d}.csv": updates.getvalue().encode(),
        f"PageViews/{day:%Y-%m-%d}-a.jsonl": ("\n".join(lines[:half]) + "\n").encode(),
        f"PageViews/{day:%Y-%m-%d}-b.jsonl": ("\n".join(lines[half:]) + "\n").encode(),
    }


def generate(start: dt.date, end: dt.date, users: int = 200, views: int = 2_000, seed: int = 5,
             urls: int | None = None) -> dict[str, bytes]:  # fmt: skip
    files, day = {}, start
    while day <= end:
        files.update(day_files(day, users, views, seed, urls))
        day += dt.timedelta(days=1)
    return files


def write_folder(files: dict[str, bytes], out: Path) -> None:
    for key, data in files.items():
        path = Path(out) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def upload(files: dict[str, bytes], bucket: str, endpoint_url: str | None, key_id: str, secret: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint_url, aws_access_key_id=key_id, aws_secret_access_key=secret,
                      region_name="us-east-1")  # fmt: skip
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    for key, data in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--start", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--end", type=dt.date.fromisoformat)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--views", type=int, default=2_000, help="page views per day")
    parser.add_argument("--urls", type=int, help="a site of this many pages, popularity by Zipf's law "
                        "(default: 65 named pages, equally popular)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", type=Path, help="write the files under this folder")
    parser.add_argument("--bucket", help="or upload them to this S3 bucket")
    parser.add_argument("--endpoint-url", help="S3 endpoint (MinIO, a local server); default AWS")
    args = parser.parse_args()
    files = generate(args.start, args.end or args.start, args.users, args.views, args.seed, args.urls)
    if args.out:
        write_folder(files, args.out)
    if args.bucket:
        import os

        key_id, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
        upload(files, args.bucket, args.endpoint_url, key_id, secret)
    print(f"{len(files)} files for {args.start}..{args.end or args.start}")


if __name__ == "__main__":
    main()
