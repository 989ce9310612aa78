"""Airflow's REST API through the official client (apache-airflow-client), for the runner and the
tests: one client authenticated by a token from `/auth/token`, the API groups they use, and the few
calls that take several requests or a retry (a DAG once parsed, a task's log as text, a task's
return value)."""

from __future__ import annotations

import json
import time
import urllib.request
from functools import cached_property
from typing import Any

import urllib3
from airflow_client.client import ApiClient, Configuration
from airflow_client.client.api import (
    AssetApi,
    BackfillApi,
    DAGApi,
    DagRunApi,
    ImportErrorApi,
    MonitorApi,
    TaskApi,
    TaskInstanceApi,
    XComApi,
)
from airflow_client.client.exceptions import ApiException, NotFoundException

__all__ = ["AirflowApi", "ApiException", "NotFoundException"]


def _group(api_class: type) -> cached_property:
    return cached_property(lambda self: api_class(self.client))


class AirflowApi:
    def __init__(self, base_url: str, username: str, password: str):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password

    @cached_property
    def client(self) -> ApiClient:
        return ApiClient(Configuration(host=self.base_url, access_token=self._token()))

    def _token(self) -> str:
        """A JWT from the auth manager's endpoint (the client covers /api/v2 only)."""
        request = urllib.request.Request(
            f"{self.base_url}/auth/token", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"username": self.username, "password": self.password}).encode(),
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)["access_token"]

    # The API groups used, each on the one authenticated client.
    dags = _group(DAGApi)
    tasks = _group(TaskApi)
    dag_runs = _group(DagRunApi)
    task_instances = _group(TaskInstanceApi)
    backfills = _group(BackfillApi)
    assets = _group(AssetApi)
    xcom = _group(XComApi)
    import_errors = _group(ImportErrorApi)

    def healthy(self) -> bool:
        """The metadata database answers the API server (asked without a login, as a probe would)."""
        try:
            with ApiClient(Configuration(host=self.base_url, retries=False)) as anonymous:
                health = MonitorApi(anonymous).get_health(_request_timeout=10)
        except (ApiException, urllib3.exceptions.HTTPError):
            return False
        return health.metadatabase.status == "healthy"

    # --- calls of several requests -----------------------------------------------------------

    def wait_for_dag(self, dag_id: str, timeout: float):
        """The DAG's details, once the dag-processor has parsed it; raises with its import error if any."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.dags.get_dag_details(dag_id)
            except NotFoundException:
                pass
            errors = self.import_errors.get_import_errors().import_errors
            if errors and time.monotonic() > deadline - timeout / 2:
                shown = "\n".join(f"{e.filename}:\n{e.stack_trace}" for e in errors)
                raise RuntimeError(f"DAG {dag_id} not found; DAG files failed to import:\n{shown}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"DAG {dag_id} did not appear within {timeout:.0f}s")
            time.sleep(1)

    def run_task_instances(self, dag_id: str, run_id: str) -> list:
        return self.task_instances.get_task_instances(dag_id, run_id, limit=1000).task_instances

    def task_log_content(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1):
        """The log as the API serves it: a list of structured entries, or text. Read raw: the
        client's model keeps only `event` and `timestamp` of each entry and drops the rest (level,
        error_detail, sources, the retry policy's reason...)."""
        answer = self.task_instances.get_log_without_preload_content(
            dag_id, run_id, task_id, try_number, full_content=True, map_index=map_index
        )
        if answer.status != 200:
            raise ApiException(http_resp=answer)
        return json.loads(answer.data)["content"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        content = self.task_log_content(dag_id, run_id, task_id, try_number, map_index)
        if isinstance(content, str):
            return content
        return "\n".join(_log_line(entry) for entry in content)

    def return_value(self, dag_id: str, run_id: str, task_id: str) -> Any:
        try:
            entry = self.xcom.get_xcom_entry(dag_id, task_id, run_id, "return_value", deserialize=True)
        except NotFoundException:
            return None
        return entry.actual_instance.value


# Fields of a structured task log entry that say where it came from, not what happened.
LOG_LINE_NOISE = {
    "timestamp", "level", "event", "error_detail", "logger", "filename", "lineno", "loc", "ti_id",
    "dag_id", "task_id", "run_id", "map_index", "try_number", "sources", "chan", "logger_name",
}  # fmt: skip


def _log_line(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    line = f"[{entry.get('timestamp', '')}] {entry.get('level', '').upper()} {entry.get('event', '')}"
    fields = {k: v for k, v in entry.items() if k not in LOG_LINE_NOISE and v not in (None, "")}
    if fields:  # structured fields, e.g. the retry policy's action and reason
        line += " " + " ".join(f"{k}={v}" for k, v in fields.items())
    if entry.get("error_detail"):
        line += "\n" + _format_error(entry["error_detail"])
    return line


def _format_error(detail: Any) -> str:
    if not isinstance(detail, list):
        return str(detail)
    lines = []
    for exc in detail:
        for frame in exc.get("frames", []):
            lines.append(
                f"  File {frame.get('filename')}, line {frame.get('lineno')}, in {frame.get('name')}"
            )
        lines.append(f"{exc.get('exc_type')}: {exc.get('exc_value')}")
    return "\n".join(lines)
