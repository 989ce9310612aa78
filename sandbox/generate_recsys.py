"""Generate the recommender's five input files, seeded, any size, with a learnable signal.

    python -m sandbox.generate_recsys --out postgres_data [--seed 7] [--scale 1.0]

By default the files have the sizes of the real ones (100 popular items, 2,776 similar pairs,
3,561 training and 6,728 inference candidates). Each user prefers a few parent categories (ALS
proposes many candidates from them) and some parent categories sell better than others; a
candidate's chance of being bought (`target`, about 2 %) grows with both, with availability and
with `als_score`, which carries only part of the signal, so a model using the category ids can
beat ranking by `als_score` alone. The interactions (`events`, 20 weeks of views, adds to cart and
transactions) fall on each user's candidates, more on popular items and on the ones ALS scores
high, and users come back to items they have interacted with: what they did before tells what they
do later, which is what the ranker learns from.
"""

from __future__ import annotations

import argparse
from pathlib import Path

REAL_SIZES = {
    "top_popular": 100, "similar": 2_776, "candidates_train": 3_561, "candidates_inference": 6_728,
    "events": 21_012,
}  # fmt: skip
EVENTS_START_MS, EVENTS_DAYS = 1_430_611_200_000, 137  # 2015-05-03, as the real log
EVENT_KINDS = {"view": 0.86, "addtocart": 0.08, "transaction": 0.06}
CANDIDATES_PER_USER = {"candidates_train": 10, "candidates_inference": 99}
FILES = tuple(f"{name}.parquet" for name in REAL_SIZES)


def generate(out_dir: Path, seed: int = 7, scale: float = 1.0) -> list[Path]:
    import numpy as np

    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {name: max(1, round(n * scale)) for name, n in REAL_SIZES.items()}
    n_items, n_categories, n_parents = 20_000, 1_650, 80
    item_ids = rng.choice(np.arange(500, 470_000), size=n_items, replace=False)
    category_parent = rng.integers(0, n_parents, n_categories)
    item_category = rng.zipf(1.3, n_items) % n_categories
    item_available = (rng.random(n_items) < 0.55).astype("int64")
    parent_popularity = rng.dirichlet(np.full(n_parents, 0.3))
    # Some parent categories sell better than others, whoever the user: the signal a model can
    # learn from the ids, and that als_score only partly reflects.
    parent_appeal = rng.normal(0, 1.6, n_parents)

    written = [
        _write(
            out_dir / "top_popular.parquet",
            _top_popular(rng, item_ids, min(sizes["top_popular"], n_items // 2)),
        ),
        _write(out_dir / "similar.parquet", _similar(rng, item_ids, sizes["similar"])),
    ]
    rec_id_start, candidates = 0, []
    for name in ("candidates_train", "candidates_inference"):
        frame = _candidates(
            rng, sizes[name], CANDIDATES_PER_USER[name], item_ids, item_category, category_parent,
            item_available, parent_popularity, parent_appeal, rec_id_start,
            with_target=name == "candidates_train",
        )  # fmt: skip
        rec_id_start += len(frame) + 100
        candidates.append(frame)
        written.append(_write(out_dir / f"{name}.parquet", frame))
    item_appeal = dict(zip(item_ids, rng.pareto(1.0, n_items) + 1, strict=True))
    written.append(_write(out_dir / "events.parquet", _events(rng, candidates, item_appeal, sizes["events"])))
    return written


def _events(rng, candidates, item_appeal, n):
    """`n` interactions of the candidates' users with their candidates, over EVENTS_DAYS."""
    import numpy as np
    import pandas as pd

    pairs = pd.concat([c[["user_id", "item_id", "als_score"]] for c in candidates], ignore_index=True)
    weight = pairs["item_id"].map(item_appeal).to_numpy() * (1 + 60 * pairs["als_score"].to_numpy())
    # Each user favours a few of their candidates, whatever the week: the repeat interactions.
    weight *= rng.pareto(1.5, len(pairs)) + 0.05
    users = pairs["user_id"].unique()
    activity = pd.Series(rng.lognormal(0, 1, len(users)), index=users)  # some users do far more
    per_user = pairs.groupby("user_id")["user_id"].transform("size").to_numpy()
    weight *= pairs["user_id"].map(activity).to_numpy() / per_user
    chosen = rng.choice(len(pairs), size=n, p=weight / weight.sum())
    day_ms = 24 * 3600 * 1000
    frame = pd.DataFrame({
        "timestamp": np.sort(EVENTS_START_MS + rng.integers(0, EVENTS_DAYS * day_ms, n)),
        "user_id": pairs["user_id"].to_numpy()[chosen],
        "item_id": pairs["item_id"].to_numpy()[chosen],
        "event": rng.choice(list(EVENT_KINDS), size=n, p=list(EVENT_KINDS.values())),
    })  # fmt: skip
    return frame


def _top_popular(rng, item_ids, n):
    import numpy as np
    import pandas as pd

    counts = np.sort(rng.zipf(1.8, n) + 5)[::-1]
    return pd.DataFrame({
        "id": np.arange(1, n + 1), "rec_id": np.arange(n), "item_id": rng.choice(item_ids, n, replace=False),
        "items_cnt": counts, "item_id_encoded": rng.choice(np.arange(10 * n), n, replace=False),
    })  # fmt: skip


def _similar(rng, item_ids, n):
    import numpy as np
    import pandas as pd

    return pd.DataFrame({
        "id": np.arange(1, n + 1), "rec_id": np.arange(1, n + 1),
        "itemid_1": np.sort(rng.choice(item_ids[:500], n)), "itemid_2": rng.choice(item_ids, n),
        "score": np.round(rng.uniform(0.5, 0.8, n), 6),
    })  # fmt: skip


def _candidates(rng, rows, per_user, item_ids, item_category, category_parent, item_available,
                parent_popularity, parent_appeal, rec_id_start, with_target):  # fmt: skip
    import numpy as np
    import pandas as pd

    n_users = max(1, rows // per_user)
    users = rng.choice(np.arange(1_800, 1_404_000), size=n_users, replace=False)
    user_of_row = np.sort(
        np.concatenate([np.repeat(np.arange(n_users), per_user), rng.integers(0, n_users, rows)])[:rows]
    )
    favorites = rng.choice(len(parent_popularity), size=(n_users, 3), p=parent_popularity)
    chosen = rng.integers(0, len(item_ids), rows)
    parents = category_parent[item_category[chosen]]
    liked = (parents[:, None] == favorites[user_of_row]).any(axis=1)
    # Half the candidates of a user come from their favourite parents, as ALS would propose.
    swap = rng.random(rows) < 0.5
    favourite_parent = favorites[user_of_row, rng.integers(0, 3, rows)]
    item_parent = category_parent[item_category]
    by_parent = np.argsort(item_parent, kind="stable")
    first = np.searchsorted(item_parent[by_parent], np.arange(len(parent_popularity)))
    count = np.bincount(item_parent, minlength=len(parent_popularity))
    rows_to_swap = np.flatnonzero(swap & ~liked & (count[favourite_parent] > 0))
    wanted = favourite_parent[rows_to_swap]
    offset = (rng.random(len(rows_to_swap)) * count[wanted]).astype(np.int64)
    chosen[rows_to_swap] = by_parent[first[wanted] + offset]
    parents = category_parent[item_category[chosen]]
    liked = (parents[:, None] == favorites[user_of_row]).any(axis=1)
    als = rng.beta(0.3, 30, rows) + liked * rng.beta(0.5, 40, rows)
    frame = pd.DataFrame({
        "id": np.arange(1, rows + 1),
        "rec_id": np.arange(rec_id_start, rec_id_start + rows),
        "user_id": users[user_of_row],
        "item_id": item_ids[chosen],
        "als_score": als,
        "category_id": item_category[chosen] + 5,
        "parent_id": parents + 14,
        "available": item_available[chosen],
    })  # fmt: skip
    if with_target:
        logit = -6.0 + 1.0 * liked + parent_appeal[parents] + 1.2 * frame["available"].to_numpy() + 8 * als
        frame.insert(5, "target", (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64"))
    return frame


def _write(path: Path, frame) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from steps.core.files import atomic_path

    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=Path("postgres_data"), help="folder to write (default postgres_data)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the real files' sizes (default 1.0)"
    )
    args = parser.parse_args()
    for path in generate(args.out, args.seed, args.scale):
        print(path)


if __name__ == "__main__":
    main()
