"""Retry what a retry can fix, nothing else (Airflow 3's task `retry_policy`).

A failure is *transient* when something outside the task may be different a minute later: a
connection refused, reset, timed out or broken in the middle of a body, an HTTP 429 or 5xx, a
database that cancelled the statement, lost the connection, or chose this transaction as a
deadlock or serialization victim, the task's own `execution_timeout`. Those are retried as the
task's `retries` allow. Everything else (bad input, a missing table, an SQL error, a refused
parameter, a Spark job that ended with an error, a full disk) fails at once with its message:
retrying it would only keep the run busy for minutes before it fails the same way.

The policy runs in the worker, on the exception object itself; a wrapped error (`raise ... from
err`) is transient when any exception in its chain is.
"""

from __future__ import annotations

from collections.abc import Iterator

from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy

# Exception classes by dotted name: the modules that define them are imported only when a task
# fails (psycopg, requests, botocore and httpx are heavy for a DAG file to import).
TRANSIENT_CLASSES = (
    "builtins.ConnectionError",  # refused, reset, aborted, broken pipe
    "builtins.TimeoutError",
    "airflow.sdk.exceptions.AirflowTaskTimeout",
    "psycopg.OperationalError",  # connection lost, deadlock, serialization failure, cancelled
    "requests.exceptions.ConnectionError",
    "requests.exceptions.ChunkedEncodingError",  # the connection broke in the middle of a body
    "requests.exceptions.Timeout",
    "urllib3.exceptions.ProtocolError",
    "httpx.TransportError",
    "aiohttp.ClientConnectionError",
    "botocore.exceptions.EndpointConnectionError",
    "botocore.exceptions.ConnectTimeoutError",
    "botocore.exceptions.ReadTimeoutError",
    "botocore.exceptions.IncompleteReadError",
    "botocore.exceptions.ResponseStreamingError",
)
TRANSIENT_HTTP_STATUS = {408, 429, 500, 502, 503, 504}


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def transient_reason(error: BaseException) -> str | None:
    """Why `error` may pass on a retry, or None when it is deterministic."""
    for link in exception_chain(error):
        for cls in type(link).__mro__:
            if f"{cls.__module__}.{cls.__qualname__}" in TRANSIENT_CLASSES:
                return f"{type(link).__name__} is transient"
        status = _http_status(link)
        if status in TRANSIENT_HTTP_STATUS:
            return f"HTTP {status} is transient"
    return None


def _http_status(error: BaseException) -> int | None:
    """The status of an HTTP error from requests, httpx or botocore, if `error` is one."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)  # requests, httpx
    if status is None and isinstance(response, dict):  # botocore ClientError
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


class TransientOnlyRetryPolicy(RetryPolicy):
    """Retries transient failures (see the module docstring); fails every other at once."""

    def evaluate(self, exception, try_number, max_tries, context=None) -> RetryDecision:
        reason = transient_reason(exception)
        if reason:
            return RetryDecision.retry(reason=f"{reason}: retried (try {try_number} of {max_tries + 1})")
        return RetryDecision.fail(
            reason=f"{type(exception).__name__} is not transient: failed at once, no retry can fix it"
        )

    def serialize(self) -> dict:
        return {"__type": type(self).__name__}

    @classmethod
    def deserialize(cls, data: dict) -> TransientOnlyRetryPolicy:
        return cls()
