"""
### police_staging

The police early-intervention project's staging schema (PIPELINES.md 5), weekly and by hand.
Builds schema `schema` (default `staging_dev`) from a script set; relative paths start at the
profile's `police_scripts_dir` (the project's own set in `sql/police_staging/`). Pass an empty
`lookup_file`, `procedures_file` or `populate_dir` to leave that part out.

1. `prepare`: reads and checks every script before any SQL runs (plain identifiers; no script may
   touch a schema other than the one being built; foreign keys: a cycle or a reference to a table
   without a script fails here, naming the tables), creates the schema if missing, and orders the
   tables by foreign-key level. Its plan names each script with the SHA-256 of the text checked:
   that text is what runs (a file changed since fails its table).
2. `create_tables`: each `CREATE-staging-<table>.sql` in that order, each table in its own
   transaction; its log and its result list every table with its level and status. A table that
   cannot be created (e.g. it needs PostGIS) fails alone, the tables that reference it fail saying
   why, the rest build, and the task then fails naming them.
3. `populate_lookups` (YAML rows, one transaction) and `create_procedures`.
4. `populate_tables`: each `POPULATE-staging-<table>.sql`, in the same order and the same way;
   then `clean_tables`: each `CLEANUP-staging-<table>.py`.
5. `verify_build`: row counts per table; fails listing whatever is missing.

Every task after `prepare` runs once the tasks before it are done, failed or not: a failure stays
with its tables.
Each task runs its completeness check first and returns "already complete" when it holds: a
rerun of a finished build runs the checks and nothing else. `police_staging_promote` then moves
the build to `staging`.
"""

import pendulum
from airflow.sdk import Param, TriggerRule, dag, task

from steps import police_staging as steps
from steps.core.dag_defaults import DEFAULT_ARGS
from steps.core.identifiers import IDENTIFIER_PATTERN
from steps.core.notify import run_notifications

# A stage runs once the one before it is done, failed or not, provided `prepare` succeeded (it is
# every stage's direct upstream, through the plan): a table that fails must not stop the
# unrelated ones, and each step checks in the database that the tables it needs exist.
AFTER_EARLIER_STAGES = TriggerRule.ALL_DONE_MIN_ONE_SUCCESS


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
    @task
    def prepare(
        schema: str, create_tables_dir: str, lookup_file: str, procedures_file: str, populate_dir: str
    ) -> dict:
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

    @task(trigger_rule=AFTER_EARLIER_STAGES)
    def stage(plan: dict, name: str) -> dict:
        from steps.core.warehouse import warehouse_connection

        with warehouse_connection() as conn:
            return steps.run_stage(conn, plan, name)

    @task(trigger_rule=AFTER_EARLIER_STAGES)
    def populate_lookups(plan: dict) -> dict:
        from steps.core.warehouse import warehouse_connection

        if not plan["lookup_file"]:
            return {"status": "no lookup file in this build"}
        with warehouse_connection() as conn:
            return steps.populate_lookups(conn, plan["schema"], plan["lookup_file"])

    @task(trigger_rule=AFTER_EARLIER_STAGES)
    def create_procedures(plan: dict) -> dict:
        from steps.core.warehouse import warehouse_connection

        if not plan["procedures_file"]:
            return {"status": "no procedures file in this build"}
        with warehouse_connection() as conn:
            return steps.create_procedures(conn, plan["schema"], plan["procedures_file"])

    @task(trigger_rule=AFTER_EARLIER_STAGES)
    def verify_build(plan: dict) -> dict:
        from steps.core.warehouse import warehouse_connection

        with warehouse_connection() as conn:
            return steps.verify_build(conn, plan)

    plan = prepare(
        "{{ params.schema }}",
        "{{ params.create_tables_dir }}",
        "{{ params.lookup_file }}",
        "{{ params.procedures_file }}",
        "{{ params.populate_dir }}",
    )
    create_tables = stage.override(task_id="create_tables")(plan, "create")
    definitions = [populate_lookups(plan), create_procedures(plan)]
    populate_tables = stage.override(task_id="populate_tables")(plan, "populate")
    clean_tables = stage.override(task_id="clean_tables")(plan, "cleanups")
    create_tables >> definitions >> populate_tables >> clean_tables >> verify_build(plan)


police_staging()
