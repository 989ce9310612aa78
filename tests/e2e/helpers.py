"""Running the one-machine runner from the end-to-end tests, as `make demo` does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandbox.embedded_postgres import free_port

ROOT = Path(__file__).resolve().parents[2]


def runner_command(workspace, *args: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "sandbox.runner", "demo", "--api-port", str(port),
        "--state-dir", str(workspace["state"]), "--logs-dir", str(workspace["logs"]), *args,
    ]  # fmt: skip


def runner_env(workspace, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))}
    env.pop("AIRFLOW_HOME", None)
    env.update({"PIPELINES_DATA_DIR": str(workspace["data"]), "PIPELINES_TASK_RETRIES": "0", **extra})
    return env


def run_demo(workspace, *args: str, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        runner_command(workspace, *args, port=free_port()),
        env=runner_env(workspace, **env), cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    print(result.stdout[-5000:], result.stderr[-5000:])
    return result


def demo_runs(workspace, name: str, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """`run_demo` with `--summary-json`: the process and the summary's runs (none if it wrote none)."""
    import json

    path = workspace["base"] / f"{name}.json"
    result = run_demo(workspace, *args, "--summary-json", str(path), **env)
    return result, json.loads(path.read_text())["runs"] if path.exists() else []


@contextmanager
def warehouse_between_runs(workspace) -> Iterator:
    """A connection to the runner's embedded warehouse while no run is going on: the runner stops
    its Postgres when it exits, so this starts the same cluster for a moment, then stops it."""
    import psycopg

    from sandbox.embedded_postgres import EmbeddedPostgres

    server = EmbeddedPostgres(workspace["state"] / "postgres", free_port()).start()
    try:
        with psycopg.connect(server.uri("warehouse")) as conn:
            yield conn
    finally:
        server.stop()
