"""The recommender's loads and ranker against a real Postgres, on the real files (when
../shared/data is there) and on generated ones."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import joblib
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sandbox.generate_recsys import FILES, REAL_SIZES, generate
from steps import ranked_data
from steps.core.warehouse import BadInputError
from steps.recsys import (
    CANDIDATES_INFERENCE,
    CANDIDATES_TRAIN,
    DEFAULT_RECS,
    EVENTS,
    ONLINE_RECS,
    load_recs_file,
)
from tests.conftest import shared_data
from tests.fingerprint import tables_fingerprint

KEYED = (DEFAULT_RECS, ONLINE_RECS, CANDIDATES_TRAIN, CANDIDATES_INFERENCE)
ALL = (*KEYED, EVENTS)
MONDAY = dt.datetime(2024, 6, 1, 21, 15, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recsys")
    generate(folder)
    return folder


def load_all(conn, folder: Path) -> dict[str, dict]:
    return {f.spec.name: load_recs_file(conn, folder, f) for f in ALL}


def versions(conn, table: str) -> list[tuple]:
    return conn.execute(f"SELECT rec_id, xmin::text FROM {table} ORDER BY rec_id").fetchall()


def test_real_files_load_with_their_row_counts_and_a_rerun_changes_nothing(warehouse):
    folder = shared_data("recsys")
    summaries = load_all(warehouse, folder)
    assert {t: s["rows_in_table"] for t, s in summaries.items()} == {
        "default_recs": 100, "online_recs": 2_776, "candidates_train": 3_561, "candidates_inference": 6_728,
        "events": 21_012,  # identical lines of the log included: the table is the file
    }  # fmt: skip
    # items_cnt of the published file lands in the original's items_selected column
    assert warehouse.execute("SELECT sum(items_selected) > 0 FROM default_recs").fetchone() == (True,)
    before = {f.spec.name: versions(warehouse, f.spec.name) for f in KEYED}
    events_before = tables_fingerprint(warehouse)["public.events"]
    again = load_all(warehouse, folder)
    assert {t: again[t]["rows_changed"] for t in before} == dict.fromkeys(before, 0)
    assert {f.spec.name: versions(warehouse, f.spec.name) for f in KEYED} == before
    # The log replaces its table: rewritten, with the same rows.
    assert tables_fingerprint(warehouse)["public.events"] == events_before


def test_generator_is_seeded_and_has_the_real_sizes(generated, tmp_path):
    assert {
        name: pq.read_metadata(generated / f"{name}.parquet").num_rows for name in REAL_SIZES
    } == REAL_SIZES
    generate(tmp_path, seed=7)
    for name in FILES:
        assert pd.read_parquet(generated / name).equals(pd.read_parquet(tmp_path / name))
    train = pd.read_parquet(generated / "candidates_train.parquet")
    assert 0.01 < train["target"].mean() < 0.04
    events = pd.read_parquet(generated / "events.parquet")
    inference = pd.read_parquet(generated / "candidates_inference.parquet")
    # Interactions fall on the users' candidates, the inference users' included.
    both = pd.concat([train, inference])
    candidates = set(zip(both["user_id"], both["item_id"], strict=True))
    assert set(zip(events["user_id"], events["item_id"], strict=True)) <= candidates
    assert set(events["user_id"]) & set(inference["user_id"])


@pytest.mark.parametrize("source", ["generated", "real"])
def test_ranker_beats_the_als_score_order_on_later_interactions_and_ranks_every_candidate(
    warehouse, generated, tmp_path, source
):
    folder = generated if source == "generated" else shared_data("recsys")
    load_all(warehouse, folder)
    record = ranked_data.train_ranker(warehouse, tmp_path, "run_1", MONDAY)
    assert record["accepted"] and record["ranks_with"] == "run_1", record["note"]
    assert record["note"].startswith("accepted: NDCG@10")
    model_path = Path(record["model_path"])
    assert model_path.with_suffix(".metrics.json").exists()
    assert joblib.load(model_path)["features"] == ranked_data.FEATURES
    # Measured as served, on what the users did later: better on each measure than the als_score order.
    for name in ranked_data.METRIC_NAMES:
        assert record[name] > record[f"baseline_{name}"], name
    assert record["validation_users"] >= 20
    print(f"{source}: NDCG@10 {record['ndcg_at_10']:.3f} vs {record['baseline_ndcg_at_10']:.3f}, "
          f"trained in {record['train_seconds']:.1f}s")  # reported, never asserted  # fmt: skip

    summary = ranked_data.rank_candidates(warehouse, "run_1", MONDAY)
    assert summary["candidates_ranked"] == REAL_SIZES["candidates_inference"] == 6_728
    assert summary["ranked_by"] == "the model of run_1"
    ranked = pd.read_sql_query(
        "SELECT user_id, rec_id, score, rank, model_run_id FROM candidates_ranked", warehouse_uri_of(warehouse)
    )
    assert set(ranked["model_run_id"]) == {"run_1"}
    for _, group in ranked.groupby("user_id"):
        ordered = group.sort_values("rank")
        assert ordered["rank"].tolist() == list(range(1, len(group) + 1))
        assert ordered["score"].is_monotonic_decreasing
    check_report(record)


def check_report(record: dict) -> None:
    """The report lies beside the model: a PNG that is a picture, and a page that shows it."""
    from PIL import Image

    page = Path(record["report_path"])
    assert page.parent == Path(record["model_path"]).parent
    text = page.read_text()
    png = page.with_suffix(".png")
    assert f'src="{png.name}"' in text and record["note"] in text
    assert f"{record['ndcg_at_10']:.3f}" in text and f"{record['baseline_ndcg_at_10']:.3f}" in text
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 800


def warehouse_uri_of(conn) -> str:
    info = conn.info
    return f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"


def test_rerun_of_a_ranked_run_changes_no_row(warehouse, generated, tmp_path, caplog):
    load_all(warehouse, generated)
    ranked_data.train_ranker(warehouse, tmp_path, "run_1", MONDAY)
    ranked_data.rank_candidates(warehouse, "run_1", MONDAY)
    before = versions(warehouse, "candidates_ranked")
    caplog.set_level("INFO")
    ranked_data.train_ranker(warehouse, tmp_path, "run_1", MONDAY)
    ranked_data.rank_candidates(warehouse, "run_1", MONDAY)
    assert versions(warehouse, "candidates_ranked") == before
    assert "train_ranker: already complete" in caplog.text
    assert "rank_candidates: already complete" in caplog.text


def shuffled_labels(training):
    """A deliberately useless model: boosting fitted on the training rows with their labels
    shuffled (without the ranker's monotone constraints, which alone would order well)."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    labels = np.random.default_rng(3).permutation(training["label"].to_numpy())
    return HistGradientBoostingClassifier(random_state=3).fit(training[ranked_data.FEATURES], labels)


def test_a_useless_model_is_not_used_the_als_score_order_ranks(warehouse, generated, tmp_path):
    load_all(warehouse, generated)
    record = ranked_data.train_ranker(warehouse, tmp_path, "week_1", MONDAY, fit=shuffled_labels)
    assert record["ndcg_at_10"] < record["baseline_ndcg_at_10"]  # it is useless, as meant
    assert not record["accepted"] and record["ranks_with"] is None
    assert record["note"].startswith("rejected: NDCG@10") and "ranked in the als_score order" in record["note"]
    summary = ranked_data.rank_candidates(warehouse, "week_1", MONDAY)
    assert summary["ranked_by"] == "als_score order"
    ranked = pd.read_sql_query(
        "SELECT user_id, rec_id, als_score, score, rank, model_run_id FROM candidates_ranked",
        warehouse_uri_of(warehouse),
    )
    assert ranked["model_run_id"].isna().all()
    expected = ranked.sort_values(["user_id", "als_score", "rec_id"], ascending=[True, False, True])
    assert expected.groupby("user_id")["rank"].apply(list).tolist() == [
        list(range(1, n + 1)) for n in expected.groupby("user_id").size()
    ]
    check_report(record)


def test_a_worse_model_is_recorded_but_the_previous_one_keeps_ranking(warehouse, generated, tmp_path):
    load_all(warehouse, generated)
    first = ranked_data.train_ranker(warehouse, tmp_path, "week_1", MONDAY)
    second = ranked_data.train_ranker(
        warehouse, tmp_path, "week_2", MONDAY + dt.timedelta(days=7), fit=shuffled_labels
    )
    assert not second["accepted"] and second["ranks_with"] == "week_1"
    # The last accepted model was re-scored on this run's validation (the same data: its figure).
    assert second["previous_model_ndcg_at_10"] == pytest.approx(first["ndcg_at_10"])
    assert second["note"].startswith("rejected: NDCG@10") and "week_1, which keeps ranking" in second["note"]
    summary = ranked_data.rank_candidates(warehouse, "week_2", MONDAY + dt.timedelta(days=7))
    assert summary["ranked_by"] == "the model of week_1"
    assert first["model_path"] != second["model_path"] and Path(second["model_path"]).exists()
    used = warehouse.execute("SELECT DISTINCT model_run_id, ranked_run_id FROM candidates_ranked").fetchall()
    assert used == [("week_1", "week_2")]


def rewrite(folder: Path, name: str, change) -> Path:
    table = pq.read_table(folder / name).to_pandas()
    pq.write_table(pa.Table.from_pandas(change(table), preserve_index=False), folder / name)
    return folder / name


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t.drop(columns=["als_score"]), r"missing column\(s\) als_score"),
        (lambda t: t.assign(als_score=t["als_score"].astype(str)), r"column als_score has type string"),
        (
            lambda t: t.assign(rec_id=t["rec_id"].where(t.index != 5, t["rec_id"][0])),
            r"duplicate key rec_id=\d+ in rows 1, 6 \(2 rows\)",  # rows as the file counts them
        ),
        (lambda t: t.iloc[0:0], r"no data rows"),
    ],
    ids=["missing_column", "string_in_als_score", "duplicate_rec_id", "empty_file"],
)
def test_bad_candidates_file_fails_and_keeps_the_table(warehouse, generated, tmp_path, change, expected):
    load_recs_file(warehouse, generated, CANDIDATES_TRAIN)
    before = versions(warehouse, "candidates_train")
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(generated / CANDIDATES_TRAIN.file_name, bad)
    path = rewrite(bad, CANDIDATES_TRAIN.file_name, change)
    with pytest.raises(BadInputError, match=expected) as error:
        load_recs_file(warehouse, bad, CANDIDATES_TRAIN)
    assert str(path) in str(error.value)
    assert versions(warehouse, "candidates_train") == before


def test_ranking_metrics_known_answer():
    # User 1: 4 candidates, hits at score ranks 2 and 4; user 2 has no later interaction (left out);
    # user 3: a tie in score, broken by rec_id, puts its hit first.
    frame = pd.DataFrame({
        "user_id": [1, 1, 1, 1, 2, 2, 3, 3],
        "rec_id": [10, 11, 12, 13, 20, 21, 30, 31],
        "score": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.3],
        "label": [0, 1, 0, 1, 0, 0, 1, 0],
    })  # fmt: skip
    metrics = ranked_data.ranking_metrics(frame, "score", k=10)
    import math

    user_1 = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert metrics["ndcg_at_10"] == pytest.approx((user_1 + 1.0) / 2)
    assert metrics["precision_at_10"] == pytest.approx((2 / 10 + 1 / 10) / 2)
    assert metrics["recall_at_10"] == pytest.approx(1.0)
    assert metrics["users"] == 2
    assert ranked_data.ranking_metrics(frame.assign(label=0), "score")["ndcg_at_10"] is None


@pytest.mark.parametrize(
    ("model", "als", "previous", "expected"),
    [
        (0.30, 0.20, None, (True, "this", "accepted: NDCG@10 0.300 vs 0.200 for the als_score order")),
        (0.30, 0.20, 0.25, (True, "this", "accepted: NDCG@10 0.300 vs 0.200 for the als_score order, "
                                          "0.250 for the model of last")),
        (0.30, 0.20, 0.35, (False, "last", "rejected: NDCG@10 0.300 vs 0.200 for the als_score order, "
                                           "0.350 for the model of last, which keeps ranking")),
        (0.20, 0.20, None, (False, None, "rejected: NDCG@10 0.200 vs 0.200 for the als_score order: "
                                         "ranked in the als_score order")),
        (0.10, 0.20, 0.15, (False, None, "rejected: NDCG@10 0.100 vs 0.200 for the als_score order: "
                                         "ranked in the als_score order")),
        (None, None, None, (False, None, "no validation user interacted later: ranked in the als_score order")),
    ],
    ids=["first", "beats_both", "loses_to_last", "ties_als", "loses_to_both", "no_validation"],
)
def test_guard_uses_a_model_only_when_it_beats_the_als_score_order_and_the_last_model(
    model, als, previous, expected
):
    last = None if previous is None else {"run_id": "last", "ndcg_at_10": previous}
    verdict = ranked_data.judge({"run_id": "this", "ndcg_at_10": model}, {"ndcg_at_10": als}, last)
    assert verdict == expected


def test_time_split_learns_from_the_past_and_is_judged_on_what_came_later():
    day = 24 * 3600 * 1000
    end = 100 * day
    events = pd.DataFrame({
        "timestamp": [end - 40 * day, end - 20 * day, end - 5 * day, end],
        "user_id": [1, 1, 2, 1],
        "item_id": [7, 8, 7, 9],
        "event": ["view", "transaction", "addtocart", "view"],
    })  # fmt: skip
    columns = {"als_score": [0.5, 0.1, 0.2, 0.3], "category_id": 1, "parent_id": 1, "available": 1}
    inference = pd.DataFrame({"rec_id": [1, 2, 3, 4], "user_id": [1, 1, 1, 2], "item_id": [7, 8, 9, 7], **columns})
    train = pd.DataFrame({"rec_id": [5], "user_id": [3], "item_id": [7], "target": [1], **{
        k: v[:1] if isinstance(v, list) else v for k, v in columns.items()}})  # fmt: skip
    training, validation, since = ranked_data.time_split(train, inference, events, window_days=14)
    assert since == end - 14 * day
    # Training: features before end-28d (only the view of item 7), labels in [end-28d, end-14d).
    by_pair = training.set_index(["user_id", "item_id"])
    assert by_pair.loc[(1, 8), "label"] == 1 and by_pair.loc[(1, 7), "label"] == 0
    assert by_pair.loc[(3, 7), "label"] == 1  # candidates_train's target
    assert by_pair.loc[(1, 7), "past_interactions"] == 1 and by_pair.loc[(1, 8), "past_interactions"] == 0
    # Validation: the inference candidates, features before end-14d (the transaction weighs 5).
    assert validation["rec_id"].tolist() == [1, 2, 3, 4]
    assert validation["label"].tolist() == [0, 0, 1, 1]
    assert validation["past_interactions"].tolist() == [1, 5, 0, 0]
    assert validation["days_since_interaction"].tolist() == [26, 6, ranked_data.NEVER_DAYS, ranked_data.NEVER_DAYS]
    assert validation["item_popularity"].tolist() == [1, 1, 0, 1]
    assert validation["als_rank_share"].tolist() == [1 / 3, 1.0, 2 / 3, 1.0]


def test_a_deployment_with_the_previous_ranker_table_moves_on(warehouse, generated, tmp_path):
    """ranker_models and candidates_ranked as the ranker before the serving-like validation made
    them: the new columns are added, and the old model (other features, cross-validated on other
    rows) is not compared with: its figure was measured on something else."""
    warehouse.execute("""
        CREATE TABLE ranker_models (
            run_id text PRIMARY KEY, logical_date timestamptz NOT NULL, trained_at timestamptz NOT NULL,
            model_path text NOT NULL, train_rows bigint NOT NULL, train_users bigint NOT NULL,
            positives bigint NOT NULL, train_seconds double precision NOT NULL, roc_auc double precision,
            precision_at_10 double precision, ndcg_at_10 double precision,
            baseline_roc_auc double precision, baseline_precision_at_10 double precision,
            baseline_ndcg_at_10 double precision, accepted boolean NOT NULL, note text NOT NULL)""")
    old_model = tmp_path / "old.joblib"
    joblib.dump({"model": None, "features": ["als_score", "available", "category_id", "parent_id"]}, old_model)
    warehouse.execute(
        "INSERT INTO ranker_models VALUES ('old', %s, now(), %s, 3561, 355, 57, 1.0, 0.8, 0.1, 0.99, 0.5, 0.05, "
        "0.5, true, 'accepted: first model')", (MONDAY - dt.timedelta(days=7), str(old_model))
    )  # fmt: skip
    old_ranked = ranked_data.RANKED.create_sql().replace('"model_run_id" text', '"model_run_id" text NOT NULL')
    assert old_ranked != ranked_data.RANKED.create_sql()
    warehouse.execute(old_ranked)
    warehouse.commit()
    load_all(warehouse, generated)
    record = ranked_data.train_ranker(warehouse, tmp_path, "new", MONDAY)
    assert record["accepted"] and record["previous_model_ndcg_at_10"] is None
    assert "old" not in record["note"]
    summary = ranked_data.rank_candidates(warehouse, "new", MONDAY)
    assert summary["ranked_by"] == "the model of new"
    # The als_score order (no model) can be written now.
    assert warehouse.execute(
        "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'candidates_ranked' "
        "AND column_name = 'model_run_id'"
    ).fetchone() == ("YES",)  # fmt: skip
    old_row = warehouse.execute("SELECT ndcg_at_10, ranks_with FROM ranker_models WHERE run_id = 'old'").fetchone()
    assert old_row == (0.99, None)


def test_the_generator_runs_from_the_project_folder_as_the_readme_shows_it(tmp_path):
    """`python -m sandbox.generate_recsys ...` with no PYTHONPATH set: it uses the pipelines' code."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-m", "sandbox.generate_recsys", "--out", str(tmp_path), "--scale", "0.01"],
                            cwd=ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
