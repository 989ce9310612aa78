"""
### police_staging

The police early-intervention project's staging schema (PIPELINES.md 5), weekly and by hand.
Builds schema `schema` (default `staging_dev`) from a script set; relative paths start at the
profile's `police_scripts_dir` (the project's own set in `sql/police_staging/`). Pass an empty
`lookup_file`, `procedures_file` or `populate_dir` to leave that part out.

1. `prepare`: reads and checks every script before any SQL runs (plain identifiers; no script may
   touch a schema other than the one being built; foreign keys: a cycle or a reference to a table
   without a script fails here, naming the tables), creates the schema if missing, and groups the
   tables into foreign-key levels.
2. `create_tables.level_N`: one mapped task per `CREATE-staging-<table>.sql`, level by level, so
   no table is created before the tables it references. A table that cannot be created (e.g. it
   needs PostGIS) fails alone; the tables that reference it fail saying why; the rest build.
   (`level_N_tables` hands each level its list; levels the plan leaves empty end skipped.)
3. `populate_lookups` (YAML rows, one transaction) and `create_procedures`.
4. `populate_tables.level_N`: one mapped task per `POPULATE-staging-<table>.sql`, in the same
   order; then `clean_tables`: each `CLEANUP-staging-<table>.py`.
5. `verify_build`: row counts per table; fails listing whatever is missing.

Each task runs its completeness check first and returns "already complete" when it holds: a
rerun of a finished build runs the checks and nothing else. `police_staging_promote` then moves
the build to `staging`.
"""

from pathlib import Path

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Param, TaskGroup, TriggerRule, dag, get_current_context, task

from steps import police_staging as steps
from steps.core.dag_defaults import DEFAULT_ARGS
from steps.core.identifiers import IDENTIFIER_PATTERN
from steps.core.notify import run_notifications

# A level runs once the level before it is done, failed or not, provided its list of tables was
# computed (i.e. `prepare` succeeded): a table that fails must not stop the unrelated ones, and
# each task checks in the database that the tables it needs exist. An empty level is skipped,
# and so are the (empty) levels after it.
LEVEL_RULE = TriggerRule.ALL_DONE_MIN_ONE_SUCCESS


@dag(
    dag_id="police_staging",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["luigi", "postgres", "weekly"],
    dagrun_timeout=pendulum.duration(hours=6),
    default_args=DEFAULT_ARGS,
    params={
        "schema": Param(
            steps.DEFAULT_SCHEMA,
            type="string",
            pattern=IDENTIFIER_PATTERN,
            description="the schema to build (a plain identifier)",
        ),
        "create_tables_dir": Param(
            "create_tables", type="string", description="folder of CREATE-staging-<table>.sql scripts"
        ),
        "lookup_file": Param(
            "lookup/lookup_tables.yaml",
            type="string",
            description="YAML rows of the lookup tables ('' for none)",
        ),
        "procedures_file": Param(
            "stored_procedures/procedures.sql",
            type="string",
            description="SQL script of functions ('' for none)",
        ),
        "populate_dir": Param(
            "populate",
            type="string",
            description="folder of POPULATE-staging-<table>.sql and CLEANUP-staging-<table>.py "
            "('' to create the tables only)",
        ),
    },  # fmt: skip
    doc_md=__doc__,
    **run_notifications(on_success=True),
)
def police_staging():
    @task(multiple_outputs=True)
    def prepare(
        schema: str, create_tables_dir: str, lookup_file: str, procedures_file: str, populate_dir: str
    ):
        from steps.core.settings import load_settings
        from steps.core.warehouse import warehouse_connection

        inputs = steps.resolve_inputs(
            {"schema": schema, "create_tables_dir": create_tables_dir, "lookup_file": lookup_file,
             "procedures_file": procedures_file, "populate_dir": populate_dir},
            load_settings().police_scripts_dir,
        )  # fmt: skip
        plan = steps.plan_build(inputs)
        with warehouse_connection() as conn:
            steps.ensure_schema(conn, plan["schema"])
        return plan

    @task(trigger_rule=LEVEL_RULE, map_index_template="{{ table }}")
    def create_table(item: dict) -> dict:
        from steps.core.warehouse import warehouse_connection

        get_current_context()["table"] = item["table"]
        with warehouse_connection() as conn:
            return steps.create_table(conn, item["schema"], item["table"], Path(item["script"]))

    @task
    def populate_lookups(schema: str, lookup_file: str | None) -> dict:
        from steps.core.warehouse import warehouse_connection

        if not lookup_file:
            return {"status": "no lookup file in this build"}
        with warehouse_connection() as conn:
            return steps.populate_lookups(conn, schema, Path(lookup_file))

    @task
    def create_procedures(schema: str, procedures_file: str | None) -> dict:
        from steps.core.warehouse import warehouse_connection

        if not procedures_file:
            return {"status": "no procedures file in this build"}
        with warehouse_connection() as conn:
            return steps.create_procedures(conn, schema, Path(procedures_file))

    @task(trigger_rule=LEVEL_RULE, map_index_template="{{ table }}")
    def populate_table(item: dict) -> dict:
        from steps.core.warehouse import warehouse_connection

        get_current_context()["table"] = item["table"]
        with warehouse_connection() as conn:
            return steps.populate_table(conn, item["schema"], item["table"], Path(item["script"]))

    @task(map_index_template="{{ table }}")
    def clean_table(item: dict) -> dict:
        from steps.core.warehouse import warehouse_connection

        get_current_context()["table"] = item["table"]
        with warehouse_connection() as conn:
            return steps.clean_table(
                conn, item["schema"], item["table"], Path(item["script"]), item["column"]
            )

    @task
    def verify_build(plan: dict) -> dict:
        from steps.core.warehouse import warehouse_connection

        with warehouse_connection() as conn:
            return steps.verify_build(conn, plan)

    @task
    def tables(plan: dict, key: str) -> list[dict]:
        # Airflow maps only over a task's whole return value: each level's list is one task's.
        return plan[key]

    def stage_over(task_id: str) -> EmptyOperator:
        # Marks a stage as over, however its tasks ended; run by the scheduler, not by a worker.
        return EmptyOperator(task_id=task_id, trigger_rule=TriggerRule.ALL_DONE)

    def levels(group_id: str, stage: str, step, start) -> EmptyOperator:
        """MAX_LEVELS mapped tasks in a row, each over the tables of one foreign-key level; the
        level lists are computed once `start` is over. Returns the marker of the stage's end."""
        with TaskGroup(group_id):
            previous = None
            for n in range(steps.MAX_LEVELS):
                level_tables = tables.override(task_id=f"level_{n}_tables")(plan, f"{stage}_{n}")
                start >> level_tables
                level = step.override(task_id=f"level_{n}").expand(item=level_tables)
                if previous is not None:
                    previous >> level
                previous = level
        end = stage_over(f"{group_id}_over")
        previous >> end
        return end

    plan = prepare(
        "{{ params.schema }}",
        "{{ params.create_tables_dir }}",
        "{{ params.lookup_file }}",
        "{{ params.procedures_file }}",
        "{{ params.populate_dir }}",
    )
    tables_created = levels("create_tables", "create", create_table, start=plan)
    definitions = [
        populate_lookups(plan["schema"], plan["lookup_file"]),
        create_procedures(plan["schema"], plan["procedures_file"]),
    ]
    tables_created >> definitions
    definitions_over = stage_over("definitions_over")
    definitions >> definitions_over
    tables_populated = levels("populate_tables", "populate", populate_table, start=definitions_over)
    cleanups = tables.override(task_id="cleanup_tables")(plan, "cleanups")
    tables_populated >> cleanups
    cleanups_over = stage_over("cleanups_over")
    clean_table.expand(item=cleanups) >> cleanups_over >> verify_build(plan)


police_staging()
