"""Trip time (PIPELINES.md 1): ride estimates for random pairs of a city's road nodes, stored
in the warehouse, a cross-validated check of the duration model, and the model trained further.

    sample_pairs -> fetch_estimates -> store_estimates -> validate -> store_validation -> train

Every step is keyed by the run (its logical hour) and checks its output first, so a rerun, or a
rerun after a failure, does not call the API again nor insert a row twice. The API calls of a run
are appended to a progress file as they come back: a fetch that dies half-way resumes with the
pairs it still lacks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steps.core.files import already_complete, atomic_path, utf8_text, write_text_atomic

log = logging.getLogger(__name__)

API_CONN_ID = "uber_api"
MIN_PAIR_METERS = 500.0
METERS_PER_MILE = 1609.344
NODE_COLUMNS = ("node_id", "lat", "lon")
FEATURES = ["hour", "weekday", "is_weekend", "start_lat", "start_lon", "end_lat", "end_lon", "distance_m"]
STEPS = ("fetch", "store", "validate", "store_validation", "train")


class NodesError(ValueError):
    """The nodes file cannot give the pairs asked for; names the file, row or column."""


class FailureDemoError(RuntimeError):
    """Raised on purpose by the `fail_at` param, to show that a rerun resumes there."""


def fail_if_asked(step: str, fail_at: str | None, try_number: int) -> None:
    """The original's luigi_script_break.py, as a param: fail once at `step`, on the first try,
    so that clearing the task shows the run resuming there."""
    if fail_at == step and try_number <= 1:
        raise FailureDemoError(
            f"failing at {step} on purpose (fail_at={fail_at}); clear the task to resume here"
        )


@dataclass(frozen=True)
class RunPaths:
    folder: Path

    @property
    def pairs(self) -> Path:
        return self.folder / "pairs.json"

    @property
    def progress(self) -> Path:
        return self.folder / "estimates.progress.jsonl"

    @property
    def estimates(self) -> Path:
        return self.folder / "estimates.json"

    @property
    def predictions(self) -> Path:
        return self.folder / "predictions.csv"


def run_key(logical_date: dt.datetime) -> str:
    return logical_date.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_paths(data_dir: Path, key: str) -> RunPaths:
    return RunPaths(Path(data_dir) / "trip_time" / "runs" / key.replace(":", ""))


def models_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "trip_time" / "models"


def geodesic_meters(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    from geographiclib.geodesic import Geodesic

    return Geodesic.WGS84.Inverse(lat1, lon1, lat2, lon2)["s12"]


# --- nodes and pairs ---------------------------------------------------------------------------


def read_nodes(path: Path):
    """The usable nodes of a nodes file, or NodesError naming the file, row or column."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise NodesError(f"{path}: nodes file not found")
    text = utf8_text(path.read_bytes(), str(path), NodesError)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
        raise NodesError(f"{path}: not a readable CSV file ({err})") from None
    missing = [c for c in NODE_COLUMNS if c not in frame.columns]
    if missing:
        raise NodesError(
            f"{path}: missing column(s) {', '.join(missing)}; the file has {', '.join(frame.columns)}"
        )
    for column, low, high in (("lat", -90, 90), ("lon", -180, 180)):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | (values < low) | (values > high)
        if bad.any():
            row = int(bad.idxmax())
            raise NodesError(
                f"{path}: row {row + 1}, column {column}: {frame[column][row]!r} is not a coordinate "
                f"between {low} and {high}"
            )
        frame[column] = values
    return frame[list(NODE_COLUMNS)].drop_duplicates(subset=["lat", "lon"]).reset_index(drop=True)


def sample_pairs(nodes, n: int, seed: int, nodes_file: str = "nodes") -> list[dict]:
    """`n` distinct ordered (start, end) pairs at least MIN_PAIR_METERS apart, seeded."""
    import numpy as np

    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    if len(nodes) * (len(nodes) - 1) < n:
        raise NodesError(f"{nodes_file}: {len(nodes)} usable nodes cannot give {n} distinct pairs")
    rng = np.random.default_rng(seed)
    chosen: dict[tuple[int, int], dict] = {}
    attempts = 0
    while len(chosen) < n and attempts < 200 * n:
        attempts += 1
        a, b = (int(i) for i in rng.integers(0, len(nodes), 2))
        if a == b or (a, b) in chosen:
            continue
        start, end = nodes.iloc[a], nodes.iloc[b]
        meters = geodesic_meters(start["lat"], start["lon"], end["lat"], end["lon"])
        if meters >= MIN_PAIR_METERS:
            chosen[(a, b)] = {
                "start_node": str(start["node_id"]), "end_node": str(end["node_id"]),
                "start_lat": float(start["lat"]), "start_lon": float(start["lon"]),
                "end_lat": float(end["lat"]), "end_lon": float(end["lon"]), "distance_m": round(meters, 1),
            }  # fmt: skip
    if len(chosen) < n:
        raise NodesError(
            f"{nodes_file}: found only {len(chosen)} of {n} pairs at least {MIN_PAIR_METERS:.0f} m apart "
            f"among {len(nodes)} usable nodes"
        )
    return [{"pair": i, **pair} for i, pair in enumerate(chosen.values())]


def seed_of(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)


def plan_pairs(nodes_file: Path, n: int, key: str, paths: RunPaths) -> dict:
    if not already_complete([paths.pairs], "sample_pairs"):
        pairs = sample_pairs(read_nodes(nodes_file), n, seed_of(key), str(nodes_file))
        write_text_atomic(paths.pairs, json.dumps(pairs, indent=1))
    return {"pairs": len(json.loads(paths.pairs.read_text())), "file": str(paths.pairs)}


# --- the estimates API -------------------------------------------------------------------------


@dataclass
class EstimatesClient:
    """POST {base_url}/v1.2/requests/estimate with a bearer token, as Uber's API took it.

    Transient failures (connection errors, 5xx) are retried with exponential backoff; a 429 waits
    the Retry-After it names. No wait runs past `deadline` (a monotonic time), so the task's own
    timeout is not blown: the pair is then given up with its status. Retries are tenacity's.
    """

    base_url: str
    token: str
    max_attempts: int = 4
    backoff_seconds: float = 1.0
    deadline: float | None = None
    tag: str = ""

    def estimate(self, pair: dict) -> dict:
        import requests
        import tenacity

        body = {
            "start_latitude": pair["start_lat"], "start_longitude": pair["start_lon"],
            "end_latitude": pair["end_lat"], "end_longitude": pair["end_lon"],
        }  # fmt: skip
        headers = {"Authorization": f"Bearer {self.token}", "Accept-Language": "en_US"}
        if self.tag:
            headers["X-Request-Tag"] = self.tag
        url = self.base_url.rstrip("/") + "/v1.2/requests/estimate"

        stop = tenacity.stop_after_attempt(self.max_attempts)
        if self.deadline is not None:
            stop |= tenacity.stop_before_delay(self.deadline - time.monotonic())
        post = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(requests.RequestException)
            | tenacity.retry_if_result(lambda answer: answer.status_code == 429 or answer.status_code >= 500),
            wait=self._wait,
            stop=stop,
            # Given up: the last answer, or the last error, decides the pair's status.
            retry_error_callback=lambda state: state.outcome.exception() or state.outcome.result(),
        )
        answer = post(requests.post, url, json=body, headers=headers, timeout=30)
        if isinstance(answer, requests.RequestException):
            return {"status": f"error: {type(answer).__name__}", "response": None}
        if answer.status_code == 200:
            return {"status": "ok", "response": answer.json()}
        if answer.status_code == 429:
            return {"status": "rate limited", "response": _json_or_text(answer)}
        if answer.status_code >= 500:
            return {"status": f"http {answer.status_code}", "response": None}
        return {"status": f"http {answer.status_code}", "response": _json_or_text(answer)}  # 4xx: not retried

    def _wait(self, state) -> float:
        """The Retry-After of a 429, else exponential backoff."""
        if not state.outcome.failed and state.outcome.result().status_code == 429:
            return float(state.outcome.result().headers.get("Retry-After") or self.backoff_seconds)
        return self.backoff_seconds * 2 ** (state.attempt_number - 1)


def _json_or_text(response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


def fetch_estimates(client: EstimatesClient, paths: RunPaths) -> dict:
    """One API call per pair not fetched yet; each answer is appended to the progress file with
    the time it was asked for (`requested_at`)."""
    if already_complete([paths.estimates], "fetch_estimates"):
        return _fetch_summary(paths)
    pairs = json.loads(paths.pairs.read_text())
    done = {}
    if paths.progress.exists():
        for line in paths.progress.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                done[record["pair"]] = record
        log.info("fetch_estimates: resuming, %d of %d pairs already fetched", len(done), len(pairs))
    with open(paths.progress, "a", encoding="utf-8") as progress:
        for pair in pairs:
            if pair["pair"] in done:
                continue
            answer = client.estimate(pair)
            record = {**pair, **answer, "requested_at": dt.datetime.now(dt.UTC).isoformat()}
            progress.write(json.dumps(record) + "\n")
            progress.flush()
            done[pair["pair"]] = record
            log.info("pair %d/%d: %s", pair["pair"] + 1, len(pairs), answer["status"])
    write_text_atomic(paths.estimates, json.dumps([done[p["pair"]] for p in pairs], indent=1))
    return _fetch_summary(paths)


def _fetch_summary(paths: RunPaths) -> dict:
    records = json.loads(paths.estimates.read_text())
    ok = sum(r["status"] == "ok" for r in records)
    return {"estimates": len(records), "ok": ok, "failed": len(records) - ok}


# --- the warehouse -----------------------------------------------------------------------------

ESTIMATES_DDL = """
CREATE TABLE IF NOT EXISTS trip_estimates (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_key text NOT NULL,
    pair integer NOT NULL,
    requested_at timestamptz NOT NULL,
    start_node text, end_node text,
    start_lat double precision NOT NULL, start_lon double precision NOT NULL,
    end_lat double precision NOT NULL, end_lon double precision NOT NULL,
    geodesic_m double precision NOT NULL,
    price double precision,
    distance_m double precision,
    duration_s double precision,
    status text NOT NULL,
    raw jsonb,
    UNIQUE (run_key, pair)
)"""
PREDICTIONS_DDL = """
CREATE TABLE IF NOT EXISTS trip_predictions (
    estimate_id bigint PRIMARY KEY REFERENCES trip_estimates (id),
    run_key text NOT NULL,
    fold integer NOT NULL,
    duration_s double precision NOT NULL,
    predicted_s double precision NOT NULL,
    baseline_s double precision NOT NULL
)"""
RUNS_DDL = """
CREATE TABLE IF NOT EXISTS trip_model_runs (
    run_key text PRIMARY KEY,
    validated_rows integer NOT NULL,
    mae_s double precision,
    baseline_mae_s double precision,
    model_path text,
    continued_from text,
    trained_rows integer
)"""


def ensure_tables(conn) -> None:
    """The pipeline's tables, created by its first warehouse step (store_estimates); the later
    steps of a run find them there."""
    for ddl in (ESTIMATES_DDL, PREDICTIONS_DDL, RUNS_DDL):
        conn.execute(ddl)
    conn.commit()


def store_estimates(conn, paths: RunPaths, key: str) -> dict:
    """The run's rows in one transaction; a run whose rows are there is complete."""
    ensure_tables(conn)
    stored = conn.execute("SELECT count(*) FROM trip_estimates WHERE run_key = %s", (key,)).fetchone()[0]
    if stored:
        log.info("store_estimates: already complete, %d rows for %s", stored, key)
        return {"rows": stored, "run_key": key}
    records = json.loads(paths.estimates.read_text())
    with conn.cursor() as cur:
        for r in records:
            response = r.get("response") if r["status"] == "ok" else None
            fare, trip = (response or {}).get("fare") or {}, (response or {}).get("trip") or {}
            miles = trip.get("distance_estimate")
            cur.execute(
                "INSERT INTO trip_estimates (run_key, pair, requested_at, start_node, end_node, start_lat, "
                "start_lon, end_lat, end_lon, geodesic_m, price, distance_m, duration_s, status, raw) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (key, r["pair"], r["requested_at"], r["start_node"], r["end_node"], r["start_lat"],
                 r["start_lon"], r["end_lat"], r["end_lon"], r["distance_m"], fare.get("value"),
                 None if miles is None else miles * METERS_PER_MILE, trip.get("duration_estimate"),
                 r["status"], json.dumps(r.get("response"))),
            )  # fmt: skip
    conn.commit()
    return {"rows": len(records), "run_key": key}


def _features(frame, when: dt.datetime):
    frame = frame.copy()
    frame["hour"] = when.hour
    frame["weekday"] = when.weekday()
    frame["is_weekend"] = int(when.weekday() >= 5)
    frame["distance_m"] = frame["geodesic_m"]
    return frame[FEATURES].astype(float)


def _run_rows(conn, key: str):
    from steps.core.warehouse import read_frame

    return read_frame(
        conn,
        "SELECT id, geodesic_m, start_lat, start_lon, end_lat, end_lon, duration_s FROM trip_estimates "
        "WHERE run_key = %s AND status = 'ok' AND duration_s IS NOT NULL ORDER BY pair",
        (key,),
    )


def new_model():
    from sklearn.linear_model import SGDRegressor
    from sklearn.preprocessing import StandardScaler

    return {"scaler": StandardScaler(), "model": SGDRegressor(random_state=0, max_iter=5000, tol=1e-3)}


def _fit(bundle: dict, x, y, partial: bool) -> dict:
    if partial:
        bundle["scaler"].partial_fit(x)
        bundle["model"].partial_fit(bundle["scaler"].transform(x), y)
    else:
        bundle["model"].fit(bundle["scaler"].fit_transform(x), y)
    return bundle


def validate(conn, paths: RunPaths, key: str, when: dt.datetime) -> dict:
    """5-fold cross-validated predictions of the run's durations, and a mean-duration baseline."""
    import numpy as np
    from sklearn.model_selection import KFold

    if paths.predictions.exists():
        log.info("validate: already complete, predictions in %s", paths.predictions)
        return {"predictions": str(paths.predictions)}
    rows = _run_rows(conn, key)
    if len(rows) < 5:
        raise ValueError(
            f"validate: {len(rows)} estimates with a duration for {key}; 5-fold validation needs 5"
        )
    x, y = _features(rows, when), rows["duration_s"].to_numpy(float)
    rows["fold"], rows["predicted_s"], rows["baseline_s"] = 0, 0.0, 0.0
    for fold, (fit, held_out) in enumerate(KFold(5, shuffle=True, random_state=0).split(x)):
        bundle = _fit(new_model(), x.iloc[fit], y[fit], partial=False)
        rows.loc[rows.index[held_out], "fold"] = fold
        rows.loc[rows.index[held_out], "predicted_s"] = bundle["model"].predict(
            bundle["scaler"].transform(x.iloc[held_out])
        )
        rows.loc[rows.index[held_out], "baseline_s"] = float(np.mean(y[fit]))
    rows["run_key"] = key
    with atomic_path(paths.predictions) as tmp:
        rows[["id", "run_key", "fold", "duration_s", "predicted_s", "baseline_s"]].to_csv(tmp, index=False)
    return {"predictions": str(paths.predictions)}


def store_validation(conn, paths: RunPaths, key: str) -> dict:
    import pandas as pd

    done = conn.execute(
        "SELECT mae_s, baseline_mae_s FROM trip_model_runs WHERE run_key = %s", (key,)
    ).fetchone()
    if done:
        log.info("store_validation: already complete for %s", key)
        return {"mae_s": done[0], "baseline_mae_s": done[1]}
    rows = pd.read_csv(paths.predictions)
    mae = float((rows["predicted_s"] - rows["duration_s"]).abs().mean())
    baseline = float((rows["baseline_s"] - rows["duration_s"]).abs().mean())
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO trip_predictions (estimate_id, run_key, fold, duration_s, predicted_s, baseline_s) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [(int(r.id), key, int(r.fold), float(r.duration_s), float(r.predicted_s), float(r.baseline_s))
             for r in rows.itertuples()],
        )  # fmt: skip
        cur.execute(
            "INSERT INTO trip_model_runs (run_key, validated_rows, mae_s, baseline_mae_s) "
            "VALUES (%s, %s, %s, %s)",
            (key, len(rows), mae, baseline),
        )
    conn.commit()
    log.info(
        "store_validation: MAE %.1f s, mean-duration baseline %.1f s over %d rows", mae, baseline, len(rows)
    )
    return {"mae_s": round(mae, 1), "baseline_mae_s": round(baseline, 1)}


def train(conn, data_dir: Path, key: str, when: dt.datetime) -> dict:
    """Continue training the newest earlier model on this run's rows (partial_fit), or fit a
    fresh one when there is none; save it as this run's model file."""
    import joblib

    record = conn.execute(
        "SELECT model_path, continued_from, trained_rows, mae_s, baseline_mae_s FROM trip_model_runs "
        "WHERE run_key = %s", (key,)
    ).fetchone()  # fmt: skip
    if record and record[0] and Path(record[0]).exists():
        log.info("train: already complete for %s (%s)", key, record[0])
        return _train_summary(conn, key, *record)
    previous = conn.execute(
        "SELECT run_key, model_path FROM trip_model_runs WHERE model_path IS NOT NULL AND run_key < %s "
        "ORDER BY run_key DESC LIMIT 1", (key,)
    ).fetchone()  # run keys are ISO UTC times: their order is the runs' time order  # fmt: skip
    rows = _run_rows(conn, key)
    x, y = _features(rows, when), rows["duration_s"].to_numpy(float)
    if previous and Path(previous[1]).exists():
        bundle = _fit(joblib.load(previous[1]), x, y, partial=True)
        continued_from = previous[0]
    else:
        bundle = _fit(new_model(), x, y, partial=False)
        continued_from = None
    path = models_dir(data_dir) / f"trip_model_{key.replace(':', '')}.joblib"
    with atomic_path(path) as tmp:
        joblib.dump({**bundle, "features": FEATURES, "run_key": key}, tmp)
    conn.execute(
        "UPDATE trip_model_runs SET model_path = %s, continued_from = %s, trained_rows = %s "
        "WHERE run_key = %s",
        (str(path), continued_from, len(rows), key),
    )
    conn.commit()
    mae = conn.execute(
        "SELECT mae_s, baseline_mae_s FROM trip_model_runs WHERE run_key = %s", (key,)
    ).fetchone()
    return _train_summary(conn, key, str(path), continued_from, len(rows), *mae)


def _train_summary(conn, key, model_path, continued_from, trained_rows, mae, baseline) -> dict:
    stored, total = conn.execute(
        "SELECT count(*) FILTER (WHERE run_key = %s), count(*) FROM trip_estimates", (key,)
    ).fetchone()
    return {
        "rows_stored": stored,
        "rows_in_table": total,
        "model": model_path,
        "continued_from": continued_from or "(new model)",
        "trained_rows": trained_rows,
        "mae_s": None if mae is None else round(mae, 1),
        "baseline_mae_s": None if baseline is None else round(baseline, 1),
    }
