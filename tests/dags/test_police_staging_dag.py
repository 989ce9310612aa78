"""The police staging DAGs' shape: what Airflow checks on trigger, and how failures travel."""

from __future__ import annotations

import copy

import pytest

from tests.dags.test_dag_integrity import ROOT


@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "police_staging.py"))
    bag.collect_dags(str(ROOT / "dags" / "police_staging_promote.py"))
    return bag.dags


@pytest.mark.parametrize("schema", ["x; drop schema public", "staging_dev\n", 'a"b', "1abc", "a" * 64])
def test_a_schema_param_that_is_not_a_plain_identifier_is_refused_on_trigger(dags, schema):
    from airflow.sdk.definitions.param import ParamValidationError

    # What Airflow does with a run's conf before the run exists: merge it into the params, validate.
    def validate(dag_id: str, conf: dict) -> None:
        params = copy.deepcopy(dags[dag_id].params)
        params.update(conf)
        params.validate()

    with pytest.raises(ParamValidationError, match="Invalid input for param schema"):
        validate("police_staging", {"schema": schema})
    validate("police_staging", {"schema": "eis_dev_2"})
    with pytest.raises(ParamValidationError, match="Invalid input for param target"):
        validate("police_staging_promote", {"target": schema})


def test_failures_stay_with_their_tables_and_the_run_ends_with_the_verification(dags):
    from airflow.sdk import TriggerRule

    dag = dags["police_staging"]
    assert [t.task_id for t in dag.tasks if not t.downstream_list] == ["verify_build"]
    # One task per stage, each after the stage before and after `prepare`, whose plan it walks.
    upstream = {
        "create_tables": {"prepare"},
        "populate_lookups": {"prepare", "create_tables"},
        "create_procedures": {"prepare", "create_tables"},
        "populate_tables": {"prepare", "populate_lookups", "create_procedures"},
        "clean_tables": {"prepare", "populate_tables"},
        "verify_build": {"prepare", "clean_tables"},
    }
    assert {t.task_id: t.upstream_task_ids for t in dag.tasks if t.task_id != "prepare"} == upstream
    # However the stage before ended, provided prepare succeeded (else: upstream_failed).
    assert {dag.get_task(t).trigger_rule for t in upstream} == {TriggerRule.ALL_DONE_MIN_ONE_SUCCESS}
    assert dags["police_staging_promote"].timetable.__class__.__name__ == "NullTimetable"  # manual only
