"""A Docker engine for the deployment tests: the one that answers, or, when none does and the tests
run as root on a machine with Debian's docker.io installed (`make system-deps` installs it), a
`dockerd` started for the session and stopped after it. Where no engine can be had, the tests that
need one skip with the reason."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory):
    if engine_answers():
        yield "running"
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0 or shutil.which("docker") is None:
        pytest.fail("no Docker engine answers, and none can be started here: `make test` as root installs "
                    "docker.io (make system-deps), or start one yourself")
    log = Path(tmp_path_factory.mktemp("dockerd")) / "dockerd.log"
    with open(log, "w") as out:
        process = subprocess.Popen([dockerd], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not engine_answers():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"dockerd did not start:\n{log.read_text()[-3000:]}")
        time.sleep(1)
    yield "started"
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
