"""Ranking quality, measured the way rank_candidates measures it (steps/ranked_data.py): every
inference candidate of a user ranked, the top 10 scored against what the user did in the last
two weeks of the interactions, side by side for

- ours: the ranker as it runs (a time split of the interactions, logistic regression);
- the als_score order: the candidates as ALS ordered them (the baseline to beat);
- item popularity: the candidates ordered by how many users interacted with the item;
- before (#13): our previous model, gradient boosting on candidates_train's target alone;
- the original: CatBoost, 3000 iterations, on candidates_train's target (its four features,
  the two ids categorical), as the original project trained it.

    python -m bench ranker [--data FOLDER]   # default: ../shared/data/recsys, else generated files
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, print_table

ORIGINAL_FEATURES = ["als_score", "category_id", "parent_id", "available"]
ORIGINAL_IDS = ["category_id", "parent_id"]


def previous_model():
    """The ranker before #13: the two ids target-encoded, histogram gradient boosting."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import KFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import TargetEncoder

    folds = KFold(5, shuffle=True, random_state=42)
    encode = ColumnTransformer([
        ("ids", TargetEncoder(target_type="binary", cv=folds), ORIGINAL_IDS),
        ("numeric", "passthrough", ["als_score", "available"]),
    ])  # fmt: skip
    boost = HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.05, max_leaf_nodes=8, l2_regularization=1.0,
        class_weight="balanced", random_state=42,
    )  # fmt: skip
    return Pipeline([("encode", encode), ("boost", boost)])


def original_catboost():
    from catboost import CatBoostClassifier

    return CatBoostClassifier(iterations=3000, cat_features=ORIGINAL_IDS, random_seed=42, verbose=False,
                              allow_writing_files=False)  # no catboost_info/ in the working directory


def main() -> None:
    import pandas as pd

    from steps import ranked_data

    parser = argparse.ArgumentParser(
        prog="python -m bench ranker", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, help="a folder with the recommender's parquet files")
    args, _ = parser.parse_known_args()
    folder = args.data or ROOT.parent / "shared" / "data" / "recsys"
    if not (folder / "events.parquet").exists():
        from sandbox.generate_recsys import generate

        folder = Path(tempfile.mkdtemp(prefix="ranker-bench-"))
        generate(folder)
    train = pd.read_parquet(folder / "candidates_train.parquet")
    inference = pd.read_parquet(folder / "candidates_inference.parquet")
    events = pd.read_parquet(folder / "events.parquet", columns=["timestamp", "user_id", "item_id", "event"])
    training, validation, since = ranked_data.time_split(train, inference, events)

    def ours():
        model = ranked_data.fit_model(training)
        return model.predict_proba(validation[ranked_data.FEATURES])[:, 1]

    def on_candidates_train(make):
        def fit_and_score():
            model = make().fit(train[ORIGINAL_FEATURES], train["target"])
            return model.predict_proba(validation[ORIGINAL_FEATURES])[:, 1]

        return fit_and_score

    orders = {
        "ours (time split, monotone boosting)": ours,
        "als_score order (baseline)": lambda: validation["als_score"],
        "item popularity order": lambda: validation["item_popularity"],
        "before #13 (boosting on candidates_train)": on_candidates_train(previous_model),
    }
    try:
        import catboost  # noqa: F401

        orders["original (CatBoost 3000 it., candidates_train)"] = on_candidates_train(original_catboost)
    except ImportError:
        print("catboost is not installed (it is in requirements-dev.txt): the original's line is left out")
    rows = []
    for name, score in orders.items():
        started = time.perf_counter()
        scored = validation.assign(score=score())
        seconds = time.perf_counter() - started
        metrics = ranked_data.ranking_metrics(scored, "score")
        rows.append((name, metrics, seconds))
    baseline = next(m for n, m, _ in rows if "baseline" in n)
    print_table(
        f"Ranking {len(validation):,} inference candidates of {validation['user_id'].nunique()} users "
        f"({folder}), judged on the {rows[0][1]['users']} users who interacted from "
        f"{pd.Timestamp(since, unit='ms'):%Y-%m-%d %H:%M} on",
        ["order", "NDCG@10", "vs als_score", "precision@10", "recall@10", "fit+score s"],
        [
            [name, f"{m['ndcg_at_10']:.3f}", f"{m['ndcg_at_10'] / baseline['ndcg_at_10']:.2f}x",
             f"{m['precision_at_10']:.3f}", f"{m['recall_at_10']:.3f}", f"{seconds:.2f}"]
            for name, m, seconds in rows
        ],
    )  # fmt: skip
