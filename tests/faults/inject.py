"""Injecting a fault inside a step's work: the step runs in a process of its own (tests/faults/
child.py), a condition observed from outside says the work is under way (rows sent, calls made,
files being written), and then the fault strikes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT


def start_process(command: list[str], **env: str) -> subprocess.Popen:
    """`command` in a process group of its own, as Airflow starts a task (a kill ends the group),
    with the virtualenv's scripts first on PATH (spark-submit finds its Python there)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]), **env}  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip


def start_step(step: str, warehouse_uri: str = "", **arguments) -> subprocess.Popen:
    """tests/faults/child.py's `step`, with the Airflow connection `warehouse` at `warehouse_uri`."""
    env = {"AIRFLOW_CONN_WAREHOUSE": warehouse_uri} if warehouse_uri else {}
    return start_process([sys.executable, "-m", "tests.faults.child", step, json.dumps(arguments)], **env)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL to the process and every child (a Spark driver's JVM and its Python workers)."""
    os.killpg(process.pid, signal.SIGKILL)


def strike_when(step: subprocess.Popen, under_way: Callable[[], bool], what: str,
                fault: Callable[[], None] | None = None) -> str:  # fmt: skip
    """Polls `under_way` until it holds, then runs `fault` (default: SIGKILL of the step's process
    group, as the OS or a lost worker ends a task) and returns what the step printed on stderr. Fails the test when the
    step ends before its work was seen under way: then the fault would not be inside the work."""
    deadline = time.monotonic() + 300  # a guard against a hang, not a measure of speed
    while not under_way():
        if step.poll() is not None:
            out, err = step.communicate()
            pytest.fail(f"the step ended before {what} was seen (exit {step.returncode}): {out}{err[-2000:]}")
        if time.monotonic() > deadline:
            kill_group(step)
            pytest.fail(f"{what} was never seen")
        time.sleep(0.01)
    (fault or (lambda: kill_group(step)))()
    _, err = step.communicate(timeout=120)
    return err


def backends_gone(monitor, database: str, keep: tuple[int, ...] = ()) -> None:
    """Waits until no session but the monitor and `keep` (backend pids) is connected to `database`:
    a killed client's backend notices the closed socket and rolls its transaction back."""
    deadline = time.monotonic() + 120
    while monitor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
        "AND NOT pid = ANY(%s)", (database, list(keep))
    ).fetchone()[0]:  # fmt: skip
        assert time.monotonic() < deadline, "the killed step's session never ended"
        time.sleep(0.05)
