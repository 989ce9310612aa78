"""The one-machine runner: the project's DAGs on real Airflow 3 with embedded parts, no Docker.

    python -m sandbox.runner demo [--only ID,...] [--date YYYY-MM-DD[..YYYY-MM-DD]] [--conf KEY=VALUE ...]
    python -m sandbox.runner up          # keep the stack running, print the UI address and login

`demo` starts what is missing (an embedded Postgres with the Airflow metadata and warehouse
databases, the local stand-ins the selected DAGs need, then the Airflow api-server, scheduler,
dag-processor and triggerer), asks Airflow through its REST API for each selected DAG's run of
one logical date, or for one backfill over a range of dates, lets the scheduler start the
asset-scheduled DAGs (sandbox/runs.py), shows progress, prints a summary and stops everything it
started. It exits 0 only when every run succeeded (or had succeeded before, for a backfill).

Every outside system is an Airflow connection with a fixed id. The runner defines a connection
only when the environment has no `AIRFLOW_CONN_<ID>` for it, and starts a stand-in only for the
connections it defines, so any part can be pointed at a real system. The same holds for the
metadata database (`AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_client.client.models import DAGPatchBody

from sandbox.airflow_api import AirflowApi
from sandbox.embedded_postgres import EmbeddedPostgres, free_port
from sandbox.fake_telegram import FakeTelegram
from sandbox.runs import OK_STATES, RunResult, end_unfinished, log, run_dags

ROOT = Path(__file__).resolve().parents[1]
RECSYS_LOAD_DAGS = {
    "load_default_recs",
    "load_online_recs",
    "load_candidates_train",
    "load_candidates_inference",
}
ADMIN_USER = "admin"
AIRFLOW_PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")
TELEGRAM_DEMO_TOKEN = "123456:local-demo-token"
TELEGRAM_DEMO_CHAT = "1001"


@dataclass
class Stack:
    """Everything the runner started, so that all of it can be stopped again."""

    state_dir: Path
    logs_dir: Path
    api_port: int
    admin_password: str
    env: dict[str, str] = field(default_factory=dict)
    postgres: EmbeddedPostgres | None = None
    embedded_warehouse: bool = False
    telegram: FakeTelegram | None = None
    file_server: Any = None
    estimates_api: Any = None
    s3_server: Any = None
    s3_url: str = ""
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _lock: Any = None
    stand_ins: list[str] = field(default_factory=list)

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.api_port}"

    def api(self) -> AirflowApi:
        return AirflowApi(self.ui_url, ADMIN_USER, self.admin_password)

    def _prepare_inputs(self, dag_ids: list[str], dates: list[dt.datetime]) -> None:
        """The inputs of the selected DAGs, where the runner's own stand-in holds them: generated
        files where they are missing (never over a file that is there: users drop real files in
        the same folders). A system of your own keeps whatever it holds."""
        from steps.core.settings import load_settings

        settings = load_settings(self.env)
        if "song_plays" in dag_ids and self.file_server and not self.env.get("SONG_PLAYS_SOURCE_DIR"):
            from sandbox.generate_song_plays import generate

            generate(self.file_server.folder, dates[0].date(), dates[-1].date())
            folder = self.file_server.folder
            self.stand_ins.append(f"song plays: generated files for {_days(dates)} in {folder}")
        if "user_page_views" in dag_ids and self.s3_server:
            from sandbox.generate_page_views import generate, upload

            bucket = settings.page_views_bucket
            upload(generate(dates[0].date(), dates[-1].date()), bucket, self.s3_url, "testing", "testing")
            self.stand_ins.append(f"page views: bucket {bucket} seeded for {_days(dates)}")
        if "police_staging" in dag_ids:
            self._seed_police_source()
        if RECSYS_LOAD_DAGS & set(dag_ids):
            from sandbox.generate_recsys import FILES, generate

            folder = settings.postgres_data_dir
            missing = [name for name in FILES if not (folder / name).exists()]
            if missing:
                import shutil
                import tempfile

                with tempfile.TemporaryDirectory() as scratch:
                    generate(Path(scratch))
                    folder.mkdir(parents=True, exist_ok=True)
                    for name in missing:
                        shutil.move(Path(scratch) / name, folder / name)
                self.stand_ins.append(f"recommender inputs: generated {', '.join(missing)} in {folder}")
            else:
                self.stand_ins.append(f"recommender inputs: the files in {folder}")

    def dags_reporting_success(self) -> set[str] | None:
        """The DAGs with a success callback, from their serialized form in the metadata database
        (what the scheduler runs); None when that cannot be read (a database of another kind)."""
        import psycopg

        uri = self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg://", "postgresql://")
        try:
            with psycopg.connect(uri, connect_timeout=5) as conn:
                rows = conn.execute(
                    "SELECT dag_id, data IS NULL, "
                    "coalesce((data -> 'dag' ->> 'has_on_success_callback')::boolean, false) "
                    "FROM serialized_dag"
                ).fetchall()
        except (psycopg.Error, ValueError):
            return None
        if any(compressed for _, compressed, _ in rows):
            return None  # core.compress_serialized_dags: not readable in SQL
        return {dag_id for dag_id, _, reports in rows if reports}

    def _seed_police_source(self) -> None:
        """The source schema the project's police populate scripts read, generated into the
        embedded warehouse (a warehouse of your own keeps whatever source it has)."""
        if not self.embedded_warehouse:
            self.stand_ins.append("police_source: the warehouse's own schema police_source, as it is")
            return
        import psycopg

        from sandbox.generate_police_source import SCHEMA, generate

        with psycopg.connect(self.env["AIRFLOW_CONN_WAREHOUSE"]) as conn:
            counts = generate(conn)
        shown = ", ".join(f"{table} {n}" for table, n in counts.items())
        self.stand_ins.append(f"police source: generated schema {SCHEMA} in the warehouse ({shown})")

    # --- stand-ins, one per connection id (STAND_INS): each returns the connection's value ----

    def stand_in_warehouse(self) -> str:
        self.embedded_warehouse = True
        postgres = self._embedded_postgres()
        postgres.create_database("warehouse")
        self.stand_ins.append(f"warehouse: embedded Postgres, database warehouse, port {postgres.port}")
        return postgres.uri("warehouse")

    def stand_in_spark(self) -> str:
        # Spark in local mode needs no service: spark-submit runs the job in its own JVM.
        self.stand_ins.append("spark_default: local[*] (spark-submit from the virtualenv)")
        return json.dumps({"conn_type": "spark", "host": "local[*]"})

    def stand_in_telegram(self) -> str:
        messages = self.state_dir / "telegram_messages.jsonl"
        messages.unlink(missing_ok=True)
        self.telegram = FakeTelegram(TELEGRAM_DEMO_TOKEN, messages_file=messages).start()
        self.stand_ins.append(f"telegram_default: fake Bot API at {self.telegram.base_url}")
        return json.dumps({
            "conn_type": "generic", "host": TELEGRAM_DEMO_CHAT, "password": TELEGRAM_DEMO_TOKEN,
            "extra": {"base_url": self.telegram.base_url},
        })  # fmt: skip

    def stand_in_song_plays_source(self) -> str:
        """An HTTP file server with the workshop's file names: SONG_PLAYS_SOURCE_DIR as it is, or
        a folder of the runner's own that _prepare_inputs fills for the dates to run."""
        from sandbox.file_server import FileServer

        given = self.env.get("SONG_PLAYS_SOURCE_DIR")
        folder = Path(given).resolve() if given else self.state_dir / "song_plays_source"
        folder.mkdir(parents=True, exist_ok=True)
        self.file_server = FileServer(folder).start()
        self.stand_ins.append(f"song_plays_http: file server at {self.file_server.url} serving {folder}")
        return json.dumps({"conn_type": "http", "host": self.file_server.url})

    def stand_in_s3(self) -> str:
        """A local S3-compatible server (moto); _prepare_inputs seeds it."""
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        port = free_port()
        self.s3_server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.s3_server.start()
        self.s3_url = f"http://127.0.0.1:{port}"
        self.stand_ins.append(f"aws_default: local S3 server at {self.s3_url}")
        return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                           "extra": {"endpoint_url": self.s3_url, "region_name": "us-east-1"}})  # fmt: skip

    def stand_in_estimates_api(self) -> str:
        """The simulator of the ride estimates API, with a token of its own."""
        from sandbox.estimates_api import EstimatesApi

        token = secrets.token_urlsafe(16)
        self.estimates_api = EstimatesApi(token).start()
        self.stand_ins.append(f"uber_api: estimates API simulator at {self.estimates_api.url}")
        return json.dumps({"conn_type": "http", "host": self.estimates_api.url, "password": token})

    def start(self, dag_ids: list[str], dates: list[dt.datetime], use_schedules: bool = True) -> Stack:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._claim_state_dir()
        self.env = self._base_env()
        if not use_schedules:
            # A demo runs the dates it is asked for: no scheduled runs besides them.
            self.env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
        self._define_metadata_database()
        for conn_id, stand_in in STAND_INS.items():
            if connection_variable(conn_id) not in self.env:
                self.env[connection_variable(conn_id)] = stand_in(self)
        self._prepare_inputs(dag_ids, dates)
        celery = self.env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        if celery:
            self._start_celery_broker()
        self._migrate()
        for name in AIRFLOW_PROCESSES:
            self._spawn(
                name, ["airflow", name] + (["--port", str(self.api_port)] if name == "api-server" else [])
            )
        if celery:
            # The distributed mode of docker-compose.yaml: tasks run in a separate worker process.
            self._spawn("celery-worker", ["airflow", "celery", "worker", "--concurrency", "2"])
        self._wait_healthy(timeout=180)
        return self

    def _claim_state_dir(self) -> None:
        """One runner per state folder and port: a second `make demo` would otherwise share the
        embedded databases of the first, or find its port taken half-way through starting."""
        import fcntl
        import socket

        # Held (open and locked) until this process ends, whichever way it ends.
        self._lock = open(self.state_dir / "runner.lock", "a+")  # noqa: SIM115
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            raise SystemExit(
                f"another runner ({self._lock.read().strip() or 'pid unknown'}) uses {self.state_dir}: "
                "stop it first (Ctrl-C), or give this one its own --state-dir"
            ) from None
        self._lock.truncate(0)
        self._lock.write(f"pid {os.getpid()}, port {self.api_port}\n")
        self._lock.flush()
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.api_port)) == 0:  # something answers there
                raise SystemExit(f"port {self.api_port} is taken (another Airflow?): pick one, --api-port")

    def end_left_behind(self, dag_ids: list[str]) -> None:
        """Runs a demo left queued or running when it was stopped (Ctrl-C, a killed terminal) would
        block the next demo's runs of the same day: end them, and say so. Only in the embedded
        metadata database, which no one else uses while this runner holds the state folder."""
        if not self._uses_embedded_metadata():
            return
        why = "ended by the runner: the demo that started it stopped"
        for line in end_unfinished(self.api(), dag_ids, why):
            log(f"left behind by an earlier demo: {line}")

    def schedule_from_assets(self, keep: list[str]) -> None:
        """Let the scheduler start the runs that asset events call for. A demo's scheduler runs
        without its job schedule (no run but the demo's); it is restarted with it, after pausing
        every DAG but `keep`, so that no time-scheduled DAG gets a run of its own meanwhile."""
        if self.env.get("AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE") != "False":
            return
        api = self.api()
        for dag in api.dags.get_dags(paused=False, limit=1000).dags:
            if dag.dag_id not in keep:
                api.dags.patch_dag(dag.dag_id, DAGPatchBody(is_paused=True))
        _terminate(self.processes.pop("scheduler"))
        self.env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "True"
        self._spawn("scheduler", ["airflow", "scheduler"])
        log("scheduler restarted with its job schedule on (time-scheduled DAGs paused): assets start runs")

    def _start_celery_broker(self) -> None:
        """The CeleryExecutor's result backend is the metadata database; its broker a local Redis
        (Debian's redis-server) unless AIRFLOW__CELERY__BROKER_URL names one."""
        metadata = self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace(
            "postgresql+psycopg://", "postgresql://"
        )
        self.env.setdefault("AIRFLOW__CELERY__RESULT_BACKEND", f"db+{metadata}")
        if "AIRFLOW__CELERY__BROKER_URL" in self.env:
            return
        import shutil

        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise RuntimeError(
                "the CeleryExecutor needs Redis: install Debian's redis-server "
                "or set AIRFLOW__CELERY__BROKER_URL"
            )
        port = free_port()
        self._spawn(
            "redis",
            [redis_server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        )
        self.env["AIRFLOW__CELERY__BROKER_URL"] = f"redis://127.0.0.1:{port}/0"
        self.stand_ins.append(f"Celery broker: redis-server on 127.0.0.1:{port}")

    def stop(self) -> None:
        _terminate(*reversed(self.processes.values()))
        self.processes.clear()
        if self.telegram:
            self.telegram.stop()
            self.telegram = None
        for server in (self.file_server, self.estimates_api, self.s3_server):
            if server is not None:
                server.stop()
        self.file_server = self.estimates_api = self.s3_server = None
        if self.postgres:
            self.postgres.stop()
            self.postgres = None

    # --- pieces ------------------------------------------------------------------------------

    def _base_env(self) -> dict[str, str]:
        airflow_home = self.state_dir / "airflow"
        airflow_home.mkdir(parents=True, exist_ok=True)
        secrets_file = self.state_dir / "secrets.json"
        if not secrets_file.exists():
            from cryptography.fernet import Fernet

            secrets_file.write_text(
                json.dumps(
                    {
                        "jwt_secret": secrets.token_urlsafe(32),
                        "fernet_key": Fernet.generate_key().decode(),
                    }
                )
            )
            secrets_file.chmod(0o600)
        keys = json.loads(secrets_file.read_text())
        # The simple auth manager reads passwords from this file: writing it first sets a known login.
        passwords = airflow_home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({ADMIN_USER: self.admin_password}))
        env = dict(os.environ)
        venv_bin = str(Path(sys.executable).parent)
        env.update(
            {
                "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "plugins"), env.get("PYTHONPATH")])),
                "AIRFLOW_HOME": str(airflow_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": env.get("AIRFLOW__CORE__EXECUTOR", "LocalExecutor"),
                "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "4"),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
                "AIRFLOW__API__PORT": str(self.api_port),
                # Without the base URL on a port other than 8080, tasks cannot reach the execution API.
                "AIRFLOW__API__BASE_URL": self.ui_url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.ui_url}/execution/",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs_dir),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            }
        )
        return env

    def _embedded_postgres(self) -> EmbeddedPostgres:
        """One embedded server for the metadata and warehouse databases, started when one is needed."""
        if self.postgres is None:
            self.postgres = EmbeddedPostgres(self.state_dir / "postgres", free_port()).start()
            log(f"embedded Postgres on 127.0.0.1:{self.postgres.port} ({self.postgres.pgdata})")
        return self.postgres

    def _define_metadata_database(self) -> None:
        if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in self.env:
            return
        postgres = self._embedded_postgres()
        postgres.create_database("airflow")
        self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = postgres.uri("airflow", driver="postgresql+psycopg")

    def _migrate(self) -> None:
        import airflow

        # Skipping a no-op migration makes the second start several seconds faster.
        stamp = self.state_dir / "airflow" / f"migrated-{airflow.__version__}"
        embedded = self.postgres is not None and "postgres" in self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        if embedded and stamp.exists() and self._uses_embedded_metadata():
            return
        log("migrating the Airflow metadata database")
        result = subprocess.run(
            ["airflow", "db", "migrate"], env=self.env, capture_output=True, text=True, cwd=ROOT
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        if embedded and self._uses_embedded_metadata():
            stamp.write_text("ok\n")

    def _uses_embedded_metadata(self) -> bool:
        return (
            self.postgres is not None
            and f":{self.postgres.port}/airflow" in self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        )

    def _spawn(self, name: str, command: list[str]) -> None:
        with open(self.logs_dir / f"{name}.log", "ab") as out:  # the child keeps its own copy
            self.processes[name] = subprocess.Popen(
                command,
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped with all its children
            )

    def _wait_healthy(self, timeout: float) -> None:
        api = self.api()
        deadline = time.monotonic() + timeout
        while not api.healthy():
            for name, process in self.processes.items():
                if process.poll() is not None:
                    tail = (self.logs_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"airflow {name} exited with {process.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Airflow API did not answer on {self.ui_url} within {timeout:.0f}s")
            time.sleep(1)
        log(f"Airflow is up: {self.ui_url} (login {ADMIN_USER} / {self.admin_password})")


def connection_variable(conn_id: str) -> str:
    """The environment variable that defines an Airflow connection (and replaces its stand-in)."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


# Every outside system the DAGs reach, by the id of their Airflow connection, and the stand-in the
# runner starts for it when the environment has no AIRFLOW_CONN_<ID> (set it to use the real system).
# tests/deploy/test_compose.py checks that every connection id used in dags/ and plugins/ is here.
STAND_INS: dict[str, Callable[[Stack], str]] = {
    "warehouse": Stack.stand_in_warehouse,
    "spark_default": Stack.stand_in_spark,
    "telegram_default": Stack.stand_in_telegram,
    "song_plays_http": Stack.stand_in_song_plays_source,
    "aws_default": Stack.stand_in_s3,
    "uber_api": Stack.stand_in_estimates_api,
}


def _days(dates: list[dt.datetime]) -> str:
    return f"{dates[0]:%Y-%m-%d}..{dates[-1]:%Y-%m-%d}"


def _terminate(*processes: subprocess.Popen) -> None:
    """Stop the processes (each its own process group) together: SIGTERM to all, then up to 20 s
    for all to exit, then SIGKILL to those left. One at a time, a demo's stop took 10 s."""

    def signal_all(signum: int) -> None:
        for process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signum)

    signal_all(signal.SIGTERM)
    deadline = time.monotonic() + 20
    while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    signal_all(signal.SIGKILL)
    for process in processes:
        process.wait(timeout=10)


# --- output ------------------------------------------------------------------------------------


def print_summary(results: list[RunResult], stack: Stack, messages: list[dict]) -> None:
    print()
    header = f"{'DAG':<28} {'date':<10} {'state':<11} {'started by':<12} {'time':>6}  tasks"
    print(header)
    print("-" * max(len(header), 78))
    for r in results:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(r.task_counts().items()))
        row = f"{r.dag_id:<28} {r.day:<10} {r.shown_state:<11} {r.started_by:<12} {r.seconds:>5.0f}s"
        print(f"{row}  {counts}")
        for task_id, value in r.outputs.items():
            nested = (
                {k: v for k, v in value.items() if isinstance(v, dict)} if isinstance(value, dict) else {}
            )
            flat = {k: v for k, v in value.items() if k not in nested} if nested else value
            print(f"{'':<39} {task_id}: {_short(flat)}")
            for key, mapping in nested.items():  # e.g. rows per table: one line each
                print(f"{'':<41} {key}:")
                for name, count in sorted(mapping.items()):
                    print(f"{'':<43} {name:<36} {_short(count):>10}")
    print()
    for r in results:
        if r.error:
            print(f"{r.label} ({r.run_id}):\n{r.error}")
    if messages:
        print(f"Telegram messages received by the fake Bot API ({len(messages)}):")
        for message in messages:
            print("  " + message["text"].replace("\n", "  "))
    print(f"Web UI: {stack.ui_url}  task logs: {stack.logs_dir}")


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) < 400 else text[:400] + "..."


def parse_conf(pairs: list[str]) -> dict:
    conf = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--conf expects KEY=VALUE, got {pair!r}")
        try:
            conf[key] = json.loads(raw)  # numbers, booleans and lists keep their type
        except json.JSONDecodeError:
            conf[key] = raw
    return conf


def discover_dags() -> list[str]:
    """The DAG ids of dags/, read from the files (no import): `dag_id="..."` in each."""
    import re

    ids = []
    for path in sorted((ROOT / "dags").glob("*.py")):
        ids += re.findall(r'dag_id="([A-Za-z0-9_]+)"', path.read_text())
    return ids


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.runner",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=("demo", "up"),
        default="demo",
        help="demo: run DAGs and stop (default); up: keep the stack running",
    )
    parser.add_argument(
        "--only", help="comma-separated DAG ids (default: every DAG in dags/ but the manual-only ones)"
    )
    parser.add_argument(
        "--date",
        help="logical date to run, YYYY-MM-DD or ISO time (default: yesterday, UTC); "
        "FROM..TO: one Airflow backfill per DAG over the range",
    )
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="DAG param, for each selected DAG that declares it; repeatable; VALUE is JSON or text",
    )
    parser.add_argument("--summary-json", type=Path, help="also write the summary here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the stack running after the runs")
    parser.add_argument(
        "--api-port",
        type=int,
        default=int(os.environ.get("AIRFLOW_PORT", 8080)),
        help="port of the Airflow API and web UI (default: $AIRFLOW_PORT or 8080)",
    )
    parser.add_argument(
        "--sensor-timeout",
        type=int,
        default=60,
        help="seconds sensors wait for missing input before the run is skipped (default 60)",
    )
    parser.add_argument(
        "--reprocess-all",
        action="store_true",
        help="with a --date range: run every day again (default: leave the days that succeeded alone)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="give up waiting after this many seconds")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=ROOT / ".local",
        help="where the embedded databases and Airflow's home live (default .local/)",
    )
    parser.add_argument("--logs-dir", type=Path, default=ROOT / "logs", help="Airflow logs (default logs/)")
    parser.add_argument(
        "--password",
        default=os.environ.get("AIRFLOW_ADMIN_PASSWORD", "admin"),
        help="password of the admin login (default: $AIRFLOW_ADMIN_PASSWORD or admin)",
    )
    return parser.parse_args(argv)


def logical_dates(text: str | None) -> list[dt.datetime]:
    """`YYYY-MM-DD` (or an ISO time), or a range `FROM..TO` of days; default: yesterday, UTC."""
    if not text:
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return [today - dt.timedelta(days=1)]
    first, _, last = text.partition("..")
    start, end = _aware(first), _aware(last or first)
    if end < start:
        raise SystemExit(f"--date {text}: the range ends before it starts")
    days = []
    while start <= end:
        days.append(start)
        start += dt.timedelta(days=1)
    return days


def _aware(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"--date: {text!r} is not YYYY-MM-DD or an ISO date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    known = discover_dags()
    dag_ids = args.only.split(",") if args.only else known
    unknown = sorted(set(dag_ids) - set(known))
    if unknown:
        print(f"unknown DAG id(s): {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    conf, dates = parse_conf(args.conf), logical_dates(args.date)
    stack = Stack(args.state_dir.resolve(), args.logs_dir.resolve(), args.api_port, args.password)
    # SIGTERM (e.g. from make or CI) stops the stack as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    # Ctrl-C too, even when this process was started with SIGINT ignored (as a shell does for a
    # command it runs in the background): the runner must always get to end its runs and stop.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    results: list[RunResult] = []  # filled as runs are asked for: an interruption ends them
    try:
        stack.start(dag_ids, dates, use_schedules=args.command == "up")
        for line in stack.stand_ins:
            log(f"stand-in {line}")
        if args.command == "up":
            return _serve(stack)
        stack.end_left_behind(known)
        run_dags(
            stack.api(), dag_ids, dates, conf, sensor_timeout=args.sensor_timeout, timeout=args.timeout,
            selected=bool(args.only), reprocess_all=args.reprocess_all,
            schedule_from_assets=stack.schedule_from_assets, results=results,
        )  # fmt: skip
        messages = _telegram_messages(stack, results)
        print_summary(results, stack, messages)
        if args.summary_json:
            args.summary_json.write_text(
                json.dumps(
                    {
                        "logical_dates": [d.isoformat() for d in dates],
                        "ui": stack.ui_url,
                        "runs": [
                            r.__dict__ | {"shown_state": r.shown_state, "task_counts": r.task_counts()}
                            for r in results
                        ],
                        "telegram_messages": [m["text"] for m in messages],
                    },
                    indent=2,
                    default=str,
                )
            )
        # A DAG still waiting for asset events has not failed: its producers said what they did.
        ok = all(r.state in OK_STATES or r.state == "waiting" for r in results)
        if args.keep:
            _serve(stack)
        return 0 if ok else 1
    except KeyboardInterrupt:
        log("interrupted: stopping")
        if args.command == "demo" and stack.processes and any(r.run_id for r in results):
            _end_own_runs(stack, results)
        return 130
    finally:
        stack.stop()


def _end_own_runs(stack: Stack, results: list[RunResult]) -> None:
    """Runs of this demo must not stay `running` in the metadata database once Airflow stops."""
    try:
        dag_ids = sorted({r.dag_id for r in results if r.run_id})
        for line in end_unfinished(stack.api(), dag_ids, "ended by the runner: its demo was interrupted"):
            log(f"interrupted: {line}")
    except Exception as err:  # Airflow may be half-stopped already: the next demo ends them
        log(f"interrupted: could not end this demo's runs ({err}); the next demo will")


def _telegram_messages(stack: Stack, results: list[RunResult], wait: float = 90) -> list[dict]:
    """Messages the fake Bot API got. DAG callbacks run in the dag-processor a while after the run
    ends (longer on a busy machine), so wait, a bounded time, for the message of every run that
    sends one: every failed run, and the successful runs of DAGs with a success callback."""
    if stack.telegram is None:
        return []
    reporting = stack.dags_reporting_success()
    expected = [r for r in results if r.run_id and (
        r.state == "failed" or (r.state == "success" and (reporting is None or r.dag_id in reporting)))]

    def unreported() -> list[str]:
        texts = [m["text"] for m in stack.telegram.messages]
        return [r.dag_id for r in expected
                if not any(f"DAG {r.dag_id} with run_id={r.run_id} " in text for text in texts)]  # fmt: skip

    deadline = time.monotonic() + wait
    while unreported() and time.monotonic() < deadline:
        time.sleep(1)
    if unreported():
        log(f"no Telegram message after {wait:.0f}s for: {', '.join(unreported())}")
    return list(stack.telegram.messages)


def _serve(stack: Stack) -> int:
    print(f"\nAirflow runs at {stack.ui_url}  login: {ADMIN_USER} / {stack.admin_password}")
    print("Press Ctrl-C to stop everything.", flush=True)
    while True:
        for name, process in stack.processes.items():
            if process.poll() is not None:
                log(
                    f"airflow {name} exited with {process.returncode}; see {stack.logs_dir / (name + '.log')}"
                )
                return 1
        time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
