"""The distributed mode of docker-compose.yaml, run natively: the CeleryExecutor with a real Redis
broker and a separate worker process, and SparkSubmitOperator against a real Spark standalone
master and worker started from the installed Spark. Same settings shapes as compose."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sandbox.embedded_postgres import free_port
from tests.e2e.helpers import run_demo

pytestmark = pytest.mark.e2e
JOB = Path(__file__).parent / "jobs" / "word_lengths.py"


def test_celery_executor_runs_the_dag_in_a_separate_worker(workspace):
    if shutil.which("redis-server") is None:
        pytest.fail("Debian's redis-server is not installed: `make test` as root installs it (make system-deps)")
    result = run_demo(
        workspace,
        "--only",
        "hello_world",
        "--conf",
        "id=celery",
        "--date",
        "2026-03-02",
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
    )
    assert result.returncode == 0
    assert "stand-in Celery broker: redis-server on 127.0.0.1:" in result.stdout
    assert (workspace["data"] / "results" / "celery" / "hello_world.txt").read_text() == "Hello World"
    worker_log = (workspace["logs"] / "celery-worker.log").read_text()
    assert "Executing workload in Celery" in worker_log
    assert "hello_world" in worker_log and "make_directory" in worker_log


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def wait_for_json(url: str, ready, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                data = json.loads(response.read())
            if ready(data):
                return data
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} not ready in {timeout}s"
        time.sleep(1)


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory):
    """A standalone master and one worker, as the compose services run them (spark-class)."""
    logs = tmp_path_factory.mktemp("spark")
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOG_DIR": str(logs),
        "SPARK_WORKER_DIR": str(logs / "work"),
    }
    master_port, master_ui, worker_ui = free_port(), free_port(), free_port()
    spark_class = str(spark_home() / "bin" / "spark-class")
    master_args = ["--host", "127.0.0.1", "--port", str(master_port), "--webui-port", str(master_ui)]
    worker_args = [
        f"spark://127.0.0.1:{master_port}",
        "--host",
        "127.0.0.1",
        "--cores",
        "2",
        "--memory",
        "1g",
        "--webui-port",
        str(worker_ui),
    ]
    with open(logs / "master.log", "w") as master_log, open(logs / "worker.log", "w") as worker_log:
        master = subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.master.Master", *master_args],
            env=env,
            stdout=master_log,
            stderr=subprocess.STDOUT,
        )
        worker = subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.worker.Worker", *worker_args],
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_json(f"http://127.0.0.1:{master_ui}/json/", lambda d: d.get("aliveworkers", 0) >= 1)
        yield {"port": master_port, "ui": master_ui, "env": env, "logs": logs}
    finally:
        for process in (worker, master):
            process.terminate()
            process.wait(timeout=30)


def test_spark_submit_operator_runs_a_job_on_the_standalone_cluster(spark_cluster, tmp_path, monkeypatch):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    # The connection has the shape of docker-compose.yaml's, with this cluster's address.
    connection = {"conn_type": "spark", "host": "spark://127.0.0.1", "port": spark_cluster["port"]}
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(connection))
    monkeypatch.setenv("SPARK_HOME", str(spark_home()))
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    output = tmp_path / "lengths"
    word_lengths = SparkSubmitOperator(
        task_id="word_lengths",
        conn_id="spark_default",
        application=str(JOB),
        application_args=[str(output)],
        name="word_lengths",
        conf={"spark.executor.memory": "512m"},
    )
    word_lengths.execute(context={})
    [part] = list(output.glob("part-*.csv"))
    assert part.read_text().splitlines() == [
        "length,count,label",
        "3,4,len3",
        "4,2,len4",
        "5,3,len5",
    ]
    apps = wait_for_json(
        f"http://127.0.0.1:{spark_cluster['ui']}/json/", lambda d: d.get("completedapps"), timeout=30
    )["completedapps"]
    assert [a["name"] for a in apps] == ["word_lengths"]
