"""
### hello_world

The Luigi tutorial's first pipeline (PIPELINES.md 2a), ported:

`make_directory` (results/{id}) -> `hello` + `world` -> `hello_world`

writes `$PIPELINES_DATA_DIR/results/{id}/hello_world.txt` = `Hello World`. A new `id` gives a
fresh folder; an existing one is a no-op (each step finds its output and returns).
"""

import pendulum
from airflow.sdk import Param, dag, task

from steps import hello_world as steps
from steps.core.dag_defaults import DEFAULT_ARGS
from steps.core.notify import run_notifications


@dag(
    dag_id="hello_world",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["tutorial", "luigi"],
    dagrun_timeout=pendulum.duration(hours=1),
    default_args=DEFAULT_ARGS,
    params={
        "id": Param(
            "test",
            type="string",
            pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
            description="name of the results folder",
        ),
    },
    doc_md=__doc__,
    **run_notifications(on_success=True),
)
def hello_world():
    @task
    def make_directory(result_id: str) -> str:
        from steps.core.settings import load_settings

        return steps.make_directory(load_settings().data_dir, result_id)

    @task
    def hello(folder: str) -> str:
        return steps.write_word(folder, "Hello")

    @task
    def world(folder: str) -> str:
        return steps.write_word(folder, "World")

    @task(task_id="hello_world")
    def join(word_files: list[str], folder: str) -> str:
        return steps.join_words(word_files, folder)

    folder = make_directory("{{ params.id }}")
    join([hello(folder), world(folder)], folder)


hello_world()
