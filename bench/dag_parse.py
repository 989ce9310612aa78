"""How long DAG files take to parse.

1. Each DAG file with Airflow already imported, next to the baseline of importing Airflow's SDK.
2. Inside the real dag-processor (which pre-imports the `airflow.*` modules a DAG file imports,
   once, before it forks each parse): `user_page_views.py` with the Amazon provider's
   S3KeySensor, next to the same file with a bare sensor class in its place. Its parse durations
   are the ones Airflow records itself (`dag.last_parse_duration`), sampled over several parses.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, print_table

PROBE = """
import json, runpy, sys, time
t0 = time.perf_counter()
import airflow.sdk
sdk = time.perf_counter() - t0
times = []
for _ in range(5):
    t0 = time.perf_counter()
    runpy.run_path(sys.argv[1])
    times.append(time.perf_counter() - t0)
print(json.dumps({"sdk": sdk, "first": times[0], "best": min(times[1:])}))
"""


def main() -> None:
    rows = []
    for dag_file in sorted((ROOT / "dags").glob("*.py")):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(dag_file)],
            capture_output=True, text=True, check=True,
            env={"PYTHONPATH": str(ROOT / "plugins"), "PATH": "/usr/bin:/bin",
                 "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
        )  # fmt: skip
        t = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append([dag_file.name, f"{t['sdk'] * 1000:,.0f}", f"{t['first'] * 1000:,.0f}",
                     f"{t['best'] * 1000:,.1f}", f"{t['first'] / t['sdk']:.3f}x"])  # fmt: skip
    print_table(
        "Parsing each DAG file with Airflow imported (ms; ratio = first parse / importing airflow.sdk)",
        ["DAG file", "import airflow.sdk", "first parse", "reparse (best of 4)", "vs import"],
        rows,
    )
    in_dag_processor()


# The provider's sensor replaced by a class that takes the same arguments and imports nothing more.
BARE_SENSOR = """
from airflow.sdk import BaseSensorOperator


class S3KeySensor(BaseSensorOperator):
    template_fields = ("bucket_key", "bucket_name")

    def __init__(self, *, bucket_key, bucket_name=None, wildcard_match=False, aws_conn_id="aws_default",
                 deferrable=False, **kwargs):
        super().__init__(**kwargs)
        self.bucket_key, self.bucket_name, self.deferrable = bucket_key, bucket_name, deferrable

    def poke(self, context):
        return True
"""
PROVIDER_IMPORT = "from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor\n"


def in_dag_processor(parses: int = 8) -> None:
    from sandbox.embedded_postgres import EmbeddedPostgres, free_port

    source = (ROOT / "dags" / "user_page_views.py").read_text()
    assert PROVIDER_IMPORT in source, "user_page_views.py no longer imports the provider's S3KeySensor"
    variants = {
        "user_page_views (provider's S3KeySensor)": source,
        "same file, bare sensor class": source.replace(PROVIDER_IMPORT, BARE_SENSOR).replace(
            'dag_id="user_page_views"', 'dag_id="user_page_views_bare"'
        ),
    }
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        dags = scratch / "dags"
        dags.mkdir()
        for name, text in zip(("provider.py", "bare.py"), variants.values(), strict=True):
            (dags / name).write_text(text)
        server = EmbeddedPostgres(scratch / "pg", free_port()).start()
        try:
            server.create_database("airflow")
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT / "plugins"),
                "AIRFLOW_HOME": str(scratch / "home"),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": server.uri("airflow", driver="postgresql+psycopg"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            }
            bin_dir = Path(sys.executable).parent
            migrate = [str(bin_dir / "airflow"), "db", "migrate"]
            subprocess.run(migrate, env=env, check=True, capture_output=True)
            samples = _sample_parse_durations(server.uri("airflow"), env, bin_dir, parses)
        finally:
            server.stop()
    rows = []
    base = statistics.median(samples["user_page_views_bare"])
    for (label, _), dag_id in zip(variants.items(), ("user_page_views", "user_page_views_bare"), strict=True):
        values = samples[dag_id]
        median = statistics.median(values)
        rows.append([label, str(len(values)), f"{median * 1000:,.0f}", f"{min(values) * 1000:,.0f}",
                     f"{median / base:.2f}x"])  # fmt: skip
    print_table(
        "Parse time inside the dag-processor (ms, as Airflow records it; ratio = median / bare sensor's)",
        ["DAG file", "parses", "median", "best", "vs bare"],
        rows,
    )


def _sample_parse_durations(uri: str, env: dict, bin_dir: Path, parses: int) -> dict[str, list[float]]:
    import psycopg

    processor = subprocess.Popen(
        [str(bin_dir / "airflow"), "dag-processor"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    samples: dict[str, list[float]] = {"user_page_views": [], "user_page_views_bare": []}
    seen: dict[str, object] = {}
    deadline = time.monotonic() + 60 + parses * 15
    try:
        with psycopg.connect(uri, autocommit=True) as conn:
            while min(len(v) for v in samples.values()) < parses and time.monotonic() < deadline:
                for dag_id, parsed_at, seconds in conn.execute(
                    "SELECT dag_id, last_parsed_time, last_parse_duration FROM dag WHERE dag_id = ANY(%s)",
                    (list(samples),),
                ):
                    if seconds is not None and seen.get(dag_id) != parsed_at:
                        seen[dag_id] = parsed_at
                        samples[dag_id].append(seconds)
                time.sleep(0.5)
    finally:
        processor.terminate()
        processor.wait(timeout=30)
    if min(len(v) for v in samples.values()) < 2:
        raise RuntimeError(f"the dag-processor parsed too few times: {samples}")
    return samples


if __name__ == "__main__":
    main()
