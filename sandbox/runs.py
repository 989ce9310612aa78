"""The DAG runs of a demo: how the runner asks Airflow for them and follows them to the end.

A demo asks for as little as it can and lets Airflow do the rest:
- a DAG on a time schedule gets a manual run for one date, or one Airflow *backfill* for a range
  of dates (shown as such in the UI): days that already succeeded are left alone, failed ones are
  run again (`reprocess_all` runs every day again);
- a DAG scheduled on assets (rank_candidates) is never triggered: once its producers have run, the
  scheduler starts it from the asset events it queued, or the demo says which events are missing;
- a manual-only DAG (police_staging_promote) runs only when selected by name, after the others.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_client.client.models import (
    BackfillPostBody,
    ClearTaskInstancesBody,
    DAGPatchBody,
    DAGRunPatchBody,
    ReprocessBehavior,
    TriggerDAGRunPostBody,
)

from sandbox.airflow_api import AirflowApi, ApiException

TERMINAL_RUN_STATES = {"success", "failed"}
DONE_BEFORE = "done before"  # a backfill day that had already succeeded: left alone
OK_STATES = {"success", DONE_BEFORE}
ASSET_RUN_WAIT_SECONDS = 120


def log(message: str) -> None:
    print(f"{dt.datetime.now():%H:%M:%S} {message}", flush=True)


@dataclass
class RunResult:
    dag_id: str
    logical_date: dt.datetime | None  # None: an asset-triggered run, keyed by when it was due
    run_id: str = ""
    state: str = "not started"
    started_by: str = ""  # "manual", "backfill 3", "assets": who asked Airflow for the run
    seconds: float = 0.0
    tasks: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    leaves: list[str] = field(default_factory=list)  # the DAG's last tasks

    @property
    def day(self) -> str:
        return f"{self.logical_date:%Y-%m-%d}" if self.logical_date else "(assets)"

    @property
    def label(self) -> str:
        return f"{self.dag_id} {self.day}"

    def task_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for state in self.tasks.values():
            counts[state or "none"] = counts.get(state or "none", 0) + 1
        return counts

    @property
    def shown_state(self) -> str:
        """A run whose last tasks were skipped (its input never came) says so."""
        ends = [self.tasks.get(t) for t in self.leaves]
        return (
            "skipped"
            if self.state == "success" and ends and all(s == "skipped" for s in ends)
            else self.state
        )


def run_dags(
    api: AirflowApi,
    dag_ids: list[str],
    dates: list[dt.datetime],
    conf: dict,
    *,
    sensor_timeout: int,
    timeout: float,
    selected: bool = False,
    reprocess_all: bool = False,
    schedule_from_assets: Callable[[list[str]], None],
    results: list[RunResult],
) -> list[RunResult]:
    """Run the DAGs in three waves (module docstring), appending to `results` as runs are asked
    for, so that an interrupted demo knows what it left behind. `schedule_from_assets(keep)`
    lets the scheduler start asset-scheduled runs, pausing every DAG but `keep`."""
    details = {dag_id: api.wait_for_dag(dag_id, timeout=120) for dag_id in dag_ids}
    on_assets = [d for d in dag_ids if details[d].asset_expression]
    manual = [d for d in dag_ids if details[d].timetable_summary is None and d not in on_assets]
    if not selected:
        for dag_id in manual:
            log(f"{dag_id}: manual only, not run (run it with --only {dag_id})")
        dag_ids = [d for d in dag_ids if d not in manual]
        manual = []
    timed = [d for d in dag_ids if d not in on_assets and d not in manual]
    declared = {d: set(details[d].params or {}) for d in dag_ids}
    unknown = sorted(set(conf) - set().union(*declared.values()))
    if unknown:
        raise SystemExit(f"--conf {', '.join(unknown)}: no selected DAG has such a param")
    leaves = {dag_id: _leaves(api, dag_id) for dag_id in dag_ids}

    def run_conf(dag_id: str) -> dict:
        values = {k: v for k, v in conf.items() if k in declared[dag_id]}
        if "sensor_timeout_seconds" in declared[dag_id]:
            values.setdefault("sensor_timeout_seconds", sensor_timeout)
        return values

    deadline = time.monotonic() + timeout
    # Asset-triggered runs created from here on are this demo's (the server's clock is this one).
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    for dag_id in on_assets:  # Airflow queues asset events only for DAGs that are not paused
        unpause(api, dag_id)

    wave = []
    for dag_id in timed:
        unpause(api, dag_id)
        if len(dates) == 1:
            wave.append(_manual_run(api, dag_id, dates[0], run_conf(dag_id), leaves[dag_id]))
        else:
            wave += _backfill(api, dag_id, dates, run_conf(dag_id), reprocess_all, details[dag_id], leaves)
    results += wave
    follow(api, wave, deadline)

    if on_assets:
        wave = _asset_triggered_runs(api, on_assets, details, since, schedule_from_assets, manual, leaves)
        results += wave
        follow(api, wave, deadline)

    wave = []
    for day in dates:
        for dag_id in manual:
            failed = [r.dag_id for r in results if r.logical_date == day and r.state not in OK_STATES]
            if failed:
                result = RunResult(dag_id, day, state="not run", leaves=leaves[dag_id])
                result.error = f"not triggered: its upstream DAG(s) {', '.join(failed)} did not succeed\n"
                wave.append(result)
                continue
            unpause(api, dag_id)
            wave.append(_manual_run(api, dag_id, day, run_conf(dag_id), leaves[dag_id]))
    results += wave
    follow(api, wave, deadline)

    for result in results:
        if result.run_id and result.state != DONE_BEFORE:
            _collect(api, result)
    return results


def unpause(api: AirflowApi, dag_id: str) -> None:
    api.dags.patch_dag(dag_id, DAGPatchBody(is_paused=False))


def _leaves(api: AirflowApi, dag_id: str) -> list[str]:
    return [t.task_id for t in api.tasks.get_tasks(dag_id).tasks if not t.downstream_task_ids]


def _manual_run(api: AirflowApi, dag_id: str, day: dt.datetime, conf: dict, leaves: list[str]) -> RunResult:
    result = RunResult(dag_id, day, started_by="manual", leaves=leaves)
    try:
        result.run_id = trigger(api, dag_id, day, conf)
    except ApiException as err:  # e.g. a param its schema refuses: no run, nothing ran
        result.state = "refused"
        result.error = f"Airflow refused to start the run: HTTP {err.status}: {err.body}\n"
        log(f"{result.label}: run refused ({err.status})")
    return result


def trigger(api: AirflowApi, dag_id: str, logical_date: dt.datetime, conf: dict) -> str:
    """Start the DAG's run for `logical_date`. A run for that date that already exists is cleared
    and run again with the same conf (finished steps find their outputs and return), or replaced
    when the conf differs (Airflow keeps one run per DAG and logical date)."""
    runs = api.dag_runs.get_dag_runs(
        dag_id, logical_date_gte=logical_date, logical_date_lte=logical_date
    ).dag_runs
    if runs:
        existing = runs[0]
        if (existing.conf or {}) == conf:
            clear = ClearTaskInstancesBody(
                dag_run_id=existing.dag_run_id, dry_run=False, only_failed=False, reset_dag_runs=True
            )
            api.task_instances.post_clear_task_instances(dag_id, clear)
            log(f"{dag_id}: cleared the existing run {existing.dag_run_id} to run it again")
            return existing.dag_run_id
        api.dag_runs.delete_dag_run(dag_id, existing.dag_run_id)
        log(f"{dag_id}: replaced the run {existing.dag_run_id} (its conf differs)")
    body = TriggerDAGRunPostBody(
        dag_run_id=f"manual__{logical_date.isoformat()}", logical_date=logical_date, conf=conf
    )
    run = api.dag_runs.trigger_dag_run(dag_id, body)
    log(f"{dag_id}: triggered {run.dag_run_id}")
    return run.dag_run_id


def _backfill(
    api: AirflowApi,
    dag_id: str,
    dates: list[dt.datetime],
    conf: dict,
    reprocess_all: bool,
    details: Any,
    leaves: dict[str, list[str]],
) -> list[RunResult]:
    """One Airflow backfill over the dates' range: a result per run it makes, and one per day it
    leaves alone because that day's run had already succeeded (or is still going on)."""
    first, last = dates[0], dates[-1]
    reprocess = ReprocessBehavior.COMPLETED if reprocess_all else ReprocessBehavior.FAILED
    body = BackfillPostBody(
        dag_id=dag_id, from_date=first, to_date=last, dag_run_conf=conf,
        reprocess_behavior=reprocess, max_active_runs=details.max_active_runs or 1,
    )  # fmt: skip
    span = f"{first:%Y-%m-%d}..{last:%Y-%m-%d}"
    try:
        planned = [b.logical_date for b in api.backfills.create_backfill_dry_run(body).backfills]
    except ApiException as err:  # e.g. a refused param, or no run of its schedule in the range
        result = RunResult(dag_id, first, state="refused", started_by="backfill", leaves=leaves[dag_id])
        result.error = f"Airflow refused the backfill {span}: HTTP {err.status}: {err.body}\n"
        log(f"{dag_id}: backfill {span} refused ({err.status})")
        return [result]
    existing = api.dag_runs.get_dag_runs(
        dag_id, logical_date_gte=first, logical_date_lte=last, limit=1000
    ).dag_runs
    results = [
        RunResult(dag_id, run.logical_date, run_id=run.dag_run_id, started_by="earlier run",
                  state=DONE_BEFORE if run.state == "success" else run.state.value, leaves=leaves[dag_id])
        for run in existing
        if run.logical_date not in planned
    ]  # fmt: skip
    if not planned:
        log(f"{dag_id}: backfill {span}: every day already succeeded, nothing to run")
        return results
    backfill = api.backfills.create_backfill(body)
    log(
        f"{dag_id}: backfill {backfill.id} {span} ({reprocess.value} runs reprocessed): "
        f"{len(planned)} run(s), {len(results)} day(s) left alone"
    )
    for day in planned:
        [run] = api.dag_runs.get_dag_runs(dag_id, logical_date_gte=day, logical_date_lte=day).dag_runs
        results.append(
            RunResult(dag_id, day, run_id=run.dag_run_id, state=run.state.value,
                      started_by=f"backfill {backfill.id}", leaves=leaves[dag_id])
        )  # fmt: skip
    return sorted(results, key=lambda r: r.logical_date)


def _asset_triggered_runs(
    api: AirflowApi,
    dag_ids: list[str],
    details: dict[str, Any],
    since: dt.datetime,
    schedule_from_assets: Callable[[list[str]], None],
    manual: list[str],
    leaves: dict[str, list[str]],
) -> list[RunResult]:
    """The runs the scheduler starts from queued asset events, or, for a DAG whose asset
    condition is not met yet, a result that names the assets it still waits for."""
    assets = {a.id: a.name for a in api.assets.get_assets(limit=1000).assets}
    results, ready = [], []
    for dag_id in dag_ids:
        queued = api.assets.get_dag_asset_queued_events(dag_id).queued_events
        names = {assets[e.asset_id] for e in queued if e.asset_id in assets}
        condition = details[dag_id].asset_expression
        if _condition_met(condition, names):
            ready.append(dag_id)
            continue
        missing = sorted(_asset_names(condition) - names)
        result = RunResult(dag_id, None, state="waiting", started_by="assets", leaves=leaves[dag_id])
        result.error = (
            f"not run: the scheduler starts it once assets {', '.join(missing)} are updated too "
            f"(events queued for: {', '.join(sorted(names)) or 'none'})\n"
        )
        log(f"{dag_id}: waits for asset events of {', '.join(missing)}; not started")
        results.append(result)
    if not ready:
        return results
    schedule_from_assets(ready + manual)
    deadline = time.monotonic() + ASSET_RUN_WAIT_SECONDS
    pending = set(ready)
    while pending and time.monotonic() < deadline:
        for dag_id in sorted(pending):
            runs = api.dag_runs.get_dag_runs(
                dag_id, run_type=["asset_triggered"], run_after_gte=since, order_by=["run_after"]
            ).dag_runs
            for run in runs:
                log(f"{dag_id}: the scheduler started {run.dag_run_id} from asset events")
                results.append(
                    RunResult(dag_id, None, run_id=run.dag_run_id, state=run.state.value,
                              started_by="assets", leaves=leaves[dag_id])
                )  # fmt: skip
            if runs:
                pending.discard(dag_id)
        if pending:
            time.sleep(2)
    for dag_id in sorted(pending):
        result = RunResult(dag_id, None, state="not started", started_by="assets", leaves=leaves[dag_id])
        result.error = (
            f"its asset events were queued, but the scheduler started no run in {ASSET_RUN_WAIT_SECONDS}s\n"
        )
        results.append(result)
    return results


def _condition_met(expression: dict | None, names: set[str]) -> bool:
    """Airflow's asset expression (`{"all": [...]}`, `{"any": [...]}`, `{"asset": {...}}`)
    evaluated on the names of the assets with queued events."""
    if not expression:
        return False
    if "asset" in expression:
        return expression["asset"].get("name") in names
    if "all" in expression:
        return all(_condition_met(e, names) for e in expression["all"])
    if "any" in expression:
        return any(_condition_met(e, names) for e in expression["any"])
    return False


def _asset_names(expression: dict | None) -> set[str]:
    if not expression:
        return set()
    if "asset" in expression:
        return {expression["asset"].get("name")}
    return set().union(*(_asset_names(e) for e in expression.get("all", []) + expression.get("any", [])))


def follow(api: AirflowApi, runs: list[RunResult], deadline: float) -> None:
    """Poll the runs until each has ended, logging every task state change."""
    started = time.monotonic()
    pending = {
        r.label + r.run_id: r for r in runs if r.run_id and r.state not in TERMINAL_RUN_STATES | OK_STATES
    }
    while pending:
        for key, result in sorted(pending.items()):
            run = api.dag_runs.get_dag_run(result.dag_id, result.run_id)
            current = {}  # a mapped task's placeholder (map index -1) goes once it is expanded
            for ti in api.run_task_instances(result.dag_id, result.run_id):
                task = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
                state = ti.state.value if ti.state else None
                if result.tasks.get(task) != state and state:
                    log(f"{result.label}: {task} -> {state}")
                current[task] = state
            result.tasks = current
            result.state = run.state.value
            result.seconds = time.monotonic() - started
            if result.state in TERMINAL_RUN_STATES:
                del pending[key]
                log(f"{result.label}: run {result.shown_state} in {result.seconds:.0f}s")
        if pending and time.monotonic() > deadline:
            for result in pending.values():
                result.state = "timed out"
            return
        if pending:
            time.sleep(2)


def _collect(api: AirflowApi, result: RunResult) -> None:
    """Outputs (the return values of the DAG's last tasks) and, on failure, the error's log."""
    if not result.tasks:
        tis = api.run_task_instances(result.dag_id, result.run_id)
        result.tasks = {ti.task_id: ti.state.value if ti.state else None for ti in tis}
    for task_id in result.leaves:
        if result.tasks.get(task_id) == "success":
            value = api.return_value(result.dag_id, result.run_id, task_id)
            if value is not None:
                result.outputs[task_id] = value
    if result.state == "success":
        return
    for ti in api.run_task_instances(result.dag_id, result.run_id):
        if ti.state == "failed":
            text = api.task_log(result.dag_id, result.run_id, ti.task_id, max(ti.try_number, 1), ti.map_index)
            tail = "\n".join(text.splitlines()[-40:])
            result.error += f"--- task {ti.task_id} failed; end of its log:\n{tail}\n"


def end_unfinished(api: AirflowApi, dag_ids: list[str], why: str) -> list[str]:
    """Cancel the unfinished backfills of `dag_ids` and mark their queued or running runs failed,
    with `why` as the run's note (shown in the UI). Returns what was ended."""
    ended = []
    for dag_id in dag_ids:
        for backfill in api.backfills.list_backfills(dag_id).backfills:
            if backfill.completed_at is None:
                api.backfills.cancel_backfill(backfill.id)
                ended.append(f"{dag_id}: backfill {backfill.id} cancelled")
        for state in ("running", "queued"):
            for run in api.dag_runs.get_dag_runs(dag_id, state=[state], limit=1000).dag_runs:
                api.dag_runs.patch_dag_run(dag_id, run.dag_run_id, DAGRunPatchBody(state="failed"))
                api.dag_runs.patch_dag_run(
                    dag_id, run.dag_run_id, DAGRunPatchBody(note=why), update_mask=["note"]
                )
                ended.append(f"{dag_id}: run {run.dag_run_id} ({state}) marked failed")
    return ended
