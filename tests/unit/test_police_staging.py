"""The police staging build and promotion, against a real Postgres: the project's script set, the
97 real scripts of the original project, and a promotion whose connection is killed halfway."""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

import psycopg
import pytest

from sandbox.generate_police_source import generate
from steps import police_staging as steps
from steps.core.identifiers import InvalidIdentifierError
from steps.sql_scripts import ScriptError
from tests.conftest import ROOT, shared_data

OWN_SCRIPTS = ROOT / "sql" / "police_staging"


def own_inputs(schema: str = "staging_dev", scripts: Path = OWN_SCRIPTS) -> steps.BuildInputs:
    return steps.resolve_inputs(
        {"schema": schema, "create_tables_dir": "create_tables", "lookup_file": "lookup/lookup_tables.yaml",
         "procedures_file": "stored_procedures/procedures.sql", "populate_dir": "populate"},
        scripts,
    )  # fmt: skip


def build(conn, plan: dict) -> dict:
    """Every step of the DAG, in the DAG's order; returns {step: [statuses]}."""
    schema = plan["schema"]
    statuses: dict[str, list] = {"schema": [steps.ensure_schema(conn, schema)]}
    for item in plan["create"]:
        statuses.setdefault("create", []).append(steps.create_table(conn, schema, item))
    if plan["lookup_file"]:
        statuses["lookups"] = [steps.populate_lookups(conn, schema, plan["lookup_file"])]
    if plan["procedures_file"]:
        statuses["procedures"] = [steps.create_procedures(conn, schema, plan["procedures_file"])]
    for item in plan["populate"]:
        statuses.setdefault("populate", []).append(steps.populate_table(conn, schema, item))
    for item in plan["cleanups"]:
        statuses.setdefault("clean", []).append(steps.clean_table(conn, schema, item))
    return statuses


def planned(plan: dict, stage: str, table: str) -> dict:
    [item] = [item for item in plan[stage] if item["table"] == table]
    return item


def table_versions(conn, schema: str) -> dict[str, list]:
    """Every row's xmin per table: equal before and after means no row was written."""
    tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))]
    return {t: sorted(r[0] for r in conn.execute(f'SELECT xmin::text FROM "{schema}"."{t}"')) for t in tables}


# --- planning: nothing runs ----------------------------------------------------------------------


def test_a_hostile_schema_name_is_refused_before_anything_runs():
    with pytest.raises(InvalidIdentifierError, match=r"schema 'x; drop schema public' is not a plain SQL"):
        own_inputs(schema="x; drop schema public")


def test_the_plan_orders_the_own_tables_by_their_foreign_keys():
    plan = steps.plan_build(own_inputs())
    levels = plan["levels"]
    assert levels == [
        ["lookup_arrest_types", "lookup_complaint_origins", "lookup_event_types", "lookup_force_types",
         "lookup_genders", "lookup_races", "lookup_ranks"],
        ["officers_hub"],
        ["events_hub", "officer_shifts"],
        ["arrests", "complaints", "use_of_force"],
        ["charges"],
    ]  # fmt: skip
    # Both stages walk the tables level by level, in that order.
    assert [i["table"] for i in plan["create"]] == [table for level in levels for table in level]
    assert [i["level"] for i in plan["create"]] == [n for n, level in enumerate(levels) for _ in level]
    assert [(i["level"], i["table"]) for i in plan["populate"]] == [
        (1, "officers_hub"), (2, "events_hub"), (2, "officer_shifts"), (3, "arrests"), (3, "complaints"),
        (3, "use_of_force"), (4, "charges"),
    ]  # fmt: skip
    assert plan["cleanups"][0]["table"] == "officers_hub" and plan["cleanups"][0]["column"] == "last_name"
    assert plan["schema"] == "staging_dev"


def copy_scripts(tmp_path: Path) -> Path:
    folder = tmp_path / "scripts"
    shutil.copytree(OWN_SCRIPTS, folder)
    return folder


def test_a_foreign_key_cycle_is_reported_naming_the_tables(tmp_path):
    scripts = copy_scripts(tmp_path)
    hub = scripts / "create_tables" / "CREATE-staging-officers_hub.sql"
    hub.write_text(
        hub.read_text().replace("last_modified ", "last_event INT REFERENCES staging.events_hub,\n  x ")
    )
    with pytest.raises(steps.BuildError, match=r"foreign keys form a cycle: (events_hub -> officers_hub -> "
                                               r"events_hub|officers_hub -> events_hub -> officers_hub)"):  # fmt: skip
        steps.plan_build(own_inputs(scripts=scripts))


def test_a_reference_to_a_table_without_a_script_is_reported(tmp_path):
    scripts = copy_scripts(tmp_path)
    (scripts / "create_tables" / "CREATE-staging-lookup_ranks.sql").unlink()
    with pytest.raises(steps.BuildError, match=r"no CREATE script: officers_hub -> lookup_ranks"):
        steps.plan_build(own_inputs(scripts=scripts))


def test_a_populate_script_writing_elsewhere_is_refused_at_planning(tmp_path):
    scripts = copy_scripts(tmp_path)
    (scripts / "populate" / "POPULATE-staging-charges.sql").write_text(
        "INSERT INTO staging.charges SELECT 1;\n\nDELETE FROM police_source.charges;\n"
    )
    with pytest.raises(ScriptError, match=r"POPULATE-staging-charges.sql: line 3: police_source.charges is outside"):
        steps.plan_build(own_inputs(scripts=scripts))


def test_a_missing_procedures_file_is_reported_at_planning(tmp_path):
    scripts = copy_scripts(tmp_path)
    (scripts / "stored_procedures" / "procedures.sql").unlink()
    with pytest.raises(ScriptError, match=r"stored_procedures/procedures.sql: no such file"):
        steps.plan_build(own_inputs(scripts=scripts))


def test_a_script_whose_file_name_disagrees_with_its_table_is_refused(tmp_path):
    scripts = copy_scripts(tmp_path)
    (scripts / "create_tables" / "CREATE-staging-extra.sql").write_text("CREATE TABLE staging.other (a INT);")
    with pytest.raises(steps.BuildError, match=r"must create exactly the table extra \(it creates other\)"):
        steps.plan_build(own_inputs(scripts=scripts))


# --- the project's own script set ------------------------------------------------------------------


def test_the_own_script_set_builds_populates_and_a_rerun_changes_nothing(warehouse):
    generate(warehouse)
    plan = steps.plan_build(own_inputs())
    first = build(warehouse, plan)
    assert {s["status"] for s in first["create"]} == {"created"}
    assert first["lookups"][0]["status"] == "populated"
    assert first["procedures"][0]["status"] == "created"
    assert {s["status"] for s in first["populate"]} == {"populated"}
    assert first["clean"] == [{"table": "officers_hub", "status": "cleaned"}]
    summary = steps.verify_build(warehouse, plan)
    assert summary["tables"] == 14 and all(summary["rows_by_table"].values())

    # The data went through the lookups and the functions as meant.
    source_officers = warehouse.execute("SELECT count(*) FROM police_source.officers").fetchone()[0]
    assert summary["rows_by_table"]["officers_hub"] == source_officers
    ranks = dict(warehouse.execute(
        "SELECT r.value, count(*) FROM staging_dev.officers_hub h JOIN staging_dev.lookup_ranks r "
        "ON r.code = h.rank_code GROUP BY 1").fetchall())  # fmt: skip
    assert ranks.get("unknown")  # "Cadet" has no lookup row
    expected_events = warehouse.execute(
        "SELECT (SELECT count(*) FROM police_source.arrests) + (SELECT count(*) FROM police_source.complaints)"
        " + (SELECT count(*) FROM police_source.force_reports)"
    ).fetchone()[0]
    assert summary["rows_by_table"]["events_hub"] == expected_events
    assert (
        warehouse.execute("SELECT count(*) FROM staging_dev.officers_hub WHERE last_name IS NULL").fetchone()[
            0
        ]
        == 0
    )
    # The functions live in the schema being built, nowhere else.
    functions = warehouse.execute(
        "SELECT nspname, proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE proname IN ('normalised_code', 'parse_source_timestamp') ORDER BY 2"
    ).fetchall()
    assert functions == [("staging_dev", "normalised_code"), ("staging_dev", "parse_source_timestamp")]

    before = table_versions(warehouse, "staging_dev")
    second = build(warehouse, plan)
    assert {s["status"] for step in second.values() for s in step if isinstance(s, dict)} == {steps.COMPLETE}
    assert second["schema"] == [steps.COMPLETE]
    assert table_versions(warehouse, "staging_dev") == before


def test_a_stage_goes_on_past_a_failed_table_then_fails_naming_it_and_the_rerun_completes(warehouse, tmp_path):
    """officers_hub's script changes after prepare checked it: it is not run, the tables whose
    foreign keys need officers_hub fail saying so, every other table is created, and the stage
    fails naming each failure. With the checked text back, the rerun creates only what is missing."""
    scripts = copy_scripts(tmp_path)
    plan = steps.plan_build(own_inputs(scripts=scripts))
    steps.ensure_schema(warehouse, "staging_dev")
    hub = scripts / "create_tables" / "CREATE-staging-officers_hub.sql"
    checked = hub.read_text()
    hub.write_text(checked.replace("CREATE TABLE", "DROP SCHEMA public CASCADE; CREATE TABLE", 1))

    with pytest.raises(steps.BuildError) as failed:
        steps.run_stage(warehouse, plan, "create")
    message = str(failed.value)
    assert message.startswith("create: 7 of 14 tables failed (the others are done): officers_hub: failed: ")
    assert "CREATE-staging-officers_hub.sql changed after prepare checked it" in message
    assert "events_hub: failed: events_hub: its foreign keys need staging_dev.officers_hub" in message
    assert "charges: failed: charges: its foreign keys need staging_dev.arrests" in message
    created = {r[0] for r in warehouse.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'staging_dev'")}
    assert created == set(plan["levels"][0])  # the seven lookup tables
    assert warehouse.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'public'").fetchone()

    hub.write_text(checked)
    done = steps.run_stage(warehouse, plan, "create")
    assert [(t["level"], t["status"]) for t in done["tables"]] == [
        (item["level"], steps.COMPLETE if item["level"] == 0 else "created") for item in plan["create"]
    ]


def test_cleanup_splits_both_spellings_of_a_name():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "cleanup", OWN_SCRIPTS / "populate" / "CLEANUP-staging-officers_hub.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.split_name("O'BRIEN , mary a.") == ("Mary", "O'Brien")
    assert module.split_name("  John M.  mcdonald-jones ") == ("John", "Mcdonald-Jones")
    assert module.split_name("SMITH,") == (None, "Smith")
    assert module.split_name("  ") == (None, None)


def test_a_populate_script_that_leaves_its_table_empty_fails_and_writes_nothing(warehouse, tmp_path):
    scripts = copy_scripts(tmp_path)
    plan = steps.plan_build(own_inputs(scripts=scripts))
    build(warehouse, {**plan, "populate": [], "cleanups": []})
    generate(warehouse)
    warehouse.execute("DELETE FROM police_source.shifts")
    warehouse.commit()
    with pytest.raises(steps.BuildError, match=r"POPULATE-staging-officer_shifts.sql ran but left "
                                               r"staging_dev.officer_shifts empty"):  # fmt: skip
        steps.populate_table(warehouse, "staging_dev", planned(plan, "populate", "officer_shifts"))


def test_lookup_rows_are_replaced_without_breaking_the_rows_that_reference_them(warehouse, tmp_path):
    generate(warehouse)
    scripts = copy_scripts(tmp_path)
    plan = steps.plan_build(own_inputs(scripts=scripts))
    build(warehouse, plan)
    lookup_file = scripts / "lookup" / "lookup_tables.yaml"
    # A description changes and a new code comes: officers keep their rank codes.
    lookup_file.write_text(lookup_file.read_text().replace("[3, sergeant, Sergeant]", "[3, sergeant, Sgt.]")
                           .replace("[5, captain, Captain]", "[5, captain, Captain]\n    - [6, chief, Chief]"))  # fmt: skip
    result = steps.populate_lookups(warehouse, "staging_dev", lookup_file)
    assert result["replaced"] == ["lookup_ranks"]
    ranks = dict(warehouse.execute("SELECT code, description FROM staging_dev.lookup_ranks").fetchall())
    assert ranks[3] == "Sgt." and ranks[6] == "Chief"
    assert steps.populate_lookups(warehouse, "staging_dev", lookup_file)["status"] == steps.COMPLETE
    # An unused code goes; a code officers still hold cannot, and then nothing changes.
    lookup_file.write_text(lookup_file.read_text().replace("    - [6, chief, Chief]\n", ""))
    assert steps.populate_lookups(warehouse, "staging_dev", lookup_file)["replaced"] == ["lookup_ranks"]
    used = warehouse.execute(
        "SELECT min(rank_code) FROM staging_dev.officers_hub WHERE rank_code > 0"
    ).fetchone()[0]
    kept = lookup_file.read_text()
    lookup_file.write_text(re.sub(rf"    - \[{used}, .*\n", "", kept, count=1))
    with pytest.raises(steps.BuildError, match=rf"(?s)lookup_tables.yaml: lookup_ranks: .*Key \(code\)=\({used}\) is "
                                               "still referenced"):  # fmt: skip
        steps.populate_lookups(warehouse, "staging_dev", lookup_file)
    warehouse.rollback()
    assert warehouse.execute("SELECT count(*) FROM staging_dev.lookup_ranks").fetchone()[0] == 6
    # A row whose values do not fit the table names the table and row, and changes nothing.
    lookup_file.write_text(kept.replace("[2, female, Female]", "[two, female, Female]"))
    with pytest.raises(
        steps.BuildError, match=r"lookup table lookup_genders: row 3 \['two', 'female', 'Female'\]"
    ):
        steps.populate_lookups(warehouse, "staging_dev", lookup_file)
    warehouse.rollback()
    assert (
        warehouse.execute("SELECT description FROM staging_dev.lookup_ranks WHERE code = 3").fetchone()[0]
        == "Sgt."
    )


def functions_in(conn, schema: str) -> list[tuple]:
    """(name, catalog row xmin, definition) of a schema's functions: equal means untouched."""
    return conn.execute(
        "SELECT p.proname, p.xmin::text, pg_get_functiondef(p.oid) FROM pg_proc p "
        "WHERE p.pronamespace = to_regnamespace(%s) ORDER BY 1", (schema,)
    ).fetchall()  # fmt: skip


def test_functions_are_recreated_when_a_body_changes_and_only_in_the_schema_built(warehouse, tmp_path):
    procedures = OWN_SCRIPTS / "stored_procedures" / "procedures.sql"
    for schema in ("staging", "staging_dev"):  # staging: what a promotion left there earlier
        steps.ensure_schema(warehouse, schema)
        assert steps.create_procedures(warehouse, schema, procedures)["status"] == "created"
    in_use = functions_in(warehouse, "staging")
    built = functions_in(warehouse, "staging_dev")
    assert steps.create_procedures(warehouse, "staging_dev", procedures)["status"] == steps.COMPLETE
    assert functions_in(warehouse, "staging_dev") == built

    changed = tmp_path / "procedures.sql"
    changed.write_text(procedures.read_text().replace("'unknown')", "'not given')"))
    assert steps.create_procedures(warehouse, "staging_dev", changed)["status"] == "created"
    assert warehouse.execute("SELECT staging_dev.normalised_code('  ')").fetchone() == ("not given",)
    assert functions_in(warehouse, "staging") == in_use
    assert warehouse.execute("SELECT staging.normalised_code('  ')").fetchone() == ("unknown",)


def test_without_postgis_only_the_tables_needing_it_and_theirs_fail(warehouse, tmp_path):
    """On the project's own scripts plus a geometry table and a table referencing it (the shape of
    the real set's addresses and dispatches), on a Postgres without PostGIS."""
    scripts = tmp_path / "scripts"
    shutil.copytree(OWN_SCRIPTS, scripts)
    tables = scripts / "create_tables"
    (tables / "CREATE-staging-beats.sql").write_text(
        "CREATE TABLE staging.beats (beat_id INT PRIMARY KEY, area geometry(Polygon, 4326));\n"
    )
    (tables / "CREATE-staging-beat_patrols.sql").write_text(
        "CREATE TABLE staging.beat_patrols (beat_id INT REFERENCES staging.beats (beat_id),\n"
        "  officer_id INT REFERENCES staging.officers_hub (officer_id));\n"
    )
    plan = steps.plan_build(own_inputs(scripts=scripts))
    created, errors = build_tolerating_failures(warehouse, plan)
    assert len(created) == 14 and sorted(errors) == ["beat_patrols", "beats"]
    assert "needs PostGIS (CREATE-staging-beats.sql uses a geometry type)" in errors["beats"]
    assert "its foreign keys need staging_dev.beats, which do not exist" in errors["beat_patrols"]
    with pytest.raises(steps.BuildError, match="table beats does not exist; table beat_patrols does not exist"):
        steps.verify_build(warehouse, plan)


# --- the 97 real scripts ------------------------------------------------------------------------


def real_inputs(schema: str) -> steps.BuildInputs:
    folder = shared_data("police_eis")
    return steps.resolve_inputs(
        {"schema": schema, "create_tables_dir": "create_tables", "lookup_file": "lookup/lookup_tables.yaml",
         "procedures_file": "stored_procedures/load_common_stored_procedures.sql", "populate_dir": ""},
        folder,
    )  # fmt: skip


def build_tolerating_failures(conn, plan: dict) -> tuple[list[str], dict[str, str]]:
    """Create level by level as the DAG does: (tables created in order, {table: error})."""
    schema, created, errors = plan["schema"], [], {}
    steps.ensure_schema(conn, schema)
    for item in plan["create"]:
        try:
            steps.create_table(conn, schema, item)
            created.append(item["table"])
        except steps.BuildError as err:
            conn.rollback()
            errors[item["table"]] = str(err)
    return created, errors


def check_real_build(conn, plan: dict, created: list[str]) -> None:
    schema = plan["schema"]
    # Every foreign key in the database points at a table created before its own.
    position = {table: n for n, table in enumerate(created)}
    fks = conn.execute(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c "
        "WHERE c.contype = 'f' AND c.connamespace = to_regnamespace(%s)", (schema,)
    ).fetchall()  # fmt: skip
    in_database = {(a.split(".")[-1], b.split(".")[-1]) for a, b in fks}
    in_scripts = {(item["table"], parent) for item in plan["create"]
                  if item["table"] in position for parent in item["references"]}  # fmt: skip
    assert in_database == in_scripts and len(in_database) >= 25
    assert all(position[parent] < position[child] for child, parent in in_database)
    # The 33 lookup tables hold the YAML's rows.
    import yaml

    lookups = yaml.safe_load(Path(plan["lookup_file"]).read_text())
    assert len(lookups) == 33
    result = steps.populate_lookups(conn, schema, plan["lookup_file"])
    assert result["status"] == "populated" and len(result["replaced"]) == 33
    for table, spec in lookups.items():
        rows = conn.execute(
            f'SELECT code, value, description FROM "{schema}"."{table}" ORDER BY code'
        ).fetchall()
        assert sorted(rows) == sorted(tuple(r) for r in spec["rows"]), table
    assert steps.create_procedures(conn, schema, plan["procedures_file"])["status"] == "created"
    assert steps.create_procedures(conn, schema, plan["procedures_file"])["status"] == steps.COMPLETE


def test_the_97_real_scripts_build_without_postgis_but_its_4_tables(warehouse):
    plan = steps.plan_build(real_inputs("staging_dev"))
    assert len(plan["create"]) == 97
    created, errors = build_tolerating_failures(warehouse, plan)
    assert len(created) == 93
    assert sorted(errors) == ["addresses", "dispatches", "patrol_divisions", "police_area_shapefiles"]
    assert "needs PostGIS (CREATE-staging-addresses.sql uses a geometry type)" in errors["addresses"]
    assert "its foreign keys need staging_dev.addresses, which do not exist" in errors["dispatches"]
    check_real_build(warehouse, plan, created)
    with pytest.raises(steps.BuildError) as incomplete:
        steps.verify_build(warehouse, plan)
    assert str(incomplete.value) == (
        "the build of staging_dev is incomplete: table addresses does not exist; table patrol_divisions does "
        "not exist; table police_area_shapefiles does not exist; table dispatches does not exist"
    )


DEBIAN_POSTGRES = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))


@pytest.fixture
def postgis_server(tmp_path):
    """A throwaway cluster run by Debian's Postgres, which finds Debian's PostGIS package
    (`make system-deps` installs postgresql-<major>-postgis-3 where it can)."""
    from sandbox.embedded_postgres import EmbeddedPostgres, free_port

    for binary in reversed(DEBIAN_POSTGRES):
        major = binary.parts[-3]
        if Path(f"/usr/share/postgresql/{major}/extension/postgis.control").exists():
            server = EmbeddedPostgres(tmp_path / "pg", free_port(), bin_dir=binary.parent).start()
            yield server
            server.stop()
            return
    pytest.fail("no Debian Postgres with PostGIS here: `make test` as root installs it (make system-deps), "
                "else apt-get install postgresql-<major>-postgis-3")


def test_the_97_real_scripts_all_build_with_postgis(postgis_server):
    with psycopg.connect(postgis_server.uri()) as conn:
        conn.execute("CREATE EXTENSION postgis")
        conn.commit()
        plan = steps.plan_build(real_inputs("staging_dev"))
        created, errors = build_tolerating_failures(conn, plan)
        assert errors == {}
        assert len(created) == 97
        check_real_build(conn, plan, created)


# --- promotion ----------------------------------------------------------------------------------


def promote_in_thread(uri: str, outcome: dict) -> threading.Thread:
    def run():
        with psycopg.connect(uri) as conn:
            outcome["pid"] = conn.info.backend_pid
            try:
                outcome["result"] = steps.promote(conn, "staging_dev", "staging", lock_timeout_seconds=60)
            except psycopg.Error as err:
                outcome["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_until_waiting_for_a_lock(conn, pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        if state and state[0] == "Lock":
            return
        time.sleep(0.1)
    raise AssertionError("the promotion never waited for the reader's lock")


def test_promotion_is_atomic_when_its_connection_is_killed_halfway(warehouse, warehouse_uri):
    for schema, rows in (("staging", ["old"]), ("staging_dev", ["new", "newer"])):
        warehouse.execute(f"CREATE SCHEMA {schema}")
        warehouse.execute(f"CREATE TABLE {schema}.officers_hub (name TEXT)")
        warehouse.cursor().executemany(f"INSERT INTO {schema}.officers_hub VALUES (%s)", [(r,) for r in rows])
    warehouse.commit()

    # An analyst's query holds the old staging open: the promotion renames both schemas, then
    # waits to drop the old one. That is when its connection dies.
    with psycopg.connect(warehouse_uri) as reader, psycopg.connect(warehouse_uri, autocommit=True) as admin:
        reader.execute("SELECT count(*) FROM staging.officers_hub").fetchone()
        outcome: dict = {}
        thread = promote_in_thread(warehouse_uri, outcome)
        deadline = time.monotonic() + 10
        while "pid" not in outcome and time.monotonic() < deadline:
            time.sleep(0.05)
        wait_until_waiting_for_a_lock(admin, outcome["pid"])
        assert admin.execute("SELECT pg_terminate_backend(%s)", (outcome["pid"],)).fetchone()[0]
        thread.join(30)
        assert isinstance(outcome.get("error"), psycopg.OperationalError)
        reader.rollback()

    with psycopg.connect(warehouse_uri) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM staging.officers_hub")] == ["old"]
        assert sorted(r[0] for r in conn.execute("SELECT name FROM staging_dev.officers_hub")) == [
            "new",
            "newer",
        ]
        assert not steps.schema_exists(conn, "staging_replaced")

        # Once nothing holds the old schema, the same promotion goes through.
        result = steps.promote(conn, "staging_dev", "staging")
        assert result == {"promoted": "staging_dev", "to": "staging", "tables": 1, "replaced_old": True}
        assert sorted(r[0] for r in conn.execute("SELECT name FROM staging.officers_hub")) == ["new", "newer"]
        assert (
            conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'staging_dev'").fetchone()[0] == 0
        )
        assert steps.schema_exists(conn, "staging_dev")
        # An empty source is not promoted over a good schema.
        with pytest.raises(steps.BuildError, match="schema staging_dev has no tables: build it first"):
            steps.promote(conn, "staging_dev", "staging")


def test_promotion_gives_up_after_its_lock_timeout_changing_nothing(warehouse, warehouse_uri):
    for schema in ("staging", "staging_dev"):
        warehouse.execute(f"CREATE SCHEMA {schema}")
        warehouse.execute(f"CREATE TABLE {schema}.t AS SELECT '{schema}' AS origin")
    warehouse.commit()
    with psycopg.connect(warehouse_uri) as reader, psycopg.connect(warehouse_uri) as conn:
        reader.execute("SELECT * FROM staging.t").fetchall()
        with pytest.raises(
            steps.BuildError, match=r"gave up after 1 s waiting for queries that read staging"
        ):
            steps.promote(conn, "staging_dev", "staging", lock_timeout_seconds=1)
        reader.rollback()
        assert conn.execute("SELECT origin FROM staging.t").fetchone()[0] == "staging"
        assert conn.execute("SELECT origin FROM staging_dev.t").fetchone()[0] == "staging_dev"


def test_promotion_refuses_hostile_names_before_any_sql(warehouse):
    with pytest.raises(InvalidIdentifierError):
        steps.promote(warehouse, "staging_dev", 'staging"; drop schema public; --')
