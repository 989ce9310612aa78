"""The README's table of pipelines says when each DAG runs: that is checked against what the
scheduler (and the UI) gets, the DAGs serialized as the dag-processor stores them."""

from __future__ import annotations

import re

import pytest

from tests.dags.test_dag_integrity import ROOT

# The table's words, in the UI's words (Airflow's own description of a timetable).
DESCRIPTION_OF = {
    "weekly": "At 00:00, only on Sunday",
    "daily": "At 00:00",
    "hourly": "Every hour",
    "Sat 21:05": "At 21:05, only on Saturday",
    "Sat 21:10": "At 21:10, only on Saturday",
}


def readme_schedules() -> dict[str, str]:
    """{dag_id: schedule column} from the README's table under '## The pipelines'."""
    text = (ROOT / "README.md").read_text().split("## The pipelines", 1)[1]
    rows = re.findall(r"^\| `(\w+)` \|.*\| ([^|]+) \|$", text.split("\n\n", 2)[1], re.MULTILINE)
    assert rows, "the README's pipelines table was not found"
    return {dag_id: schedule.strip() for dag_id, schedule in rows}


@pytest.fixture(scope="module")
def timetables():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    return {
        dag_id: DagSerialization.from_dict(DagSerialization.to_dict(dag)).timetable
        for dag_id, dag in bag.dags.items()
    }


def test_the_readme_table_names_every_dag_and_its_schedule_is_the_dags(timetables):
    from airflow.timetables.simple import AssetTriggeredTimetable, NullTimetable

    documented = readme_schedules()
    assert set(documented) == set(timetables)
    for dag_id, words in documented.items():
        timetable = timetables[dag_id]
        if words.startswith("manual"):
            assert isinstance(timetable, NullTimetable), dag_id
        elif "(assets)" in words:
            assert isinstance(timetable, AssetTriggeredTimetable), dag_id
            # The tables the README names are the assets the DAG waits for.
            names = {asset.name for _, asset in timetable.asset_condition.iter_assets()}
            assert names == {f"warehouse.public.{table}" for table in re.findall(r"`(\w+)`", words)}, dag_id
        else:
            assert timetable.description == DESCRIPTION_OF[words], f"{dag_id}: the README says {words!r}"
