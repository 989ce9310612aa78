"""The five recommender DAGs through the real scheduler, on the real files when they are here and
on a bad one (on generated files: the main job's run, checked with `check_recsys_runs`)."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest

from tests.conftest import shared_data
from tests.e2e.helpers import run_demo

pytestmark = pytest.mark.e2e
RECSYS_DAGS = (
    "load_default_recs,load_online_recs,load_candidates_train,load_candidates_inference,rank_candidates"
)


def test_the_real_files_load_and_rank(workspace):
    """On the real files when they are here; on generated ones the main job's run is checked the
    same way (tests/e2e/test_main_job.py), so as not to start the stack once more for it."""
    folder = shared_data("recsys")
    summary_path = workspace["base"] / "recsys-summary-real.json"
    result = run_demo(
        workspace, "--only", RECSYS_DAGS, "--date", "2026-02-07", "--summary-json", str(summary_path),
        POSTGRES_DATA_DIR=str(folder),
    )  # fmt: skip
    assert result.returncode == 0
    summary = json.loads(summary_path.read_text())
    runs = {r["dag_id"]: r for r in summary["runs"]}
    assert set(runs) == set(RECSYS_DAGS.split(","))
    check_recsys_runs(runs, summary["telegram_messages"], result.stdout)
    loaded = loaded_tables(runs)
    assert {d: o["rows_in_table"] for d, o in loaded.items()} == {
        "load_default_recs": 100, "load_online_recs": 2_776,
        "load_candidates_train": 3_561, "load_candidates_inference": 6_728,
    }  # fmt: skip
    assert runs["load_candidates_train"]["outputs"]["load_events"]["rows_in_table"] == 21_012
    # Judged as users meet it: on the real files the ranking's NDCG@10, on what users did later,
    # is above the als_score order's, and so it is the model that ranked.
    ranked = runs["rank_candidates"]["outputs"]["rank"]
    assert ranked["metrics"]["ndcg_at_10"] > ranked["baseline_als_score"]["ndcg_at_10"]
    assert ranked["ranked_by"] == f"the model of {runs['rank_candidates']['run_id']}"


def loaded_tables(runs: dict[str, dict]) -> dict[str, dict]:
    return {d: r["outputs"][f"load_{d.removeprefix('load_')}"] for d, r in runs.items() if d.startswith("load_")}


def check_recsys_runs(runs: dict[str, dict], messages: list[str], stdout: str) -> None:
    """What every run of the five recommender DAGs must show, whatever the files: all succeed,
    each table holds its file's rows, every inference candidate is ranked, the summary and the
    Telegram messages report the model's NDCG@10, what ranked and where the report is."""
    assert {d: runs[d]["state"] for d in RECSYS_DAGS.split(",")} == dict.fromkeys(RECSYS_DAGS.split(","), "success")
    loaded = loaded_tables(runs)
    loaded["events"] = runs["load_candidates_train"]["outputs"]["load_events"]
    assert {d: o["rows_in_table"] for d, o in loaded.items()} == {
        d: pq.read_metadata(o["file"]).num_rows for d, o in loaded.items()
    }
    ranked = runs["rank_candidates"]["outputs"]["rank"]
    inference_rows = loaded["load_candidates_inference"]["rows_in_table"]
    assert ranked["candidates_ranked"] == inference_rows
    assert "ndcg_at_10" in stdout  # the summary table shows the ranker's metrics
    [ranking] = [m for m in messages if m.startswith("DAG rank_candidates with run_id=")]
    assert f"model NDCG@10 {ranked['metrics']['ndcg_at_10']}" in ranking
    assert f"ranked {inference_rows} candidates by {ranked['ranked_by']}" in ranking
    assert f"report: {ranked['report']}" in ranking and ranked["report"].endswith(".html")
    for dag_id in RECSYS_DAGS.split(","):
        assert any(m.startswith(f"DAG {dag_id} with run_id=") and "finished successfully." in m for m in messages)


def test_bad_file_fails_the_load_and_says_so_on_telegram(workspace, tmp_path):
    from sandbox.generate_recsys import generate

    generate(tmp_path)
    path = tmp_path / "candidates_train.parquet"
    table = pq.read_table(path).to_pandas()
    table.loc[7, "rec_id"] = table.loc[3, "rec_id"]
    table.to_parquet(path, index=False)
    result = run_demo(
        workspace, "--only", "load_candidates_train", "--date", "2026-02-14", POSTGRES_DATA_DIR=str(tmp_path)
    )
    assert result.returncode == 1
    assert "--- task load_candidates_train failed" in result.stdout
    # Into an empty table the error names the row; into a loaded one, the number of rows.
    duplicate = re.search(rf"{re.escape(str(path))}: (row \d+, )?duplicate key rec_id=(\d+)", result.stdout)
    assert duplicate and int(duplicate[2]) == table.loc[3, "rec_id"]
    assert "DAG load_candidates_train with run_id=manual__2026-02-14T00:00:00+00:00 failed." in result.stdout
