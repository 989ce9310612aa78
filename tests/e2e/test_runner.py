"""`make demo` end to end: the runner starts embedded Postgres and the real Airflow processes,
triggers DAGs through the REST API and reports. Also the web UI in a real headless Chromium."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from sandbox.embedded_postgres import free_port
from tests.e2e.helpers import ROOT, run_demo, runner_command, runner_env

pytestmark = pytest.mark.e2e
ARTIFACTS = ROOT / "test-artifacts"
RUN_0112 = "manual__2026-01-12T00:00:00+00:00"


@pytest.fixture(scope="module")
def hello_run(workspace):
    """hello_world's run of 2026-01-05 with id=abc: the first demo, which the rerun test repeats."""
    summary_path = workspace["base"] / "summary.json"
    result = run_demo(
        workspace, "--only", "hello_world", "--conf", "id=abc", "--date", "2026-01-05",
        "--summary-json", str(summary_path),
    )  # fmt: skip
    return result, summary_path


def test_demo_runs_hello_world_and_writes_the_summary(workspace, hello_run):
    result, summary_path = hello_run
    assert result.returncode == 0
    output = workspace["data"] / "results" / "abc" / "hello_world.txt"
    assert output.read_text() == "Hello World"
    summary = json.loads(summary_path.read_text())
    [run] = summary["runs"]
    assert run["dag_id"] == "hello_world" and run["state"] == "success"
    assert run["run_id"] == "manual__2026-01-05T00:00:00+00:00"
    assert run["task_counts"] == {"success": 4}
    assert run["outputs"] == {"hello_world": str(output)}
    assert any(
        t.startswith(f"DAG hello_world with run_id={run['run_id']} finished successfully.")
        for t in summary["telegram_messages"]
    )
    assert "hello_world                  2026-01-05 success" in result.stdout


def test_failed_run_exits_non_zero_naming_the_task_and_its_error(workspace):
    """hello_world fails in a task; police_staging's run is refused by Airflow (its schema param
    is not a plain identifier), so it never starts: the runner says so and goes on."""
    not_a_folder = workspace["base"] / "occupied"
    not_a_folder.write_text("a file where the data folder should be")
    summary_path = workspace["base"] / "failed-summary.json"
    result = run_demo(
        workspace, "--only", "hello_world,police_staging", "--date", "2026-01-12",
        "--conf", "schema=x; drop schema public", "--summary-json", str(summary_path),
        PIPELINES_DATA_DIR=str(not_a_folder), PIPELINES_TASK_RETRIES="2",
    )  # fmt: skip
    assert result.returncode == 1
    runs = {r["dag_id"]: r for r in json.loads(summary_path.read_text())["runs"]}
    assert runs["police_staging"]["state"] == "refused" and runs["police_staging"]["run_id"] == ""
    assert "police_staging 2026-01-12: run refused (400)" in result.stdout
    assert "Invalid input for param schema" in result.stdout and "x; drop schema public" in result.stdout
    assert "--- task make_directory failed; end of its log:" in result.stdout
    assert "NotADirectoryError" in result.stdout or "FileExistsError" in result.stdout
    # Two retries allowed, none made: no retry fixes a file where a folder should be.
    assert "reason=NotADirectoryError is not transient: failed at once" in result.stdout
    task_logs = workspace["logs"] / "dag_id=hello_world" / f"run_id={RUN_0112}" / "task_id=make_directory"
    assert [p.name for p in task_logs.glob("attempt=*.log")] == ["attempt=1.log"]
    [message] = [
        m for m in json.loads(summary_path.read_text())["telegram_messages"]
        if m.startswith(f"DAG hello_world with run_id={RUN_0112} failed.")
    ]  # fmt: skip
    assert message.splitlines()[1].startswith("task make_directory: ")
    assert "Error" in message.splitlines()[1]


def test_unknown_dag_is_refused_before_anything_starts(workspace):
    result = subprocess.run(
        [sys.executable, "-m", "sandbox.runner", "demo", "--only", "no_such_dag"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown DAG id(s): no_such_dag" in result.stderr


def test_rerun_changes_nothing_and_the_web_ui_shows_the_run(workspace, hello_run):
    """The same run again (cleared and rerun: every step finds its output), kept up for the UI."""
    assert hello_run[0].returncode == 0
    output = workspace["data"] / "results" / "abc" / "hello_world.txt"
    before = output.stat().st_mtime_ns
    summary_path = workspace["base"] / "summary-keep.json"
    port = free_port()
    process = subprocess.Popen(
        runner_command(workspace, "--only", "hello_world", "--conf", "id=abc", "--date", "2026-01-05",
                       "--summary-json", str(summary_path), "--keep", port=port),
        env=runner_env(workspace), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 400
        while not summary_path.exists():
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the runner did not finish the run in time"
            time.sleep(2)
        summary = json.loads(summary_path.read_text())
        assert summary["runs"][0]["state"] == "success"
        assert output.stat().st_mtime_ns == before
        check_web_ui(f"http://localhost:{port}")
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=120)
        print(out[-5000:])
    assert "interrupted: stopping" in out


def check_web_ui(url: str) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed: `make test` installs it (make system-deps)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
            ],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(f"{url}/", wait_until="networkidle")
            page.fill("input[name='username']", "admin")
            page.fill("input[name='password']", "admin")
            page.click("button[type='submit']")
            page.wait_for_url(lambda u: "/auth/login" not in u, timeout=30_000)
            page.goto(
                f"{url}/dags/hello_world/runs/manual__2026-01-05T00:00:00+00:00", wait_until="networkidle"
            )
            page.get_by_text("hello_world").first.wait_for(timeout=30_000)
            page.get_by_text("Success", exact=True).first.wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "web-ui-hello_world-run.png"), full_page=True)
        finally:
            page.screenshot(path=str(ARTIFACTS / "web-ui-last.png"))
            browser.close()
