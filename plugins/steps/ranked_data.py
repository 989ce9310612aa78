"""The ranker (PIPELINES.md 4): train a classifier on `candidates_train`, score
`candidates_inference`, and write `candidates_ranked` with `score` and a per-user `rank`.

The original trained CatBoost for 3000 iterations. Here: the two id columns target-encoded (with
cross-fitting, so a row never sees its own target) and a small histogram gradient-boosting model
with balanced class weights for the ~2 % positives. It trains in about a second on the real
data.

Quality is measured by 5-fold cross-validation grouped by user, so every user is held out once
and the metrics cover all of them: ROC AUC over the rows, precision@10 and NDCG@10 averaged over
the users that have at least one positive. The same metrics for `als_score` alone are the
baseline. A new model is used for ranking only when its NDCG@10 is at least the last accepted
model's; otherwise the run says so and ranks with the previous model.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any

from steps.core.files import atomic_path, write_text_atomic
from steps.core.warehouse import Column, TableSpec, load_batches
from steps.training_data import CANDIDATE_COLUMNS

log = logging.getLogger(__name__)

ID_FEATURES = ["category_id", "parent_id"]
NUMERIC_FEATURES = ["als_score", "available"]
FEATURES = NUMERIC_FEATURES + ID_FEATURES
K = 10
SEED = 42

RANKED = TableSpec(
    "candidates_ranked",
    (
        *CANDIDATE_COLUMNS,
        Column("score", "double precision", nullable=False),
        Column("rank", "bigint", nullable=False),
        Column("model_run_id", "text", nullable=False),
        Column("ranked_run_id", "text", nullable=False),
    ),
    key=("rec_id",),
)
MODELS_TABLE = "ranker_models"
MODELS_DDL = f"""
CREATE TABLE IF NOT EXISTS {MODELS_TABLE} (
    run_id text PRIMARY KEY,
    logical_date timestamptz NOT NULL,
    trained_at timestamptz NOT NULL,
    model_path text NOT NULL,
    train_rows bigint NOT NULL,
    train_users bigint NOT NULL,
    positives bigint NOT NULL,
    train_seconds double precision NOT NULL,
    roc_auc double precision,
    precision_at_10 double precision,
    ndcg_at_10 double precision,
    baseline_roc_auc double precision,
    baseline_precision_at_10 double precision,
    baseline_ndcg_at_10 double precision,
    accepted boolean NOT NULL,
    note text NOT NULL
)"""
METRIC_NAMES = ("roc_auc", "precision_at_10", "ndcg_at_10")


def build_model():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import KFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import TargetEncoder

    encode = ColumnTransformer(
        [
            (
                "ids",
                TargetEncoder(target_type="binary", cv=KFold(5, shuffle=True, random_state=SEED)),
                ID_FEATURES,
            ),
            ("numeric", "passthrough", NUMERIC_FEATURES),
        ]
    )
    boost = HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.05, max_leaf_nodes=8, l2_regularization=1.0,
        class_weight="balanced", random_state=SEED,
    )  # fmt: skip
    return Pipeline([("encode", encode), ("boost", boost)])


def ranking_metrics(frame, score_column: str, k: int = K) -> dict[str, float]:
    """ROC AUC over rows; precision@k and NDCG@k averaged over users with a positive."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    precision, ndcg = [], []
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    for _, group in frame.groupby("user_id", sort=False):
        targets = group["target"].to_numpy()
        if targets.sum() == 0:
            continue
        order = np.argsort(-group[score_column].to_numpy(), kind="stable")[:k]
        top = targets[order]
        ideal = np.sort(targets)[::-1][:k]
        precision.append(top.sum() / k)
        ndcg.append((top * discounts[: len(top)]).sum() / (ideal * discounts[: len(ideal)]).sum())
    has_both = frame["target"].nunique() == 2
    return {
        "roc_auc": float(roc_auc_score(frame["target"], frame[score_column])) if has_both else None,
        "precision_at_10": float(np.mean(precision)) if precision else None,
        "ndcg_at_10": float(np.mean(ndcg)) if ndcg else None,
    }


def cross_validated_scores(train):
    """Out-of-fold predicted probabilities, folds grouped by user."""
    import numpy as np
    from sklearn.model_selection import GroupKFold

    scores = np.zeros(len(train))
    folds = GroupKFold(n_splits=min(5, train["user_id"].nunique()), shuffle=True, random_state=SEED)
    for fit_rows, held_out in folds.split(train, groups=train["user_id"]):
        fitted = build_model().fit(train.iloc[fit_rows][FEATURES], train.iloc[fit_rows]["target"])
        scores[held_out] = fitted.predict_proba(train.iloc[held_out][FEATURES])[:, 1]
    return scores


def read_table(conn, spec: TableSpec, columns: list[str]):
    import pandas as pd

    listed = ", ".join(columns)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {listed} FROM {spec.qualified} ORDER BY rec_id")
        return pd.DataFrame(cur.fetchall(), columns=columns)


def train_ranker(conn, models_dir: Path, run_id: str, logical_date: dt.datetime) -> dict[str, Any]:
    """Train, evaluate and record this run's model; decide whether ranking will use it."""
    from steps.training_data import CANDIDATES_TRAIN

    conn.execute(MODELS_DDL)
    conn.commit()
    done = _model_record(conn, run_id)
    if done and Path(done["model_path"]).exists():
        log.info("train_ranker: already complete for %s (model %s)", run_id, done["model_path"])
        return done
    train = read_table(conn, CANDIDATES_TRAIN.spec, ["rec_id", "user_id", "target", *FEATURES])
    if train.empty or train["target"].nunique() < 2:
        raise ValueError(
            f"candidates_train has {len(train)} rows and {int(train['target'].sum()) if len(train) else 0} "
            "positives: training needs rows of both classes"
        )
    started = time.monotonic()
    train["model_score"] = cross_validated_scores(train)
    model = build_model().fit(train[FEATURES], train["target"])
    train_seconds = time.monotonic() - started
    metrics = ranking_metrics(train, "model_score")
    baseline = ranking_metrics(train, "als_score")
    previous = _last_accepted(conn, logical_date)
    accepted, note = _judge(metrics, previous)
    model_path = Path(models_dir) / f"ranker_{_file_stamp(logical_date)}.joblib"
    _save_model(model, model_path, run_id)
    record = {
        "run_id": run_id,
        "logical_date": logical_date,
        "trained_at": dt.datetime.now(dt.UTC),
        "model_path": str(model_path),
        "train_rows": len(train),
        "train_users": int(train["user_id"].nunique()),
        "positives": int(train["target"].sum()),
        "train_seconds": train_seconds,
        **metrics,
        **{f"baseline_{name}": value for name, value in baseline.items()},
        "accepted": accepted,
        "note": note,
    }
    write_text_atomic(model_path.with_suffix(".metrics.json"), json.dumps(record, indent=2, default=str))
    columns = list(record)
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {MODELS_TABLE} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
            "ON CONFLICT (run_id) DO NOTHING",
            [record[c] for c in columns],
        )
    conn.commit()
    log.info(
        "train_ranker: %s; model ROC AUC %.3f, NDCG@10 %.3f, precision@10 %.3f; als_score baseline "
        "ROC AUC %.3f, NDCG@10 %.3f; trained in %.1fs",
        note, metrics["roc_auc"], metrics["ndcg_at_10"], metrics["precision_at_10"],
        baseline["roc_auc"], baseline["ndcg_at_10"], train_seconds,
    )  # fmt: skip
    return _model_record(conn, run_id)


def _judge(metrics: dict, previous: dict | None) -> tuple[bool, str]:
    if previous is None:
        return True, "accepted: first model"
    new, old = metrics["ndcg_at_10"] or 0.0, previous["ndcg_at_10"] or 0.0
    if new >= old:
        return True, f"accepted: NDCG@10 {new:.3f} >= {old:.3f} of the model of {previous['run_id']}"
    return False, (
        f"rejected: NDCG@10 {new:.3f} < {old:.3f} of the model of {previous['run_id']}, which keeps ranking"
    )


def _save_model(model, path: Path, run_id: str) -> None:
    import joblib
    import sklearn

    with atomic_path(path) as tmp:
        joblib.dump(
            {"model": model, "features": FEATURES, "run_id": run_id, "sklearn": sklearn.__version__}, tmp
        )


def _file_stamp(logical_date: dt.datetime) -> str:
    return logical_date.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _model_record(conn, run_id: str) -> dict | None:
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {MODELS_TABLE} WHERE run_id = %s", (run_id,))
        row = cur.fetchone()
        return None if row is None else dict(zip([d.name for d in cur.description], row, strict=True))


def _last_accepted(conn, logical_date: dt.datetime, exclude_run: str | None = None) -> dict | None:
    """The newest accepted model by logical date, up to this run's date (backfills included)."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT * FROM {MODELS_TABLE} WHERE accepted AND logical_date <= %s AND run_id <> %s "
            "ORDER BY logical_date DESC, trained_at DESC LIMIT 1",
            (logical_date, exclude_run or ""),
        )
        row = cur.fetchone()
        return None if row is None else dict(zip([d.name for d in cur.description], row, strict=True))


def rank_candidates(conn, run_id: str, logical_date: dt.datetime) -> dict[str, Any]:
    """Score candidates_inference with the model this run settled on; replace candidates_ranked."""
    import joblib
    import pyarrow as pa

    from steps.inference_data import CANDIDATES_INFERENCE

    conn.execute(RANKED.create_sql())
    conn.commit()
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {RANKED.qualified} WHERE ranked_run_id = %s", (run_id,))
        already = cur.fetchone()[0]
    chosen = _last_accepted(conn, logical_date)
    if chosen is None:
        raise RuntimeError("no accepted ranker model: train_ranker must run first")
    if already:
        log.info("rank_candidates: already complete, %d rows ranked by run %s", already, run_id)
        return _rank_summary(conn, run_id, chosen)
    frame = read_table(conn, CANDIDATES_INFERENCE.spec, [c.name for c in CANDIDATE_COLUMNS])
    if frame.empty:
        raise ValueError("candidates_inference is empty: nothing to rank")
    model = joblib.load(chosen["model_path"])["model"]
    frame["score"] = model.predict_proba(frame[FEATURES])[:, 1]
    frame = frame.sort_values(["user_id", "score", "rec_id"], ascending=[True, False, True])
    frame["rank"] = frame.groupby("user_id").cumcount() + 1
    frame["model_run_id"] = chosen["run_id"]
    frame["ranked_run_id"] = run_id
    table = pa.Table.from_pandas(frame[RANKED.column_names], preserve_index=False)
    load_batches(conn, table.to_batches(), RANKED, mode="replace", source="candidates_inference scored")
    return _rank_summary(conn, run_id, chosen)


def _rank_summary(conn, run_id: str, chosen: dict) -> dict[str, Any]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*), count(DISTINCT user_id) FROM {RANKED.qualified}")
        rows, users = cur.fetchone()
    this_run = _model_record(conn, run_id) or {}
    return {
        "candidates_ranked": rows,
        "users": users,
        "ranked_with_model_of": chosen["run_id"],
        "this_run": this_run.get("note", ""),
        "metrics": {name: _round(this_run.get(name)) for name in METRIC_NAMES},
        "baseline_als_score": {name: _round(this_run.get(f"baseline_{name}")) for name in METRIC_NAMES},
        "train_seconds": _round(this_run.get("train_seconds")),
    }


def _round(value):
    return None if value is None else round(float(value), 4)
