"""Airflow operators with the project's conventions built in:

- sensors wait in the triggerer (deferrable), holding no worker slot, take their timeout from the
  run's `sensor_timeout_seconds` param (production default: the profile's, hours; the one-machine
  runner passes about a minute) and end the run skipped, not failed, when the input never comes:
  a missing input is "not ready", not an error;
- a Spark job is not submitted again when its outputs exist (Luigi's completeness check).
"""

from __future__ import annotations

import functools
import types
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from steps.core.files import already_complete

SENSOR_TIMEOUT_PARAM = "sensor_timeout_seconds"
# The longest a run may ask its sensors to wait: a daily DAG's dagrun_timeout leaves room for it.
MAX_SENSOR_TIMEOUT_SECONDS = 20 * 3600


def sensor_timeout_param(what: str) -> dict:
    """The DAG param its sensors read their timeout from (None: the profile's)."""
    from airflow.sdk import Param

    return {
        SENSOR_TIMEOUT_PARAM: Param(
            None,
            type=["null", "integer"],
            minimum=0,
            maximum=MAX_SENSOR_TIMEOUT_SECONDS,
            description=f"seconds to wait for {what} (default: the profile's)",
        )
    }


@functools.cache
def waiting_for_input(sensor_class: type) -> type:
    """`sensor_class` (a provider's deferrable sensor) as this project's sensors behave: deferred
    to the triggerer, polled every 15 s, its timeout from the run's params, skipped on timeout.

    The DAG file imports the provider's sensor itself, so that the dag-processor pre-imports that
    module once instead of in every parse (it pre-imports the `airflow.*` imports of DAG files).
    """

    def init(self, **kwargs):
        kwargs.setdefault("deferrable", True)
        kwargs.setdefault("poke_interval", 15)
        kwargs.setdefault("soft_fail", True)
        sensor_class.__init__(self, **kwargs)

    def execute(self, context):
        from steps.core.settings import load_settings

        value = (context.get("params") or {}).get(SENSOR_TIMEOUT_PARAM)
        self.timeout = float(value if value is not None else load_settings().sensor_timeout_seconds)
        return sensor_class.execute(self, context)

    def body(namespace: dict) -> None:
        namespace.update(__init__=init, execute=execute, __module__=__name__)

    # new_class, not type(): the operator metaclass must see the class (it applies default_args).
    return types.new_class(sensor_class.__name__, (sensor_class,), exec_body=body)


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
