"""The deployment, run for real: a clean copy of the tree, a .env written by `make env`, every image
made by `make images` (pulled, or a stand-in where no registry answers), `docker compose up -d
--wait`, then the pipelines run by the scheduler on the CeleryExecutor in the containers, checked
through the REST API, the warehouse, S3 and the Spark master as a user would check them.

The inputs are put in place before Airflow starts, as a user drops files into ./postgres_data and
./song_plays_source: the DAGs are unpaused at creation, so their latest scheduled runs start at
once and are the runs checked here (rank_candidates from the asset events of the candidate and event
loads, never triggered by the test). The steps are one module's tests, in order, on one stack.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
from airflow_client.client.models import (
    ClearTaskInstancesBody,
    ClearTaskInstancesBodyTaskIdsInner,
    DAGRunResponse,
    TaskInstanceResponse,
    TriggerDAGRunPostBody,
)

from sandbox.airflow_api import AirflowApi, ApiException
from sandbox.embedded_postgres import free_port
from tests.deploy.images import compose_binary

ROOT = Path(__file__).resolve().parents[2]
SHARED_POLICE = ROOT.parent / "shared" / "data" / "police_eis"
PROJECT = "pipelines-deploy-test"
TELEGRAM_TOKEN = "4242:deploy-test-token"
SCHEDULED_DAGS = (
    "hello_world", "load_default_recs", "load_online_recs", "load_candidates_train",
    "load_candidates_inference", "song_plays", "uber_trip_time", "user_page_views", "police_staging",
)  # fmt: skip
LONG_RUNNING = (
    "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
    "airflow-worker", "postgres", "warehouse", "redis", "s3", "spark-master", "spark-worker",
    "song-plays-source", "estimates-api", "fake-telegram",
)  # fmt: skip

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(3600)]


def docker_objects() -> set[str]:
    """Every container, volume (named or anonymous) and network on the engine."""
    found = set()
    for kind in ("container", "volume", "network"):
        listed = subprocess.run(["docker", kind, "ls", "-q", *(["-a"] if kind == "container" else [])],
                                capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
        found |= {f"{kind} {name}" for name in listed}
    return found


class Stack:
    def __init__(self, tree: Path, env: dict[str, str]):
        self.tree = tree
        self.env = env
        self.timings: dict[str, float] = {}
        self.objects_before = docker_objects()
        # The day the inputs are put for: the tests' days come from it, not from the clock, which
        # may pass midnight while the module runs (a run of "yesterday" was looked up under the
        # wrong date when it did).
        self.today = dt.datetime.now(dt.UTC).date()
        self.yesterday = self.today - dt.timedelta(days=1)

    def compose(self, *args: str, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess:
        command = [
            compose_binary(), "-p", PROJECT, "-f", "docker-compose.yaml", "-f", "tests/deploy/compose.test.yaml",
            "--env-file", ".env", *args,
        ]  # fmt: skip
        result = subprocess.run(
            command, cwd=self.tree, capture_output=True, text=True, timeout=timeout,
            env={k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST")},
        )  # fmt: skip
        if check and result.returncode != 0:
            logs = self.compose("logs", "--tail", "40", check=False).stdout if args[0] == "up" else ""
            raise AssertionError(f"docker compose {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}\n{logs}")
        return result

    def timed(self, name: str, *args: str) -> subprocess.CompletedProcess:
        started = time.monotonic()
        result = self.compose(*args)
        self.timings[name] = time.monotonic() - started
        print(f"{name}: {self.timings[name]:.0f}s", flush=True)
        return result

    def api(self) -> AirflowApi:
        return AirflowApi(f"http://127.0.0.1:{self.env['AIRFLOW_PORT']}", "admin", self.env["AIRFLOW_ADMIN_PASSWORD"])

    def warehouse(self) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=int(self.env["WAREHOUSE_PORT"]), dbname="warehouse",
            user="warehouse", password=self.env["WAREHOUSE_PASSWORD"], autocommit=True,
        )  # fmt: skip

    def s3(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{self.env['S3_PORT']}", region_name="us-east-1",
            aws_access_key_id="pipelines", aws_secret_access_key=self.env["S3_SECRET_KEY"],
        )  # fmt: skip

    def services(self) -> dict[str, list[dict]]:
        """Service name -> its containers, as `docker compose ps -a` reports them."""
        lines = self.compose("ps", "-a", "--format", "json").stdout.splitlines()
        found: dict[str, list[dict]] = {}
        for entry in (json.loads(line) for line in lines if line.strip()):
            found.setdefault(entry["Service"], []).append(entry)
        return found


def copy_tree(destination: Path) -> None:
    """The project's files as git sees them (tracked and new, not ignored): a clean checkout."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def write_env(tree: Path) -> dict[str, str]:
    """`make env`, then what this machine needs: free ports, a Telegram bot at the fake server, an
    admin password with a quote and a backslash (which must survive into the passwords file), and
    a uid that no image has a passwd entry for, as on a Linux host (`AIRFLOW_UID=$(id -u)`)."""
    subprocess.run([sys.executable, "tools/new_env.py"], cwd=tree, check=True, capture_output=True)
    text = (tree / ".env").read_text()
    telegram = {"conn_type": "generic", "host": "1001", "password": TELEGRAM_TOKEN,
                "extra": {"base_url": "http://fake-telegram:8081/bot"}}  # fmt: skip
    overrides = {
        "AIRFLOW_PORT": str(free_port()),
        "WAREHOUSE_PORT": str(free_port()),
        "S3_PORT": str(free_port()),
        "SPARK_MASTER_UI_PORT": str(free_port()),
        "PIPELINES_TASK_RETRIES": "1",
        "PIPELINES_RETRY_DELAY_SECONDS": "10",  # the fault tests wait for retries: not a minute each
        "AIRFLOW_UID": "4321",
        "TEST_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
        "TEST_POLICE_EIS_DIR": str(SHARED_POLICE) if SHARED_POLICE.is_dir() else "./sql/police_staging",
    }
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    values.update(overrides)
    values["AIRFLOW_ADMIN_PASSWORD"] = 'quote"back\\slash-' + values["AIRFLOW_ADMIN_PASSWORD"][:20]
    lines = [f"{k}='{v}'" for k, v in values.items()]  # single quotes: taken literally by compose
    lines.append(f"AIRFLOW_CONN_TELEGRAM_DEFAULT='{json.dumps(telegram)}'")
    (tree / ".env").write_text("\n".join(lines) + "\n")
    return values


def put_inputs(stack: Stack, days: list[str]) -> None:
    """The files users drop in (generated samples), S3 logs and the police source tables."""
    python = [sys.executable, "-m"]
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}"}
    tree = stack.tree

    def run(*args: str, **extra: str) -> None:
        done = subprocess.run([*python, *args], cwd=tree, env={**env, **extra}, capture_output=True, text=True)
        if done.returncode != 0:
            raise AssertionError(f"{args[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    run("sandbox.generate_recsys", "--out", str(tree / "postgres_data"), "--scale", "0.1")
    run("sandbox.generate_song_plays", "--out", str(tree / "song_plays_source"), "--start", days[0], "--end", days[-1])
    run(
        "sandbox.generate_page_views", "--start", days[0], "--end", days[-1], "--bucket", "page-views-staging",
        "--endpoint-url", f"http://127.0.0.1:{stack.env['S3_PORT']}",
        AWS_ACCESS_KEY_ID="pipelines", AWS_SECRET_ACCESS_KEY=stack.env["S3_SECRET_KEY"],
    )  # fmt: skip
    dsn = (
        f"postgresql://warehouse:{stack.env['WAREHOUSE_PASSWORD']}@127.0.0.1:{stack.env['WAREHOUSE_PORT']}/warehouse"
    )
    run("sandbox.generate_police_source", "--dsn", dsn)


@pytest.fixture(scope="module")
def stack(docker_engine, tmp_path_factory):
    tree = tmp_path_factory.mktemp("deploy") / "project"
    copy_tree(tree)
    stack = Stack(tree, write_env(tree))
    # What an interrupted earlier run left (its databases were initialised with other passwords,
    # and would refuse this run's) goes first; what is on the engine then is not the stack's.
    stack.compose("down", "--volumes", "--remove-orphans", check=False)
    stack.objects_before = docker_objects()
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "tests.deploy.images", "--project", str(tree),
         "--compose-file", str(tree / "tests/deploy/compose.test.yaml")],
        cwd=ROOT, check=True,
    )  # fmt: skip
    stack.timings["images"] = time.monotonic() - started
    try:
        # The stores first, so that the inputs are there before any scheduler looks for them.
        stack.timed("up stores", "up", "-d", "--wait", "warehouse", "s3")
        stack.compose("up", "-d", "s3-init")
        stack.compose("wait", "s3-init")
        put_inputs(stack, [str(stack.yesterday), str(stack.today)])
        stack.timed("up", "up", "-d", "--wait")
        yield stack
    finally:
        timings = {k: round(v) for k, v in stack.timings.items()}
        print("timings:", timings, flush=True)
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        (ROOT / "test-artifacts" / "deploy-timings.json").write_text(json.dumps(timings, indent=1) + "\n")
        # The task logs outlive the stack, for whoever reads a failure afterwards.
        shutil.rmtree(ROOT / "test-artifacts" / "deploy-logs", ignore_errors=True)
        shutil.copytree(tree / "logs", ROOT / "test-artifacts" / "deploy-logs", dirs_exist_ok=True)
        stack.compose("down", "--volumes", "--remove-orphans", check=False, timeout=600)
        shutil.rmtree(tree, ignore_errors=True)


def wait_for_run(api: AirflowApi, dag_id: str, timeout: float = 900, **match) -> DAGRunResponse:
    """The first run of `dag_id` whose fields equal `match`, once it has finished."""
    deadline = time.monotonic() + timeout
    while True:
        runs = api.dag_runs.get_dag_runs(dag_id, limit=100, order_by=["run_after"]).dag_runs
        runs = [r for r in runs if all(getattr(r, k) == v for k, v in match.items())]
        if runs and runs[0].state in ("success", "failed"):
            return runs[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"{dag_id}: no finished run matching {match} in {timeout:.0f}s: {runs}")
        time.sleep(5)


def failures(api: AirflowApi, run: DAGRunResponse) -> str:
    """Every task's state and try, and the logs of the failed ones, for an assertion message."""
    shown = []
    for ti in api.run_task_instances(run.dag_id, run.dag_run_id):
        shown.append(f"{ti.task_id}[{ti.map_index}]: {ti.state}, try {ti.try_number} on {ti.hostname}")
        if ti.state in ("failed", "upstream_failed"):
            try:
                log = api.task_log(run.dag_id, run.dag_run_id, ti.task_id, max(ti.try_number, 1), ti.map_index)
            except ApiException as err:  # a task that never ran has no log: say so, keep the rest
                log = f"(no log: HTTP {err.status})"
            shown.append(f"--- {ti.task_id}[{ti.map_index}] {ti.state}\n{log[-3000:]}")
    return "\n".join(shown)


def assert_succeeded(api: AirflowApi, run: DAGRunResponse) -> None:
    assert run.state == "success", f"{run.dag_id} {run.dag_run_id}: {run.state}\n{failures(api, run)}"


def trigger(api: AirflowApi, dag_id: str, conf: dict | None = None, **fields) -> DAGRunResponse:
    """A manual run now (no logical date, as Airflow 3 allows) unless `fields` say otherwise."""
    body = TriggerDAGRunPostBody(**({"logical_date": None} | fields), conf=conf or {})
    return api.dag_runs.trigger_dag_run(dag_id, body)


def test_every_service_is_healthy_and_init_exited_0(stack):
    services = stack.services()
    for name in LONG_RUNNING:
        states = [(c["State"], c["Health"]) for c in services[name]]
        assert states == [("running", "healthy")], f"{name}: {states}"
    for name in ("airflow-init", "s3-init"):
        assert [(c["State"], c["ExitCode"]) for c in services[name]] == [("exited", 0)], name
    print({name: services[name][0]["Status"] for name in sorted(services)})


def test_every_scheduled_dag_succeeds_on_its_own(stack):
    api = stack.api()
    assert api.import_errors.get_import_errors().import_errors == []
    results = {}
    for dag_id in SCHEDULED_DAGS:
        run = wait_for_run(api, dag_id, run_type="scheduled")
        results[dag_id] = run.state.value
        assert_succeeded(api, run)
    print(results)


def test_ranking_is_started_by_the_scheduler_from_the_asset_events(stack):
    api = stack.api()
    run = wait_for_run(api, "rank_candidates", timeout=600)
    assert run.run_type == "asset_triggered"
    assert_succeeded(api, run)
    with stack.warehouse() as conn:
        ranked = conn.execute("SELECT count(*), count(DISTINCT user_id) FROM candidates_ranked").fetchone()
    assert ranked[0] > 0 and ranked[1] > 0


def telegram_texts(stack: Stack) -> list[str]:
    messages = stack.compose("exec", "-T", "fake-telegram", "cat", "/messages/messages.jsonl").stdout
    return [json.loads(line)["text"] for line in messages.splitlines()]


def test_hello_world_message_reaches_the_bot_api(stack):
    texts = telegram_texts(stack)
    assert any(t.startswith("DAG hello_world with run_id=scheduled__") and "finished successfully" in t for t in texts), texts
    assert all(TELEGRAM_TOKEN not in t for t in texts)


def test_song_plays_job_ran_on_the_spark_worker_with_the_drivers_python(stack):
    port = stack.env["SPARK_MASTER_UI_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/", timeout=30) as response:
        master = json.load(response)
    assert master["aliveworkers"] == 1
    finished = [app for app in master["completedapps"] if app["state"] == "FINISHED"]
    assert finished, master
    outputs = list((stack.tree / "data").glob("output/*/*/*/dataset/_SUCCESS"))
    assert outputs, "no dataset written under ./data/output"
    # Written by the executors as AIRFLOW_UID, so the files in ./data belong to the host's user.
    assert {p.stat().st_uid for p in outputs} == {int(stack.env["AIRFLOW_UID"])}
    # Driver (in the Airflow worker) and executors (on the Spark worker) report their Python.
    probe = stack.tree / "data" / "python_probe.py"
    probe.write_text(
        "import sys\nfrom pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.getOrCreate()\n"
        "seen = spark.sparkContext.parallelize(range(4), 4).map(lambda _: (sys.executable, sys.version)).distinct().collect()\n"
        "print('DRIVER', (sys.executable, sys.version))\nprint('EXECUTORS', seen)\n"
    )
    result = stack.compose(
        "exec", "-T", "airflow-worker", "spark-submit", "--master", "spark://spark-master:7077",
        "/opt/airflow/data/python_probe.py",
    )  # fmt: skip
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line.startswith(("DRIVER", "EXECUTORS")))
    assert eval(lines["EXECUTORS"]) == [eval(lines["DRIVER"])]  # noqa: S307 - our own repr output


def test_the_log_of_a_running_task_is_served_by_its_worker(stack):
    """While a task runs, the API server asks the worker's log server for its log, signed with the
    shared secret key: with one key per container the answer is 403."""
    api = stack.api()
    midnight = dt.datetime.combine(stack.yesterday, dt.time(), dt.UTC)
    run = trigger(api, "song_plays", dag_run_id=f"deploy_test_{stack.yesterday}", logical_date=midnight)
    deadline = time.monotonic() + 600
    while True:
        ti = api.task_instances.get_task_instance("song_plays", run.dag_run_id, "dataset_gen")
        if ti.state == "running":
            break
        assert ti.state in (None, "scheduled", "queued") and time.monotonic() < deadline, ti
        time.sleep(1)
    # The log lines and, first, where they were read from.
    text = json.dumps(api.task_log_content("song_plays", run.dag_run_id, "dataset_gen", ti.try_number))
    assert f"http://{ti.hostname}:8793/log/" in text, text[:3000]
    assert "secret_key" not in text and "Could not read served logs" not in text, text[:3000]
    assert_succeeded(api, wait_for_run(api, "song_plays", dag_run_id=run.dag_run_id))


def test_police_staging_builds_with_postgis_and_is_promoted(stack):
    api = stack.api()
    real = SHARED_POLICE.is_dir()
    conf = {"schema": "eis_dev"}
    if real:  # the original 97 scripts, mounted at /opt/airflow/police_eis by compose.test.yaml
        conf |= {
            "create_tables_dir": "/opt/airflow/police_eis/create_tables",
            "lookup_file": "/opt/airflow/police_eis/lookup/lookup_tables.yaml",
            "procedures_file": "/opt/airflow/police_eis/stored_procedures/load_common_stored_procedures.sql",
            "populate_dir": "",
        }
    build = trigger(api, "police_staging", conf)
    assert_succeeded(api, wait_for_run(api, "police_staging", timeout=1200, dag_run_id=build.dag_run_id))
    with stack.warehouse() as conn:
        built = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'eis_dev'").fetchone()[0]
        geometry = conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'eis_dev' AND udt_name = 'geometry'"
        ).fetchone()[0]
    if real:
        assert built == 97 and geometry >= 3
    promote = trigger(api, "police_staging_promote", {"confirm": True, "source": "eis_dev", "target": "eis"})
    assert_succeeded(api, wait_for_run(api, "police_staging_promote", dag_run_id=promote.dag_run_id))
    with stack.warehouse() as conn:
        tables = dict(conn.execute(
            "SELECT schemaname, count(*) FROM pg_tables WHERE schemaname IN ('eis', 'eis_dev') GROUP BY 1"
        ).fetchall())  # fmt: skip
    assert tables == {"eis": built}


def test_a_second_worker_takes_tasks(stack):
    stack.timed("scale", "up", "-d", "--wait", "--scale", "airflow-worker=2")
    assert len(stack.services()["airflow-worker"]) == 2
    api = stack.api()
    run = wait_for_run(api, "police_staging", dag_run_id=trigger(api, "police_staging").dag_run_id)
    assert_succeeded(api, run)
    hosts = {ti.hostname for ti in api.run_task_instances("police_staging", run.dag_run_id) if ti.hostname}
    assert len(hosts) == 2, hosts


def copy_under_way(stack: Stack, timeout: float = 600) -> int:
    """Waits until a COPY into the warehouse has sent rows; returns its session's pid."""
    with stack.warehouse() as monitor:
        deadline = time.monotonic() + timeout
        while not (found := monitor.execute("SELECT pid FROM pg_stat_progress_copy WHERE tuples_processed > 0").fetchone()):
            assert time.monotonic() < deadline, "the load's COPY was never seen under way"
            time.sleep(0.05)
        return found[0]


def test_a_load_whose_worker_container_is_killed_mid_copy_is_finished_by_the_other_worker(stack, tmp_path):
    """#14 (c): the worker container running a load is SIGKILLed while its COPY sends rows (336,400
    rows, 50 times the real file): the scheduler finds the task dead by its stopped heartbeat
    (30 s in this test's override), the retry runs on the other worker, the table ends holding
    exactly the file's rows, and the load's partial COPY left nothing."""
    import pandas as pd

    stack.compose("up", "-d", "--wait", "--scale", "airflow-worker=2")  # one to kill, one to retry on
    subprocess.run([sys.executable, "-m", "sandbox.generate_recsys", "--out", str(tmp_path), "--scale", "50"],
                   cwd=ROOT, env={**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}"}, check=True)  # fmt: skip
    big = tmp_path / "candidates_inference.parquet"
    shutil.copy2(big, stack.tree / "postgres_data" / big.name)
    frame = pd.read_parquet(big)
    in_file = f"FROM candidates_inference WHERE rec_id BETWEEN {frame['rec_id'].min()} AND {frame['rec_id'].max()}"
    with stack.warehouse() as conn:
        before = conn.execute(f"SELECT count(*), coalesce(sum(user_id), 0) {in_file}").fetchone()
    api = stack.api()
    run = trigger(api, "load_candidates_inference")
    copying = copy_under_way(stack)
    [ti] = [t for t in api.run_task_instances("load_candidates_inference", run.dag_run_id) if t.state == "running"]
    victim = ti.hostname  # the worker container's id, its hostname
    # The worst case, made certain: a killed container's FIN is lost when its network goes first (it
    # failed CI twice), so its packets are dropped from just before the kill.
    pid = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", victim],
                         check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    subprocess.run(["nsenter", "-t", pid, "-n", "iptables", "-A", "OUTPUT", "-j", "DROP"], check=True)
    subprocess.run(["docker", "kill", "--signal", "KILL", victim], check=True, capture_output=True)
    killed_at = time.monotonic()
    # The warehouse's TCP keepalives (docker-compose.yaml) end the session the silent client left in
    # about 25 s, before the retry (30 s heartbeat timeout + 10 s retry delay) starts.
    deadline = killed_at + 120
    with stack.warehouse() as monitor:  # the dead worker's COPY is rolled back: none of its rows
        while monitor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [copying]).fetchone():
            assert time.monotonic() < deadline, "the killed worker's session never ended"
            time.sleep(0.2)
        print(f"the killed worker's session ended {time.monotonic() - killed_at:.0f} s after the kill")
        assert monitor.execute(f"SELECT count(*), coalesce(sum(user_id), 0) {in_file}").fetchone() == before

    run = wait_for_run(api, "load_candidates_inference", dag_run_id=run.dag_run_id)
    assert_succeeded(api, run)
    [ti] = api.run_task_instances("load_candidates_inference", run.dag_run_id)
    assert ti.try_number == 2 and ti.hostname != victim
    with stack.warehouse() as conn:
        got = conn.execute(f"SELECT count(*), sum(user_id), sum(item_id) {in_file}").fetchone()
    assert got == (len(frame), int(frame["user_id"].sum()), int(frame["item_id"].sum()))
    stack.compose("up", "-d", "--wait", "--scale", "airflow-worker=2")  # the killed worker back


def day_outputs(data: Path, day: dt.date) -> dict[str, bytes]:
    """A day's song-plays outputs by relative path (Spark's part-file id left out), decompressed:
    what a rerun must write again. Spark's .crc files are left out."""
    import gzip
    import re

    folder = data / "output" / f"{day:%Y/%m/%d}"
    return {
        re.sub(r"part-\d+-[0-9a-f-]+", "part", str(p.relative_to(folder))):
            gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")
    }  # fmt: skip


def test_a_spark_job_whose_worker_container_is_killed_is_rerun_by_the_other_worker(stack):
    """#14 (c): song_plays' dataset_gen of a finished run cleared, its outputs removed, and the
    Celery worker container running it (the Spark driver) SIGKILLed while the job runs on the Spark
    worker: nothing of it counts as done, the retry runs on the other worker and writes what the
    clean run wrote."""
    stack.compose("up", "-d", "--wait", "--scale", "airflow-worker=2")  # one to kill, one to retry on
    api = stack.api()
    day = stack.yesterday
    run_id = f"deploy_test_{day}"  # run clean by the log test: its outputs are what the rerun must write
    data = stack.tree / "data"
    clean = day_outputs(data, day)
    assert {"dataset/_SUCCESS", "counts_by_zip_sub/_SUCCESS"} <= set(clean), sorted(clean)
    shutil.rmtree(data / "output" / f"{day:%Y/%m/%d}")
    def task() -> TaskInstanceResponse:
        return api.task_instances.get_task_instance("song_plays", run_id, "dataset_gen")

    tries_before = task().try_number
    api.task_instances.post_clear_task_instances("song_plays", ClearTaskInstancesBody(
        dag_run_id=run_id, task_ids=[ClearTaskInstancesBodyTaskIdsInner("dataset_gen")], dry_run=False,
        only_failed=False, reset_dag_runs=True,
    ))  # fmt: skip
    master_json = f"http://127.0.0.1:{stack.env['SPARK_MASTER_UI_PORT']}/json/"
    deadline = time.monotonic() + 600
    while True:  # the job is running on the Spark worker: its driver lives in the Celery worker
        with urllib.request.urlopen(master_json, timeout=30) as response:
            if [app for app in json.load(response)["activeapps"] if app["state"] == "RUNNING"]:
                break
        assert time.monotonic() < deadline, "the Spark job was never seen running"
        time.sleep(0.2)
    victim = task().hostname
    subprocess.run(["docker", "kill", "--signal", "KILL", victim], check=True, capture_output=True)
    assert not (data / "output" / f"{day:%Y/%m/%d}" / "dataset" / "_SUCCESS").exists()

    assert_succeeded(api, wait_for_run(api, "song_plays", dag_run_id=run_id))
    ti = task()
    assert ti.try_number == tries_before + 2 and ti.hostname != victim  # the cleared try, then its retry
    assert day_outputs(data, day) == clean  # the killed attempt's temporaries removed, the rest equal
    stack.compose("up", "-d", "--wait", "--scale", "airflow-worker=2")  # the killed worker back


def load_waiting_for(holder_pid: int, stack: Stack, timeout: float = 600) -> int:
    """Waits until a statement on candidates_inference waits for the lock that session
    `holder_pid` holds; returns the waiting session's pid."""
    with stack.warehouse() as monitor:
        deadline = time.monotonic() + timeout
        while True:
            waiting = monitor.execute(
                "SELECT pid FROM pg_stat_activity WHERE %s = ANY (pg_blocking_pids(pid)) "
                "AND query ILIKE '%%candidates_inference%%'", (holder_pid,)
            ).fetchone()  # fmt: skip
            if waiting:
                return waiting[0]
            assert time.monotonic() < deadline, "the load never reached its merge"
            time.sleep(0.1)


def test_a_load_whose_warehouse_restarts_mid_load_is_retried_and_no_row_holds_part_of_it(stack, tmp_path):
    """#14 (c): the warehouse container restarted (its stop signal is SIGINT: Postgres' fast
    shutdown) inside a load's transaction: its 336,400 rows sent by COPY to its staging table, its
    merge into the table waiting behind a lock this test holds (so that the restart strikes inside
    the load whatever the machine's speed: racing the COPY alone, the restart once came after the
    load had committed). The load changes every row of the file; until its retry no row shows the
    change, after it every row does."""
    import pandas as pd

    subprocess.run([sys.executable, "-m", "sandbox.generate_recsys", "--out", str(tmp_path), "--scale", "50"],
                   cwd=ROOT, env={**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}"}, check=True)  # fmt: skip
    frame = pd.read_parquet(tmp_path / "candidates_inference.parquet")
    frame["als_score"] += 1.0  # every row of the file changes: a partial merge would show
    frame.to_parquet(stack.tree / "postgres_data" / "candidates_inference.parquet", index=False)
    in_file = f"FROM candidates_inference WHERE rec_id BETWEEN {frame['rec_id'].min()} AND {frame['rec_id'].max()}"
    changed = f"SELECT count(*) {in_file} AND als_score >= 1"
    with stack.warehouse() as conn:
        assert conn.execute(changed).fetchone()[0] == 0
    api = stack.api()
    holder = stack.warehouse()
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE candidates_inference IN SHARE MODE")  # no writer gets past it
    run = trigger(api, "load_candidates_inference")
    load_waiting_for(holder.info.backend_pid, stack)
    stack.compose("restart", "warehouse")  # ends the holder's session too
    holder.close()
    stack.compose("up", "-d", "--wait", "warehouse")  # healthy again
    with stack.warehouse() as conn:
        assert conn.execute(changed).fetchone()[0] == 0, "a part of the interrupted load is visible"

    run = wait_for_run(api, "load_candidates_inference", dag_run_id=run.dag_run_id)
    assert_succeeded(api, run)
    [ti] = api.run_task_instances("load_candidates_inference", run.dag_run_id)
    assert ti.try_number == 2  # the lost connection was transient: retried, not failed
    first_try = api.task_log("load_candidates_inference", run.dag_run_id, ti.task_id, 1, ti.map_index)
    assert "OperationalError" in first_try, first_try[-2000:]
    with stack.warehouse() as conn:
        assert conn.execute(changed).fetchone()[0] == len(frame)
        assert conn.execute(f"SELECT count(*) {in_file}").fetchone()[0] == len(frame)


def test_runs_in_flight_when_the_scheduler_container_is_killed_finish_once_it_is_back(stack):
    """#14 (c): the scheduler container SIGKILLed while three runs have tasks running on the
    Celery workers, then started again: every run succeeds, and each weekly run's success message
    is sent exactly once."""
    api = stack.api()
    dags = ("hello_world", "police_staging", "uber_trip_time")
    runs = {dag: trigger(api, dag) for dag in dags}
    def in_flight() -> bool:
        states = [api.dag_runs.get_dag_run(dag, run.dag_run_id).state for dag, run in runs.items()]
        tasks = [t.state for dag, run in runs.items() for t in api.run_task_instances(dag, run.dag_run_id)]
        return states == ["running"] * len(runs) and "running" in tasks

    deadline = time.monotonic() + 600
    while not in_flight():
        assert time.monotonic() < deadline, "the three runs were never in flight at once"
        time.sleep(0.5)
    [scheduler] = stack.services()["airflow-scheduler"]
    subprocess.run(["docker", "kill", "--signal", "KILL", scheduler["Name"]], check=True, capture_output=True)
    stack.compose("up", "-d", "--wait", "airflow-scheduler")

    for dag, run in runs.items():
        assert_succeeded(api, wait_for_run(api, dag, dag_run_id=run.dag_run_id))
    # The weekly DAGs say when they succeed. Airflow 3 runs a DAG's callback in the dag processor,
    # after the scheduler has queued it, so the message may come a little after the run's state.
    def sent_by_the_weekly_dags() -> dict[str, list[str]]:
        texts = telegram_texts(stack)  # one read of the Bot API's log per look
        return {dag: [t for t in texts if t.startswith(f"DAG {dag} with run_id={runs[dag].dag_run_id} ")]
                for dag in ("hello_world", "police_staging")}  # fmt: skip

    deadline, sent = time.monotonic() + 300, sent_by_the_weekly_dags()
    while not all(sent.values()) and time.monotonic() < deadline:
        time.sleep(2)
        sent = sent_by_the_weekly_dags()
    for dag, texts in sent.items():
        assert len(texts) == 1 and "finished successfully" in texts[0], (dag, texts)


def test_down_and_up_keeps_tables_runs_and_objects(stack):
    api = stack.api()
    runs_before = {r.dag_run_id for r in api.dag_runs.get_dag_runs("~", limit=1000).dag_runs}
    with stack.warehouse() as conn:
        rows_before = conn.execute("SELECT count(*) FROM candidates_ranked").fetchone()[0]
    objects_before = sorted(o["Key"] for o in stack.s3().list_objects_v2(Bucket="page-views-staging")["Contents"])
    stack.timed("down", "down")
    stack.timed("up again", "up", "-d", "--wait")
    api = stack.api()
    runs_after = {r.dag_run_id for r in api.dag_runs.get_dag_runs("~", limit=1000).dag_runs}
    assert runs_before <= runs_after
    with stack.warehouse() as conn:
        assert conn.execute("SELECT count(*) FROM candidates_ranked").fetchone()[0] == rows_before
    objects_after = sorted(o["Key"] for o in stack.s3().list_objects_v2(Bucket="page-views-staging")["Contents"])
    assert objects_after == objects_before and len(objects_before) >= 2


def test_down_volumes_leaves_nothing_behind(stack):
    assert docker_objects() - stack.objects_before  # the stack's containers, volumes, network
    stack.timed("down --volumes", "down", "--volumes", "--remove-orphans")
    assert docker_objects() - stack.objects_before == set()
