"""A small client of the Airflow 3 REST API (`/auth/token`, then `/api/v2/...` with a bearer token),
with just what the runner and the tests need."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class ApiError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: str):
        super().__init__(f"{method} {path}: HTTP {status}: {body[:500]}")
        self.status = status


class AirflowApi:
    def __init__(self, base_url: str, username: str, password: str):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self._token: str | None = None

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        request.add_header("Accept", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.token()}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as err:
            raise ApiError(err.code, method, path, err.read().decode(errors="replace")) from None
        return json.loads(text) if text else None

    def token(self) -> str:
        if self._token is None:
            answer = self._request(
                "POST",
                "/auth/token",
                {"username": self.username, "password": self.password},
                auth=False,
            )
            self._token = answer["access_token"]
        return self._token

    def healthy(self) -> bool:
        try:
            health = self._request("GET", "/api/v2/monitor/health", auth=False)
        except (OSError, ApiError):
            return False
        return health.get("metadatabase", {}).get("status") == "healthy"

    def get(self, path: str, **query: Any) -> Any:
        if query:
            path += "?" + urllib.parse.urlencode(query, doseq=True)
        return self._request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self._request("POST", path, body)

    def put(self, path: str, body: Any = None) -> Any:
        return self._request("PUT", path, body)

    def patch(self, path: str, body: Any) -> Any:
        return self._request("PATCH", path, body)

    def delete(self, path: str) -> Any:
        return self._request("DELETE", path)

    # --- the calls the runner makes ----------------------------------------------------------

    def wait_for_dag(self, dag_id: str, timeout: float) -> dict:
        """The DAG, once the dag-processor has parsed it; raises with its import error if any."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.get(f"/api/v2/dags/{q(dag_id)}/details")
            except ApiError as err:
                if err.status != 404:
                    raise
            errors = self.get("/api/v2/importErrors").get("import_errors", [])
            if errors and time.monotonic() > deadline - timeout / 2:
                shown = "\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in errors)
                raise RuntimeError(f"DAG {dag_id} not found; DAG files failed to import:\n{shown}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"DAG {dag_id} did not appear within {timeout:.0f}s")
            time.sleep(1)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        answer = self.get(f"/api/v2/dags/{q(dag_id)}/dagRuns/{q(run_id)}/taskInstances", limit=1000)
        return answer["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index=-1) -> str:
        answer = self.get(
            f"/api/v2/dags/{q(dag_id)}/dagRuns/{q(run_id)}/taskInstances/{q(task_id)}/logs/{try_number}",
            full_content="true",
            map_index=map_index,
        )
        content = answer.get("content", [])
        if isinstance(content, str):
            return content
        return "\n".join(_log_line(entry) for entry in content)

    def return_value(self, dag_id: str, run_id: str, task_id: str) -> Any:
        try:
            entry = self.get(
                f"/api/v2/dags/{q(dag_id)}/dagRuns/{q(run_id)}/taskInstances/{q(task_id)}"
                "/xcomEntries/return_value",
                deserialize="true",
            )
        except ApiError as err:
            if err.status == 404:
                return None
            raise
        return entry.get("value")


def q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


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
    for key in ("error_detail",):
        if entry.get(key):
            line += "\n" + _format_error(entry[key])
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
