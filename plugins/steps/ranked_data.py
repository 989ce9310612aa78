"""The ranker (PIPELINES.md 4): learn from what users did, measure the model the way it is used,
and rank `candidates_inference` with it only when it beats the `als_score` order.

Measured as served. A model ranks *all* of a user's candidates and only the top 10 reach the user,
so it is judged on exactly that: every `candidates_inference` candidate of a user ranked, the top 10
scored against what that user did *later* (NDCG@10, precision@10, recall@10, averaged over the
users who did something later), beside the same figures for the `als_score` order.

Why a time split of the interactions (table `events`) and not cross-validation on
`candidates_train`: those rows (all of a user's positives plus about ten random negatives, with no
date) do not look like what is ranked (about a hundred candidates per user, a hit being rare). On
the real files a model fitted and cross-validated there looked better than `als_score` and ranked
the inference candidates three times worse (NDCG@10 0.065 against 0.190). The split, with `end` the
last interaction and W = `WINDOW_DAYS`:

    features from interactions before ...   labels: interacted in ...
    training     end - 2W                    [end - 2W, end - W), or `target` of candidates_train
    validation   end - W                     [end - W, end]
    ranking      end (all of them)           (what users will do next)

Training rows are every candidate of both tables; validation rows are the inference candidates.
The model that is validated is the model that ranks: it is not refitted after validation.

Features (per candidate, from the interactions before the feature time): the candidate's `als_score`
rank within its user (as a share of the user's candidates) and its log, the item's popularity
(users who interacted with it), the user's own past interactions with the item (weighted: view 1,
add to cart 3, transaction 5) and how long ago the last one was, and `available`. The model is
scikit-learn's histogram gradient boosting with monotone constraints (FEATURE_DIRECTIONS), so that
a score never rises with a worse ALS rank or fewer interactions; it trains in about a second on the
real data. On the real files: NDCG@10 0.29 against 0.16 for the als_score order (`make bench
ARGS=ranker` prints this and the other orders side by side).

The guard. This run's model ranks only if its validation NDCG@10 is above the `als_score` order's
and at least that of the last accepted model, re-scored on this run's validation. Otherwise the
last accepted model ranks if it beats `als_score` on this validation, and else the `als_score`
order itself does; the run's record (`ranker_models`), its output and its Telegram message say
which and why. Each run writes a report (PNG and one-page HTML) beside its model.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any

from steps.core.files import atomic_path, write_text_atomic
from steps.core.warehouse import Column, TableSpec, load_batches, read_frame
from steps.recsys import CANDIDATE_COLUMNS, CANDIDATES_INFERENCE, CANDIDATES_TRAIN, EVENTS

log = logging.getLogger(__name__)

# Each feature with the direction a higher value may move the score (monotone constraints): more
# past interactions or popularity never lower it, a worse ALS rank or an older interaction never
# raise it; `available` may go either way.
FEATURE_DIRECTIONS = {
    "als_rank_share": -1,
    "log_als_score": 1,
    "log_item_popularity": 1,
    "log_past_interactions": 1,
    "log_days_since_interaction": -1,
    "available": 0,
}
FEATURES = list(FEATURE_DIRECTIONS)
NEVER_DAYS = 365  # the age given to an interaction that never happened
EVENT_WEIGHTS = {"view": 1, "addtocart": 3, "transaction": 5}
WINDOW_DAYS = 14
K = 10
SEED = 42
ALS_ORDER = "als_score order"

RANKED = TableSpec(
    "candidates_ranked",
    (
        *CANDIDATE_COLUMNS,
        Column("score", "double precision", nullable=False),
        Column("rank", "bigint", nullable=False),
        # The run whose model ranked; NULL when the candidates are in their als_score order.
        Column("model_run_id", "text"),
        Column("ranked_run_id", "text", nullable=False),
    ),
    key=("rec_id",),
)
METRIC_NAMES = ("ndcg_at_10", "precision_at_10", "recall_at_10")
MODELS_TABLE = "ranker_models"
MODEL_COLUMNS = {
    "run_id": "text PRIMARY KEY",
    "logical_date": "timestamptz NOT NULL",
    "trained_at": "timestamptz NOT NULL",
    "model_path": "text NOT NULL",
    "report_path": "text",
    "train_rows": "bigint NOT NULL",
    "train_users": "bigint NOT NULL",
    "positives": "bigint NOT NULL",
    "train_seconds": "double precision NOT NULL",
    "validation_since": "timestamptz",
    "validation_users": "bigint",
    **{name: "double precision" for name in METRIC_NAMES},
    **{f"baseline_{name}": "double precision" for name in METRIC_NAMES},
    "previous_model_ndcg_at_10": "double precision",
    "accepted": "boolean NOT NULL",
    "ranks_with": "text",  # the run whose model ranks this run's candidates; NULL: the als_score order
    "note": "text NOT NULL",
}


def ensure_models_table(conn) -> None:
    """Creates `ranker_models`, and adds the columns an older version of it lacks."""
    columns = ",\n  ".join(f"{name} {kind}" for name, kind in MODEL_COLUMNS.items())
    conn.execute(f"CREATE TABLE IF NOT EXISTS {MODELS_TABLE} (\n  {columns}\n)")
    for name, kind in MODEL_COLUMNS.items():
        if "PRIMARY KEY" not in kind:
            loose = kind.replace(" NOT NULL", "")  # rows of an older version have no value
            conn.execute(f"ALTER TABLE {MODELS_TABLE} ADD COLUMN IF NOT EXISTS {name} {loose}")
    conn.commit()


# --- features and labels -----------------------------------------------------------------------


def features(candidates, events, before_ms: int):
    """`candidates` with the model's features, from the interactions before `before_ms`."""
    import numpy as np

    past = events[events["timestamp"] < before_ms]
    weighted = past.assign(weight=past["event"].map(EVENT_WEIGHTS).fillna(1))
    user_item = weighted.groupby(["user_id", "item_id"]).agg(
        past_interactions=("weight", "sum"), last_interaction=("timestamp", "max")
    )
    popularity = past.groupby("item_id")["user_id"].nunique().rename("item_popularity")
    frame = candidates.join(user_item, on=["user_id", "item_id"]).join(popularity, on="item_id")
    frame = frame.fillna({"past_interactions": 0, "item_popularity": 0})
    days = (before_ms - frame["last_interaction"]) / (24 * 3600 * 1000)
    frame["days_since_interaction"] = days.fillna(NEVER_DAYS).clip(upper=NEVER_DAYS)
    frame = frame.drop(columns="last_interaction")
    by_user = frame.groupby("user_id")["als_score"]
    frame["als_rank_share"] = by_user.rank(ascending=False, method="first") / by_user.transform("size")
    frame["log_als_score"] = np.log10(frame["als_score"].clip(lower=1e-30))
    frame["log_item_popularity"] = np.log1p(frame["item_popularity"])
    frame["log_past_interactions"] = np.log1p(frame["past_interactions"])
    frame["log_days_since_interaction"] = np.log1p(frame["days_since_interaction"])
    return frame


def interacted(candidates, events, since_ms: int, until_ms: int | None = None):
    """1 where the candidate's user interacted with its item in [since_ms, until_ms), else 0."""
    window = events[events["timestamp"] >= since_ms]
    if until_ms is not None:
        window = window[window["timestamp"] < until_ms]
    pairs = set(zip(window["user_id"], window["item_id"], strict=True))
    return [int(pair in pairs) for pair in zip(candidates["user_id"], candidates["item_id"], strict=True)]


def time_split(train_candidates, inference_candidates, events, window_days: int = WINDOW_DAYS):
    """(training rows, validation rows, validation start in ms): see the module docstring."""
    import numpy as np
    import pandas as pd

    if events.empty:
        raise ValueError("events is empty: the ranker learns from the users' interactions")
    end = int(events["timestamp"].max())
    window = window_days * 24 * 3600 * 1000
    validation_since, training_since = end - window, end - 2 * window
    candidates = pd.concat([train_candidates, inference_candidates.assign(target=0)], ignore_index=True)
    # One row per (user, item): a pair in both tables keeps its training target.
    candidates = candidates.sort_values("target", ascending=False).drop_duplicates(["user_id", "item_id"])
    training = features(candidates.sort_values("rec_id"), events, training_since)
    later = interacted(training, events, training_since, validation_since)
    training["label"] = np.maximum(training["target"].to_numpy(), later)
    validation = features(inference_candidates, events, validation_since)
    validation["label"] = interacted(validation, events, validation_since)
    return training.reset_index(drop=True), validation, validation_since


# --- the model and its measure -----------------------------------------------------------------


def fit_model(training):
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.05, max_leaf_nodes=8, l2_regularization=1.0,
        monotonic_cst=[FEATURE_DIRECTIONS[name] for name in FEATURES], random_state=SEED,
    )  # fmt: skip
    return model.fit(training[FEATURES], training["label"])


def ranking_metrics(frame, score_column: str, k: int = K) -> dict[str, float | None]:
    """NDCG@k, precision@k and recall@k of ranking each user's rows by `score_column` (ties in
    `rec_id` order), averaged over the users with at least one `label`; and how many users that is."""
    import numpy as np

    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ndcg, precision, recall = [], [], []
    ordered = frame.sort_values(["user_id", score_column, "rec_id"], ascending=[True, False, True])
    for _, group in ordered.groupby("user_id", sort=False):
        labels = group["label"].to_numpy()
        hits = int(labels.sum())
        if hits == 0:
            continue
        top = labels[:k]
        ideal = np.sort(labels)[::-1][:k]
        ndcg.append(float((top * discounts[: len(top)]).sum() / (ideal * discounts[: len(ideal)]).sum()))
        precision.append(top.sum() / k)
        recall.append(top.sum() / hits)
    mean = (lambda values: float(np.mean(values)) if values else None)  # noqa: E731
    return {
        "ndcg_at_10": mean(ndcg),
        "precision_at_10": mean(precision),
        "recall_at_10": mean(recall),
        "users": len(ndcg),
    }


def judge(model: dict, als: dict, previous: dict | None) -> tuple[bool, str | None, str]:
    """(this run's model accepted, the run_id whose model ranks or None for the als_score order,
    why). `previous` is the last accepted model's record with its NDCG@10 on this validation."""
    new, baseline = model["ndcg_at_10"], als["ndcg_at_10"]
    if new is None or baseline is None:
        return False, None, "no validation user interacted later: ranked in the als_score order"
    versus = f"NDCG@10 {new:.3f} vs {baseline:.3f} for the {ALS_ORDER}"
    old = previous["ndcg_at_10"] if previous else None
    if new > baseline and (old is None or new >= old):
        against = f", {old:.3f} for the model of {previous['run_id']}" if old is not None else ""
        return True, model["run_id"], f"accepted: {versus}{against}"
    if old is not None and old > baseline:
        return False, previous["run_id"], (
            f"rejected: {versus}, {old:.3f} for the model of {previous['run_id']}, which keeps ranking"
        )
    return False, None, f"rejected: {versus}: ranked in the als_score order"


# --- the two steps -----------------------------------------------------------------------------


def read_table(conn, spec: TableSpec, columns: list[str], order_by: str = "rec_id"):
    listed = ", ".join(f'"{c}"' for c in columns)
    return read_frame(conn, f"SELECT {listed} FROM {spec.qualified} ORDER BY {order_by}")


def read_inputs(conn):
    """candidates_train, candidates_inference and events, as DataFrames."""
    candidate_columns = [c.name for c in CANDIDATE_COLUMNS]
    train = read_table(conn, CANDIDATES_TRAIN.spec, [*candidate_columns, "target"])
    inference = read_table(conn, CANDIDATES_INFERENCE.spec, candidate_columns)
    events = read_table(conn, EVENTS.spec, EVENTS.spec.column_names, order_by='"timestamp", user_id, item_id')
    if inference.empty:
        raise ValueError("candidates_inference is empty: nothing to rank")
    return train, inference, events


def train_ranker(
    conn, models_dir: Path, run_id: str, logical_date: dt.datetime, fit=fit_model
) -> dict[str, Any]:
    """Train (with `fit`: training rows -> fitted model) and validate this run's model, decide
    what ranks, record it and write the report."""
    ensure_models_table(conn)
    done = _model_record(conn, run_id)
    if done and Path(done["model_path"]).exists():
        log.info("train_ranker: already complete for %s (model %s)", run_id, done["model_path"])
        return done
    train, inference, events = read_inputs(conn)
    started = time.monotonic()
    training, validation, validation_since = time_split(train, inference, events)
    if training["label"].nunique() < 2:
        raise ValueError(
            f"{len(training)} training rows with {int(training['label'].sum())} positives: "
            "training needs rows of both classes (candidates_train's target or later interactions)"
        )
    model = fit(training)
    train_seconds = time.monotonic() - started
    validation["model_score"] = model.predict_proba(validation[FEATURES])[:, 1]
    metrics = {**ranking_metrics(validation, "model_score"), "run_id": run_id}
    baseline = ranking_metrics(validation, "als_score")
    previous = _rescored_previous(conn, logical_date, run_id, validation)
    accepted, ranks_with, note = judge(metrics, baseline, previous)
    stamp = logical_date.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    model_path = Path(models_dir) / f"ranker_{stamp}.joblib"
    _save_model(model, model_path, run_id)
    record = {
        "run_id": run_id,
        "logical_date": logical_date,
        "trained_at": dt.datetime.now(dt.UTC),
        "model_path": str(model_path),
        "report_path": str(model_path.with_suffix(".html")),
        "train_rows": len(training),
        "train_users": int(training["user_id"].nunique()),
        "positives": int(training["label"].sum()),
        "train_seconds": train_seconds,
        "validation_since": dt.datetime.fromtimestamp(validation_since / 1000, dt.UTC),
        "validation_users": metrics["users"],
        **{name: metrics[name] for name in METRIC_NAMES},
        **{f"baseline_{name}": baseline[name] for name in METRIC_NAMES},
        "previous_model_ndcg_at_10": previous["ndcg_at_10"] if previous else None,
        "accepted": accepted,
        "ranks_with": ranks_with,
        "note": note,
    }
    write_text_atomic(model_path.with_suffix(".metrics.json"), json.dumps(record, indent=2, default=str))
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {MODELS_TABLE} ({', '.join(record)}) VALUES ({', '.join(['%s'] * len(record))}) "
            "ON CONFLICT (run_id) DO NOTHING",
            list(record.values()),
        )
    conn.commit()
    from steps.ranker_report import write_report

    write_report(Path(record["report_path"]), record, _history(conn, logical_date), validation)
    log.info("train_ranker: %s; precision@10 %s vs %s, recall@10 %s vs %s, over %d users; trained in %.2fs",
             note, *(_round(v) for v in (metrics["precision_at_10"], baseline["precision_at_10"],
                                        metrics["recall_at_10"], baseline["recall_at_10"])),
             metrics["users"], train_seconds)  # fmt: skip
    return _model_record(conn, run_id)


def _rescored_previous(conn, logical_date: dt.datetime, run_id: str, validation) -> dict | None:
    """The last accepted model, with its NDCG@10 on this run's validation; None when there is
    none, or when it cannot be re-scored (its file gone, or trained on other features): a figure
    measured on other data would not be comparable."""
    import joblib

    previous = _last_accepted(conn, logical_date, exclude_run=run_id)
    if previous is None:
        return None
    try:
        saved = joblib.load(previous["model_path"])
    except (OSError, EOFError, ValueError) as err:
        log.warning("train_ranker: the model of %s cannot be re-scored (%s): not compared",
                    previous["run_id"], err)  # fmt: skip
        return None
    if saved.get("features") != FEATURES:
        log.warning("train_ranker: the model of %s uses other features: not compared", previous["run_id"])
        return None
    scored = validation.assign(model_score=saved["model"].predict_proba(validation[FEATURES])[:, 1])
    return {**previous, "ndcg_at_10": ranking_metrics(scored, "model_score")["ndcg_at_10"]}


def _save_model(model, path: Path, run_id: str) -> None:
    import joblib
    import sklearn

    with atomic_path(path) as tmp:
        joblib.dump(
            {"model": model, "features": FEATURES, "run_id": run_id, "sklearn": sklearn.__version__}, tmp
        )


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


def _history(conn, logical_date: dt.datetime) -> list[dict]:
    """Every recorded run up to this one, oldest first: the report's metric history."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT run_id, logical_date, ndcg_at_10, baseline_ndcg_at_10, accepted, ranks_with "
            f"FROM {MODELS_TABLE} WHERE logical_date <= %s ORDER BY logical_date, trained_at",
            (logical_date,),
        )
        return [dict(zip([d.name for d in cur.description], row, strict=True)) for row in cur.fetchall()]


def rank_candidates(conn, run_id: str, logical_date: dt.datetime) -> dict[str, Any]:
    """Rank candidates_inference as this run's record says (a model, or the als_score order) and
    replace candidates_ranked with it in one transaction."""
    import joblib
    import pyarrow as pa

    conn.execute(RANKED.create_sql())
    # An older version's table required a model; the als_score order has none.
    conn.execute(f"ALTER TABLE {RANKED.qualified} ALTER COLUMN model_run_id DROP NOT NULL")
    ensure_models_table(conn)
    record = _model_record(conn, run_id)
    if record is None:
        raise RuntimeError(f"no ranker record for run {run_id}: train_ranker must run first")
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {RANKED.qualified} WHERE ranked_run_id = %s", (run_id,))
        already = cur.fetchone()[0]
    if already:
        log.info("rank_candidates: already complete, %d rows ranked by run %s", already, run_id)
        return _rank_summary(conn, record)
    _, inference, events = read_inputs(conn)
    frame = features(inference, events, int(events["timestamp"].max()) + 1)  # every interaction
    if record["ranks_with"] is None:
        frame["score"] = frame["als_score"]
    else:
        model_path = record["model_path"] if record["ranks_with"] == run_id else _model_record(
            conn, record["ranks_with"])["model_path"]  # fmt: skip
        frame["score"] = joblib.load(model_path)["model"].predict_proba(frame[FEATURES])[:, 1]
    frame = frame.sort_values(["user_id", "score", "rec_id"], ascending=[True, False, True])
    frame["rank"] = frame.groupby("user_id").cumcount() + 1
    frame["model_run_id"] = record["ranks_with"]
    frame["ranked_run_id"] = run_id
    table = pa.Table.from_pandas(frame[RANKED.column_names], preserve_index=False)
    load_batches(conn, table.to_batches(), RANKED, mode="replace", source="candidates_inference scored")
    return _rank_summary(conn, record)


def _rank_summary(conn, record: dict) -> dict[str, Any]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*), count(DISTINCT user_id) FROM {RANKED.qualified}")
        rows, users = cur.fetchone()
    ranks_with = record["ranks_with"]
    return {
        "candidates_ranked": rows,
        "users": users,
        "ranked_by": f"the model of {ranks_with}" if ranks_with else ALS_ORDER,
        "this_run": record["note"],
        "validation_users": record["validation_users"],
        "metrics": {name: _round(record[name]) for name in METRIC_NAMES},
        "baseline_als_score": {name: _round(record[f"baseline_{name}"]) for name in METRIC_NAMES},
        "train_seconds": _round(record["train_seconds"]),
        "report": record["report_path"],
    }


def _round(value):
    return None if value is None else round(float(value), 4)
