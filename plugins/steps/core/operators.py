"""Airflow operators with the project's conventions built in:

- sensors take their timeout from the run's `sensor_timeout_seconds` param (production default:
  the profile's, hours; the one-machine runner passes about a minute) and end the run skipped,
  not failed, when the input never comes: a missing input is "not ready", not an error;
- a Spark job is not submitted again when its outputs exist (Luigi's completeness check).
"""

from __future__ import annotations

from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.http.sensors.http import HttpSensor
from airflow.sdk import BaseSensorOperator

from steps.core.files import already_complete

SENSOR_TIMEOUT_PARAM = "sensor_timeout_seconds"


def sensor_timeout_param(what: str) -> dict:
    """The DAG param its sensors read their timeout from (None: the profile's)."""
    from airflow.sdk import Param

    return {
        SENSOR_TIMEOUT_PARAM: Param(
            None, type=["null", "integer"], description=f"how long to wait for {what} (default: profile's)"
        )
    }


class _TimeoutFromParams:
    """Mixin for sensors: timeout from the run's params, else from the active profile."""

    def execute(self, context):
        from steps.core.settings import load_settings

        value = (context.get("params") or {}).get(SENSOR_TIMEOUT_PARAM)
        self.timeout = float(value if value is not None else load_settings().sensor_timeout_seconds)
        return super().execute(context)


class HttpFileSensor(_TimeoutFromParams, HttpSensor):
    """Waits until `endpoint` of the HTTP connection answers a HEAD request (404 = not yet)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("method", "HEAD")
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", 15)
        kwargs.setdefault("soft_fail", True)
        super().__init__(**kwargs)


class S3PrefixesSensor(_TimeoutFromParams, BaseSensorOperator):
    """Waits until every prefix of `prefixes` has at least one key in `bucket` (S3Hook, so the
    endpoint is the connection's: AWS, MinIO or a local S3 server).

    The Amazon provider's S3KeySensor does the same, but importing it imports boto3, half a
    second on every parse of the DAG file; here boto3 loads only when the sensor runs.
    """

    template_fields = ("bucket", "prefixes")

    def __init__(self, *, bucket: str, prefixes: list[str], aws_conn_id: str = "aws_default", **kwargs):
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", 15)
        kwargs.setdefault("soft_fail", True)
        super().__init__(**kwargs)
        self.bucket = bucket
        self.prefixes = prefixes
        self.aws_conn_id = aws_conn_id

    def poke(self, context) -> bool:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        hook = S3Hook(aws_conn_id=self.aws_conn_id)
        missing = [
            prefix for prefix in self.prefixes
            if not hook.list_keys(bucket_name=self.bucket, prefix=prefix, max_items=1)
        ]  # fmt: skip
        if missing:
            self.log.info("not there yet in s3://%s: %s", self.bucket, ", ".join(f"{p}*" for p in missing))
        return not missing


class OutputCheckedSparkSubmitOperator(SparkSubmitOperator):
    """SparkSubmitOperator that returns at once when every path of `outputs` exists."""

    template_fields = (*SparkSubmitOperator.template_fields, "outputs")

    def __init__(self, *, outputs: list[str], **kwargs):
        super().__init__(**kwargs)
        self.outputs = outputs

    def execute(self, context) -> list[str]:
        """Returns the outputs' folders (the run summary shows them)."""
        outputs = [Path(p) for p in self.outputs]
        if not already_complete(outputs, self.task_id):
            super().execute(context)
        return sorted({str(p.parent) for p in outputs})
