"""How long each DAG file takes to parse with Airflow already imported (the dag-processor's case),
next to the baseline of importing Airflow's SDK itself."""

from __future__ import annotations

import json
import subprocess
import sys

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


if __name__ == "__main__":
    main()
