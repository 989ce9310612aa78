"""The retry policy on real failures: a closed port, a real HTTP server, a real Postgres."""

from __future__ import annotations

import http.server
import socket
import threading

import psycopg
import pytest
from airflow.sdk.definitions.retry_policy import RetryAction

from steps.core.retries import TransientOnlyRetryPolicy, transient_reason
from steps.core.warehouse import BadInputError


def decision(error: BaseException):
    return TransientOnlyRetryPolicy().evaluate(error, try_number=1, max_tries=2)


def raised(call) -> BaseException:
    with pytest.raises(Exception) as info:
        call()
    return info.value


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_status_server():
    """Answers GET /<status> with that status."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(int(self.path.strip("/")))
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_a_refused_connection_is_retried_even_when_wrapped():
    refused = raised(lambda: socket.create_connection(("127.0.0.1", closed_port()), timeout=5))
    assert isinstance(refused, ConnectionRefusedError)
    assert decision(refused).action is RetryAction.RETRY

    def download():
        try:
            socket.create_connection(("127.0.0.1", closed_port()), timeout=5)
        except OSError as err:
            raise RuntimeError("could not download spins-2019-02-01.snappy.parquet") from err

    wrapped = raised(download)
    assert decision(wrapped).action is RetryAction.RETRY
    assert "ConnectionRefusedError is transient" in decision(wrapped).reason


@pytest.mark.parametrize(("status", "action"), [(503, RetryAction.RETRY), (429, RetryAction.RETRY),
                                                (404, RetryAction.FAIL), (400, RetryAction.FAIL)])  # fmt: skip
def test_http_errors_through_the_providers_hook(http_status_server, status, action, monkeypatch):
    import json

    from airflow.providers.http.hooks.http import HttpHook

    monkeypatch.setenv("AIRFLOW_CONN_PROBE", json.dumps({"conn_type": "http", "host": http_status_server}))
    error = raised(lambda: HttpHook(method="GET", http_conn_id="probe").run(f"/{status}"))
    assert str(error).startswith(str(status))
    assert decision(error).action is action


def test_sql_errors_fail_at_once_and_a_lost_connection_is_retried(warehouse):
    missing_table = raised(lambda: warehouse.execute("SELECT * FROM no_such_table"))
    assert isinstance(missing_table, psycopg.errors.UndefinedTable)
    assert decision(missing_table).action is RetryAction.FAIL
    assert decision(missing_table).reason.startswith("UndefinedTable is not transient")
    warehouse.rollback()

    victim_pid = warehouse.execute("SELECT pg_backend_pid()").fetchone()[0]
    with psycopg.connect(warehouse.info.dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (victim_pid,))
    lost = raised(lambda: warehouse.execute("SELECT 1"))
    assert isinstance(lost, psycopg.OperationalError)
    assert decision(lost).action is RetryAction.RETRY


def test_bad_input_and_timeouts():
    from airflow.sdk.exceptions import AirflowTaskTimeout

    bad = BadInputError("candidates_train.parquet: column als_score: expected a number")
    assert decision(bad).action is RetryAction.FAIL
    assert transient_reason(AirflowTaskTimeout("Timeout, PID: 1")) == "AirflowTaskTimeout is transient"
    assert decision(KeyError("rec_id")).action is RetryAction.FAIL
