"""The recommender's loads and ranker against a real Postgres, on the real files (when
../shared/data is there) and on generated ones."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sandbox.generate_recsys import FILES, REAL_SIZES, generate
from steps import ranked_data
from steps.core.warehouse import BadInputError
from steps.default_recs import DEFAULT_RECS
from steps.inference_data import CANDIDATES_INFERENCE
from steps.online_recs import ONLINE_RECS
from steps.recsys import load_recs_file
from steps.training_data import CANDIDATES_TRAIN
from tests.conftest import shared_data

ALL = (DEFAULT_RECS, ONLINE_RECS, CANDIDATES_TRAIN, CANDIDATES_INFERENCE)
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
    }  # fmt: skip
    # items_cnt of the published file lands in the original's items_selected column
    assert warehouse.execute("SELECT sum(items_selected) > 0 FROM default_recs").fetchone() == (True,)
    before = {f.spec.name: versions(warehouse, f.spec.name) for f in ALL}
    again = load_all(warehouse, folder)
    assert {t: s["rows_changed"] for t, s in again.items()} == dict.fromkeys(before, 0)
    assert {f.spec.name: versions(warehouse, f.spec.name) for f in ALL} == before


def test_generator_is_seeded_and_has_the_real_sizes(generated, tmp_path):
    assert {
        name: pq.read_metadata(generated / f"{name}.parquet").num_rows for name in REAL_SIZES
    } == REAL_SIZES
    generate(tmp_path, seed=7)
    for name in FILES:
        assert pd.read_parquet(generated / name).equals(pd.read_parquet(tmp_path / name))
    train = pd.read_parquet(generated / "candidates_train.parquet")
    assert 0.01 < train["target"].mean() < 0.04


@pytest.mark.parametrize("source", ["generated", "real"])
def test_ranker_beats_the_als_score_baseline_and_ranks_every_candidate(warehouse, generated, tmp_path, source):
    folder = generated if source == "generated" else shared_data("recsys")
    load_all(warehouse, folder)
    record = ranked_data.train_ranker(warehouse, tmp_path, "run_1", MONDAY)
    assert record["accepted"] and record["note"] == "accepted: first model"
    assert (
        Path(record["model_path"]).exists()
        and Path(record["model_path"]).with_suffix(".metrics.json").exists()
    )
    assert record["roc_auc"] > record["baseline_roc_auc"]
    assert record["ndcg_at_10"] > record["baseline_ndcg_at_10"]
    print(f"ranker trained in {record['train_seconds']:.1f}s")  # reported, never asserted

    summary = ranked_data.rank_candidates(warehouse, "run_1", MONDAY)
    assert summary["candidates_ranked"] == REAL_SIZES["candidates_inference"] == 6_728
    ranked = pd.read_sql_query(
        "SELECT user_id, rec_id, score, rank FROM candidates_ranked", warehouse_uri_of(warehouse)
    )
    for _, group in ranked.groupby("user_id"):
        ordered = group.sort_values("rank")
        assert ordered["rank"].tolist() == list(range(1, len(group) + 1))
        assert ordered["score"].is_monotonic_decreasing


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


def test_a_worse_model_is_recorded_but_the_previous_one_keeps_ranking(warehouse, generated, tmp_path):
    load_all(warehouse, generated)
    first = ranked_data.train_ranker(warehouse, tmp_path, "week_1", MONDAY)
    # Make the first model look unbeatable; next week's model must then be refused.
    warehouse.execute("UPDATE ranker_models SET ndcg_at_10 = 0.999 WHERE run_id = 'week_1'")
    warehouse.commit()
    second = ranked_data.train_ranker(warehouse, tmp_path, "week_2", MONDAY + dt.timedelta(days=7))
    assert not second["accepted"]
    assert second["note"].startswith("rejected: NDCG@10") and "week_1" in second["note"]
    summary = ranked_data.rank_candidates(warehouse, "week_2", MONDAY + dt.timedelta(days=7))
    assert summary["ranked_with_model_of"] == "week_1"
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
