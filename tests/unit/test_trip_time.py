"""Trip time: nodes and pairs, the API client against the simulator over real HTTP, and the
warehouse steps against a real Postgres."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from sandbox.estimates_api import EstimatesApi
from steps import trip_time as steps
from steps.core.settings import PROJECT_ROOT
from tests.conftest import shared_data

SAMPLE_CITY = PROJECT_ROOT / "config" / "samples" / "sample_city_nodes.csv"
HOUR = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
TOKEN = "test-token"


@pytest.fixture
def api():
    server = EstimatesApi(TOKEN).start()
    yield server
    server.stop()


def client_for(api, **kwargs) -> steps.EstimatesClient:
    return steps.EstimatesClient(api.url, TOKEN, backoff_seconds=0.05, **kwargs)


# --- nodes and pairs ---------------------------------------------------------------------------


def test_pairs_are_distinct_far_enough_and_seeded():
    nodes = steps.read_nodes(SAMPLE_CITY)
    pairs = steps.sample_pairs(nodes, 40, seed=1)
    assert len({(p["start_node"], p["end_node"]) for p in pairs}) == 40
    for p in pairs:
        assert steps.geodesic_meters(p["start_lat"], p["start_lon"], p["end_lat"], p["end_lon"]) >= 500
    assert steps.sample_pairs(nodes, 40, seed=1) == pairs
    assert steps.sample_pairs(nodes, 40, seed=2) != pairs


def test_pairs_from_the_real_krasnodar_nodes():
    nodes = steps.read_nodes(shared_data("uber", "nodes.csv"))
    assert len(nodes) > 60_000
    pairs = steps.sample_pairs(nodes, 15, seed=steps.seed_of("2026-03-02T08:00:00Z"))
    assert all(p["distance_m"] >= 500 for p in pairs) and len(pairs) == 15


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("node_id,lon\n1,38.9\n", r"missing column\(s\) lat"),
        (
            "node_id,lat,lon\n1,45.0,38.9\n2,forty-five,38.9\n",
            r"row 2, column lat: 'forty-five' is not a coordinate",
        ),
        ("node_id,lat,lon\n1,45.0,381.0\n", r"row 1, column lon: '381.0' is not a coordinate"),
        ("", r"not a readable CSV file"),
    ],
    ids=["missing_lat", "text_coordinate", "out_of_range", "empty"],
)
def test_bad_nodes_file_is_refused_naming_the_problem(tmp_path, content, expected):
    path = tmp_path / "nodes.csv"
    path.write_text(content)
    with pytest.raises(steps.NodesError, match=expected) as error:
        steps.read_nodes(path)
    assert str(path) in str(error.value)


def test_too_few_usable_nodes_fail_before_any_api_call(tmp_path, api):
    path = tmp_path / "nodes.csv"
    path.write_text("node_id,lat,lon\n1,45.0,38.90\n2,45.0,38.95\n3,45.0,38.95\n")  # 2 usable, 2 pairs
    paths = steps.run_paths(tmp_path, "k")
    with pytest.raises(steps.NodesError, match=r"2 usable nodes cannot give 3 distinct pairs"):
        steps.plan_pairs(path, 3, "k", paths)
    near = tmp_path / "near.csv"
    near.write_text("node_id,lat,lon\n1,45.0,38.9000\n2,45.0,38.9001\n3,45.0001,38.9\n")
    with pytest.raises(steps.NodesError, match=r"found only 0 of 2 pairs at least 500 m apart"):
        steps.plan_pairs(near, 2, "k", paths)
    assert api.requests == [] and not paths.pairs.exists()


# --- the client against the simulator ----------------------------------------------------------


PAIR = {"start_lat": 45.03, "start_lon": 38.97, "end_lat": 45.05, "end_lon": 39.01}


def test_estimate_has_the_original_response_shape(api):
    answer = client_for(api).estimate(PAIR)
    assert answer["status"] == "ok"
    assert answer["response"]["trip"]["distance_unit"] == "mile"
    assert answer["response"]["fare"]["value"] > 0 and answer["response"]["trip"]["duration_estimate"] > 0
    assert client_for(api).estimate(PAIR) == answer  # deterministic


def test_wrong_token_is_a_401_kept_as_the_status(api):
    answer = steps.EstimatesClient(api.url, "wrong").estimate(PAIR)
    assert answer["status"] == "http 401" and len(api.requests) == 1  # no retry: it cannot help


def test_transient_5xx_are_retried(api):
    api.fail_next = 2
    assert client_for(api).estimate(PAIR)["status"] == "ok"
    assert len(api.requests) == 3


def test_persistent_5xx_gives_the_pair_an_error_status(api):
    api.fail_next = 10
    assert client_for(api, max_attempts=3).estimate(PAIR) == {"status": "http 503", "response": None}


def test_429_waits_for_retry_after(api):
    api.throttle_next = 1
    assert client_for(api).estimate(PAIR)["status"] == "ok"
    # The simulator answers 429 again to a call that comes sooner than Retry-After said.
    assert [r["status"] for r in api.requests] == [429, 200]


def test_429_past_the_deadline_gives_up_without_waiting(api):
    api.rate_limit, api.rate_window = 1, 3600.0  # Retry-After: about an hour
    client = client_for(api, deadline=time.monotonic() + 600)
    assert client.estimate(PAIR)["status"] == "ok"
    assert client.estimate(PAIR)["status"] == "rate limited"
    assert [r["status"] for r in api.requests] == [200, 429]  # given up at once, not retried


def test_fetch_resumes_with_the_pairs_it_lacks(api, tmp_path):
    paths = steps.run_paths(tmp_path, "2026-03-02T08:00:00Z")
    steps.plan_pairs(SAMPLE_CITY, 6, "2026-03-02T08:00:00Z", paths)
    pairs = json.loads(paths.pairs.read_text())
    first_two = [{**p, **client_for(api).estimate(p), "requested_at": HOUR.isoformat()} for p in pairs[:2]]
    paths.progress.write_text("".join(json.dumps(r) + "\n" for r in first_two))  # a fetch that died
    summary = steps.fetch_estimates(client_for(api, tag="resume"), paths)
    assert summary == {"estimates": 6, "ok": 6, "failed": 0}
    assert len(api.requests_tagged("resume")) == 4
    steps.fetch_estimates(client_for(api, tag="again"), paths)
    assert api.requests_tagged("again") == []


# --- the warehouse steps -----------------------------------------------------------------------


def run_hour(conn, api, data_dir: Path, hour: dt.datetime, n: int = 12) -> dict:
    key = steps.run_key(hour)
    paths = steps.run_paths(data_dir, key)
    steps.plan_pairs(SAMPLE_CITY, n, key, paths)
    steps.fetch_estimates(client_for(api, tag=key), paths)
    steps.store_estimates(conn, paths, key)
    steps.validate(conn, paths, key, hour)
    steps.store_validation(conn, paths, key)
    return steps.train(conn, data_dir, key, hour)


def test_a_run_stores_rows_once_and_the_next_hour_continues_the_model(warehouse, api, tmp_path):
    first = run_hour(warehouse, api, tmp_path, HOUR)
    assert first["continued_from"] == "(new model)" and first["rows_stored"] == 12
    assert first["mae_s"] < first["baseline_mae_s"]
    ids_before = warehouse.execute("SELECT id FROM trip_estimates ORDER BY id").fetchall()

    again = run_hour(warehouse, api, tmp_path, HOUR)  # the same logical hour: nothing new
    assert again == first
    assert warehouse.execute("SELECT id FROM trip_estimates ORDER BY id").fetchall() == ids_before
    assert len(api.requests_tagged(steps.run_key(HOUR))) == 12

    second = run_hour(warehouse, api, tmp_path, HOUR + dt.timedelta(hours=1))
    assert second["continued_from"] == steps.run_key(HOUR)
    ids = [r[0] for r in warehouse.execute("SELECT id FROM trip_estimates ORDER BY id").fetchall()]
    assert ids == list(range(ids[0], ids[0] + 24))  # row ids continue across runs
    predictions = warehouse.execute(
        "SELECT count(*), count(DISTINCT run_key) FROM trip_predictions"
    ).fetchone()
    assert predictions == (24, 2)
    assert (steps.run_paths(tmp_path, steps.run_key(HOUR)).predictions).exists()
    assert_continued_model_predicts(warehouse, second, HOUR + dt.timedelta(hours=1))


def assert_continued_model_predicts(conn, summary: dict, hour: dt.datetime) -> None:
    """The continued model file holds a scaler that has seen both hours and, used as it is, predicts
    its own hour's durations better than their mean does."""
    import joblib

    bundle = joblib.load(summary["model"])
    assert bundle["scaler"].n_samples_seen_ == 24 and bundle["run_key"] == steps.run_key(hour)
    rows = steps._run_rows(conn, steps.run_key(hour))
    durations = rows["duration_s"].to_numpy(float)
    predicted = bundle["model"].predict(bundle["scaler"].transform(steps._features(rows, hour)))
    assert abs(predicted - durations).mean() < abs(durations.mean() - durations).mean()


def test_newest_earlier_model_is_chosen_by_run_time(warehouse, api, tmp_path):
    late, early = HOUR + dt.timedelta(hours=10), HOUR + dt.timedelta(hours=2)
    run_hour(warehouse, api, tmp_path, HOUR + dt.timedelta(hours=9))
    run_hour(warehouse, api, tmp_path, HOUR)
    assert run_hour(warehouse, api, tmp_path, late)["continued_from"] == steps.run_key(
        HOUR + dt.timedelta(hours=9)
    )
    assert run_hour(warehouse, api, tmp_path, early)["continued_from"] == steps.run_key(HOUR)


def test_failed_pairs_are_stored_with_their_status(warehouse, api, tmp_path):
    key = steps.run_key(HOUR)
    paths = steps.run_paths(tmp_path, key)
    steps.plan_pairs(SAMPLE_CITY, 5, key, paths)
    api.fail_next = 100
    steps.fetch_estimates(client_for(api, max_attempts=2), paths)
    steps.store_estimates(warehouse, paths, key)
    rows = warehouse.execute(
        "SELECT status, duration_s FROM trip_estimates WHERE run_key = %s", (key,)
    ).fetchall()
    assert rows == [("http 503", None)] * 5


def test_fail_at_fails_only_on_the_first_try():
    with pytest.raises(steps.FailureDemoError, match="failing at validate on purpose"):
        steps.fail_if_asked("validate", "validate", try_number=1)
    steps.fail_if_asked("validate", "validate", try_number=2)
    steps.fail_if_asked("store", "validate", try_number=1)
