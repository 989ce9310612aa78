"""The deployment's files, checked without a Docker engine: the compose file through the real compose
parser and the compose-spec schema, and the consistency of versions, connections and variables
between docker-compose.yaml, the Dockerfile, the lock, the runner and the code. (test_stack.py runs
the deployment itself.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sandbox.runner import STAND_INS, connection_variable
from tests.deploy.images import compose_command
from tools import new_env

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
# Connections the deployment leaves to the user's .env (messages are only logged without it).
OPTIONAL_CONNECTIONS = {"telegram_default"}


def compose_config(compose_file: Path, env_file: Path) -> subprocess.CompletedProcess:
    """`docker compose config`, with no variable from this process's environment leaking in."""
    return subprocess.run(
        [*compose_command([compose_file], env_file), "config"],
        capture_output=True, text=True, cwd=compose_file.parent, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip


@pytest.fixture(scope="module")
def env_file(tmp_path_factory):
    """A .env as `make env` writes it: .env.example with fresh secrets."""
    path = tmp_path_factory.mktemp("env") / ".env"
    new_env.main(["--out", str(path)])
    return path


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def resolved(env_file):
    result = compose_config(COMPOSE_FILE, env_file)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def lock_version(package: str) -> str:
    found = re.search(rf"^{re.escape(package)}==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M)
    assert found, f"{package} is not in requirements.lock"
    return found[1]


def test_compose_file_passes_the_real_parser(resolved):
    expected = {
        "postgres", "warehouse", "redis", "s3", "s3-init", "spark-master", "spark-worker",
        "song-plays-source", "estimates-api",
        "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker",
        "airflow-triggerer", "airflow-init",
    }  # fmt: skip
    assert set(resolved["services"]) == expected


def test_compose_file_passes_the_compose_spec_schema():
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_parser_rejects_an_undefined_service(tmp_path, compose, env_file):
    broken = dict(compose)
    broken["services"] = dict(compose["services"])
    broken["services"]["spark-worker"] = {
        **compose["services"]["spark-worker"],
        "depends_on": ["no-such-service"],
    }
    path = tmp_path / "docker-compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = compose_config(path, env_file)
    assert result.returncode != 0
    assert 'depends on undefined service "no-such-service"' in result.stderr


def test_secrets_have_no_default_and_compose_refuses_without_them(tmp_path):
    text = COMPOSE_FILE.read_text()
    defaults = re.findall(r"\$\{(\w*(?:PASSWORD|SECRET|FERNET|TOKEN)\w*):?-", text)
    assert defaults == []
    (tmp_path / "empty.env").write_text("")
    result = compose_config(COMPOSE_FILE, env_file=tmp_path / "empty.env")
    assert result.returncode != 0
    assert "required variable" in result.stderr and "is missing a value" in result.stderr


def test_env_example_leaves_every_secret_to_the_user():
    """A copied .env.example must not start: a placeholder secret would pass the ${VAR:?} guards."""
    result = compose_config(COMPOSE_FILE, ENV_EXAMPLE)
    assert result.returncode != 0 and "is missing a value" in result.stderr
    values = dict(re.findall(r"^(\w+)=(.*)$", ENV_EXAMPLE.read_text(), re.M))
    secrets = [name for name in values if re.search(r"PASSWORD|SECRET|FERNET|TOKEN", name)]
    assert len(secrets) >= 8
    assert {name: values[name] for name in secrets if values[name]} == {}


def test_make_env_fills_every_secret_with_a_fresh_valid_value(env_file, tmp_path):
    from cryptography.fernet import Fernet

    values = dict(re.findall(r"^(\w+)=(.*)$", env_file.read_text(), re.M))
    Fernet(values["AIRFLOW_FERNET_KEY"].encode())  # raises unless it is a Fernet key
    again = tmp_path / ".env"
    new_env.main(["--out", str(again)])
    other = dict(re.findall(r"^(\w+)=(.*)$", again.read_text(), re.M))
    secrets = [name for name in values if re.search(r"PASSWORD|SECRET|FERNET|TOKEN", name)]
    assert all(len(values[name]) >= 32 and values[name] != other[name] for name in secrets)
    with pytest.raises(SystemExit, match="exists"):
        new_env.main(["--out", str(again)])


def test_every_service_has_a_health_check(resolved):
    missing = [
        name
        for name, service in resolved["services"].items()
        if "healthcheck" not in service and service.get("restart") != "no"  # one-shot init jobs
    ]
    assert missing == []


def test_nothing_is_published_beyond_localhost_by_default(resolved):
    published = {name: s["ports"] for name, s in resolved["services"].items() if s.get("ports")}
    assert {"warehouse", "s3", "spark-master", "airflow-apiserver"} <= set(published)
    for name, ports in published.items():
        for port in ports:
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port}"


def test_airflow_containers_share_secrets_and_execution_api(resolved):
    airflow = {n: s for n, s in resolved["services"].items() if n.startswith("airflow-")}
    for variable in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY"):
        assert len({s["environment"][variable] for s in airflow.values()}) == 1, variable
    urls = {s["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] for s in airflow.values()}
    assert urls == {"http://airflow-apiserver:8080/execution/"}
    assert {s["environment"]["AIRFLOW__CORE__LOAD_EXAMPLES"] for s in airflow.values()} == {"false"}


def test_a_connection_set_in_env_replaces_the_compose_one(env_file, tmp_path):
    custom = tmp_path / ".env"
    custom.write_text(
        env_file.read_text() + "AIRFLOW_CONN_WAREHOUSE=postgresql://etl:pw@db.example:5432/dwh\n"
    )
    result = compose_config(COMPOSE_FILE, custom)
    assert result.returncode == 0, result.stderr
    for name, service in yaml.safe_load(result.stdout)["services"].items():
        if name.startswith("airflow-"):
            assert service["environment"]["AIRFLOW_CONN_WAREHOUSE"] == "postgresql://etl:pw@db.example:5432/dwh"


def test_versions_agree_between_lock_dockerfile_and_compose(resolved):
    dockerfile = (ROOT / "Dockerfile").read_text()
    airflow = re.search(r"ARG AIRFLOW_VERSION=(\S+)", dockerfile)[1]
    python = re.search(r"ARG PYTHON_VERSION=(\S+)", dockerfile)[1]
    assert airflow == lock_version("apache-airflow")
    assert lock_version("pyspark") == lock_version("pyspark-client")
    assert re.search(r'requires-python = ">=(\d+\.\d+)', (ROOT / "pyproject.toml").read_text())[1] == python
    # The slim image, the whole lock without resolving, and proof that the set is consistent.
    assert "FROM apache/airflow:slim-${AIRFLOW_VERSION}-python${PYTHON_VERSION}" in dockerfile
    assert re.search(r"pip install .*--no-deps -r /requirements.lock", dockerfile)
    assert "pip check" in dockerfile
    # Java for Spark 4, at a path that exists on every architecture.
    java_home = re.search(r"ENV JAVA_HOME=(\S+)", dockerfile)[1]
    assert "openjdk-17" in dockerfile and not re.search(r"amd64|arm64|aarch64", java_home)
    # Driver and executors: one image, so one Python and one pyspark.
    images = {resolved["services"][n]["image"] for n in ("airflow-worker", "spark-master", "spark-worker")}
    assert len(images) == 1


def found_in_code(pattern: str, *folders: Path) -> set[str]:
    """The first group of every match of `pattern` in the Python files below `folders`."""
    regex = re.compile(pattern)
    return {
        match
        for folder in folders
        for path in folder.rglob("*.py")
        for match in regex.findall(path.read_text())
    }


def conn_ids_used(*folders: Path) -> set[str]:
    """Connection ids in the code: `conn_id="x"`, `*_conn_id="x"`, `CONN_ID = "x"` and the like."""
    return found_in_code(
        r"""(?:conn_id|CONN_ID)\w*\s*[:=]\s*(?:str\s*=\s*)?["']([A-Za-z0-9_]+)["']""", *folders
    )


def undefined_connections(
    conn_ids: set[str], compose_env: dict, runner_stand_ins: set[str], env_example: str
) -> list[str]:
    problems = []
    for conn_id in sorted(conn_ids):
        variable = connection_variable(conn_id)
        if variable not in compose_env and not (conn_id in OPTIONAL_CONNECTIONS and variable in env_example):
            problems.append(f"{conn_id}: not defined in docker-compose.yaml")
        if conn_id not in runner_stand_ins:
            problems.append(f"{conn_id}: no stand-in in the one-machine runner (sandbox.runner.STAND_INS)")
    return problems


def test_every_connection_used_is_defined_for_compose_and_the_runner(resolved):
    used = conn_ids_used(ROOT / "dags", ROOT / "plugins")
    assert {"warehouse", "telegram_default"} <= used
    assert set(STAND_INS) <= used, "a stand-in for a connection nothing uses"
    problems = undefined_connections(
        used,
        resolved["services"]["airflow-worker"]["environment"],
        set(STAND_INS),
        ENV_EXAMPLE.read_text(),
    )
    assert problems == []


def test_a_dag_with_an_undefined_connection_is_reported(tmp_path, resolved):
    (tmp_path / "new_dag.py").write_text('hook = PostgresHook(postgres_conn_id="legacy_dwh")\n')
    problems = undefined_connections(
        conn_ids_used(tmp_path),
        resolved["services"]["airflow-worker"]["environment"],
        set(STAND_INS),
        ENV_EXAMPLE.read_text(),
    )
    assert problems == [
        "legacy_dwh: not defined in docker-compose.yaml",
        "legacy_dwh: no stand-in in the one-machine runner (sandbox.runner.STAND_INS)",
    ]


def environment_variables_read(*folders: Path) -> set[str]:
    return found_in_code(r"""(?:environ|env)(?:\.get)?(?:\(|\[)\s*["']([A-Z][A-Z0-9_]+)["']""", *folders)


def test_every_variable_read_by_code_or_compose_is_in_env_example():
    example = ENV_EXAMPLE.read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.M))
    read = environment_variables_read(ROOT / "dags", ROOT / "plugins", ROOT / "sandbox")
    # Set by the runner for Airflow itself, or Airflow's own configuration read back.
    internal = {
        v for v in read if v.startswith("AIRFLOW__") and v not in {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"}
    }
    # ${VAR} is read from .env; $${VAR} is left for the container's shell.
    compose_vars = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    assert {"PIPELINES_PROFILE", "PIPELINES_DATA_DIR", "POSTGRES_DATA_DIR"} <= read
    assert sorted((read - internal - {"PATH", "PYTHONPATH"}) - documented) == []
    assert sorted(compose_vars - documented) == []
