"""The police staging schema (PIPELINES.md 5): build a schema from SQL scripts, fill it, promote it.

A build reads a script set:
- `create_tables_dir/CREATE-staging-<table>.sql`: one table each, ordered by their foreign keys;
- `lookup_file`: YAML `{table: {columns: [...], rows: [[...], ...]}}`, the lookup tables' rows;
- `procedures_file`: functions, (re)created in the schema being built;
- `populate_dir/POPULATE-staging-<table>.sql`: fills a table (from a source schema), and an
  optional `CLEANUP-staging-<table>.py` that finishes it in Python: it defines `COLUMN` (complete
  when that column holds a non-null value) and `clean(conn, schema, table)`.

`prepare` reads and checks all of it before any SQL runs (identifiers, schemas touched, foreign
keys: a cycle or a reference to a table without a script is an error naming the tables) and
orders the tables by level: a table's level is one more than its deepest parent's. Its plan names
each script with the SHA-256 of the text it checked; the steps run that text and refuse a file
that changed since.

Each stage (`create_tables`, `populate_tables`, `clean_tables`) walks the plan's tables in that
order, each table in its own transaction: a table that fails stays failed alone (the tables that
need it fail saying why), the others go on, and the stage then fails listing what failed.

Every step first runs its completeness check (the table exists / has rows / the column has a
non-null value / the lookup rows and function bodies are those of the files) and returns, saying
so in its log, when it holds: a rerun of a finished build runs the checks and nothing else.

`promote` replaces `staging` with the built `staging_dev` in one transaction.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import time
import types
from collections.abc import Mapping
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from steps.core.identifiers import checked_identifier, qualified_name, quote_identifier
from steps.core.warehouse import merge_rows
from steps.sql_scripts import analyse, read_script, render

log = logging.getLogger(__name__)

CREATE_PREFIX = "CREATE-staging-"
POPULATE_PREFIX = "POPULATE-staging-"
CLEANUP_PREFIX = "CLEANUP-staging-"
DEFAULT_SCHEMA = "staging_dev"
PROMOTED_SCHEMA = "staging"
COMPLETE = "already complete"


class BuildError(ValueError):
    """The script set or the database is not in a state the build can go on from."""


@dataclass(frozen=True)
class BuildInputs:
    schema: str
    create_tables_dir: Path
    lookup_file: Path | None
    procedures_file: Path | None
    populate_dir: Path | None


def resolve_inputs(params: Mapping[str, str], scripts_dir: Path) -> BuildInputs:
    """The run's params as checked values: the schema a plain identifier, paths relative to the
    script set folder unless absolute, an empty path meaning "none" (all but the tables)."""

    def path(key: str) -> Path | None:
        value = (params.get(key) or "").strip()
        return None if not value else Path(value) if Path(value).is_absolute() else scripts_dir / value

    create_tables_dir = path("create_tables_dir")
    if create_tables_dir is None:
        raise BuildError("param create_tables_dir is empty: the build needs its CREATE scripts")
    return BuildInputs(
        schema=checked_identifier(params.get("schema", ""), "schema"),
        create_tables_dir=create_tables_dir,
        lookup_file=path("lookup_file"),
        procedures_file=path("procedures_file"),
        populate_dir=path("populate_dir"),
    )


# --- reading the script set -----------------------------------------------------------------


@dataclass(frozen=True)
class TableScript:
    table: str
    path: Path
    references: tuple[str, ...]  # tables its foreign keys point at
    uses_postgis: bool
    sql: str  # the text these facts were read from: what runs


def _table_of(path: Path, prefix: str) -> str:
    name = path.name.removeprefix(prefix).removesuffix(path.suffix)
    try:
        return checked_identifier(name, "table")
    except ValueError as err:
        raise BuildError(f"{path}: {err}") from None


def read_table_script(path: Path) -> TableScript:
    """One CREATE script: it must create exactly the table its file name says."""
    table = _table_of(path, CREATE_PREFIX)
    sql = read_script(path)
    facts = analyse(sql, str(path))
    created = [name.name for name in facts.tables_created]
    if created != [table]:
        raise BuildError(f"{path}: a CREATE script must create exactly the table {table} "
                         f"(it creates {', '.join(created) or 'no table'})")  # fmt: skip
    references = tuple(sorted({ref.name for ref in facts.references} - {table}))  # self-references
    return TableScript(table, path, references, facts.uses_postgis, sql)


def read_table_scripts(directory: Path) -> dict[str, TableScript]:
    if not directory.is_dir():
        raise BuildError(f"create_tables_dir {directory} is not a folder")
    scripts = [read_table_script(path) for path in sorted(directory.glob(f"{CREATE_PREFIX}*.sql"))]
    if not scripts:
        raise BuildError(f"{directory} holds no {CREATE_PREFIX}<table>.sql script")
    return {script.table: script for script in scripts}


def foreign_key_levels(tables: Mapping[str, TableScript]) -> list[list[str]]:
    """Tables grouped by level: level 0 references nothing, level n references tables of levels
    below n only. A reference to a table without a script, or a cycle, is an error."""
    missing = [f"{t.table} -> {ref} ({t.path.name})" for t in tables.values()
               for ref in t.references if ref not in tables]  # fmt: skip
    if missing:
        raise BuildError("foreign keys reference tables that have no CREATE script: " + "; ".join(missing))
    sorter = TopologicalSorter({t.table: t.references for t in tables.values()})
    try:
        order = list(sorter.static_order())
    except CycleError as err:
        cycle = err.args[1]
        raise BuildError(f"foreign keys form a cycle: {' -> '.join(reversed(cycle))}; "
                         "no creation order satisfies them") from None  # fmt: skip
    level: dict[str, int] = {}
    for table in order:  # parents come first
        level[table] = 1 + max((level[ref] for ref in tables[table].references), default=-1)
    return [sorted(t for t in order if level[t] == n) for n in range(max(level.values()) + 1)]


@dataclass(frozen=True)
class LookupTable:
    table: str
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]


def read_lookups(path: Path) -> dict[str, LookupTable]:
    import yaml

    try:
        document = yaml.safe_load(read_script(path))
    except (OSError, yaml.YAMLError) as err:
        raise BuildError(f"lookup_file {path}: {err}") from None
    if not isinstance(document, dict) or not document:
        raise BuildError(f"{path}: expected a mapping {{table: {{columns: [...], rows: [[...]]}}}}")
    lookups = {}
    for table, spec in document.items():
        where = f"{path}: {table}"
        try:
            checked_identifier(table, "table")
            if not isinstance(spec, dict) or set(spec) != {"columns", "rows"}:
                raise BuildError(f"{where}: expected exactly the keys columns and rows")
            columns = tuple(checked_identifier(c, "column") for c in spec["columns"])
        except ValueError as err:
            raise BuildError(f"{where}: {err}") from None
        rows = spec["rows"] or []
        for number, row in enumerate(rows, start=1):
            if not isinstance(row, list) or len(row) != len(columns):
                raise BuildError(f"{where}: row {number} {row!r} does not have the {len(columns)} "
                                 f"values of {list(columns)}")  # fmt: skip
        lookups[table] = LookupTable(table, columns, tuple(tuple(row) for row in rows))
    return lookups


@dataclass(frozen=True)
class Cleanup:
    table: str
    path: Path
    column: str  # complete when it holds a non-null value
    text: str  # the module's source, as checked


def read_cleanup(path: Path) -> Cleanup:
    """A cleanup module, read without running it: `COLUMN = "..."` and `def clean(...)`."""
    table = _table_of(path, CLEANUP_PREFIX)
    text = read_script(path)
    try:
        module = ast.parse(text, str(path))
    except SyntaxError as err:
        raise BuildError(f"{path}: line {err.lineno}: {err.msg}") from None
    columns = [node.value.value for node in module.body if isinstance(node, ast.Assign)
               and [getattr(t, "id", None) for t in node.targets] == ["COLUMN"]
               and isinstance(node.value, ast.Constant)]  # fmt: skip
    functions = {node.name for node in module.body if isinstance(node, ast.FunctionDef)}
    if len(columns) != 1 or "clean" not in functions:
        raise BuildError(f"{path}: a cleanup defines COLUMN = \"<column>\" (complete when it holds a "
                         "non-null value) and def clean(conn, schema, table)")  # fmt: skip
    try:
        return Cleanup(table, path, checked_identifier(columns[0], "COLUMN"), text)
    except ValueError as err:
        raise BuildError(f"{path}: {err}") from None


def read_populate_dir(directory: Path, tables: Mapping[str, TableScript]) -> tuple[dict, dict]:
    """({table: (POPULATE script, its checked text)}, {table: Cleanup}); every table named must
    have a CREATE script."""
    if not directory.is_dir():
        raise BuildError(f"populate_dir {directory} is not a folder")
    populate = {}
    for path in sorted(directory.glob(f"{POPULATE_PREFIX}*.sql")):
        text = read_script(path)
        analyse(text, str(path))
        populate[_table_of(path, POPULATE_PREFIX)] = (path, text)
    cleanups = {c.table: c for c in map(read_cleanup, sorted(directory.glob(f"{CLEANUP_PREFIX}*.py")))}
    scripts = [(table, path) for table, (path, _) in populate.items()]
    for table, path in [*scripts, *((c.table, c.path) for c in cleanups.values())]:
        if table not in tables:
            raise BuildError(f"{path}: there is no CREATE script for table {table}")
    orphans = sorted(set(cleanups) - set(populate))
    if orphans:
        raise BuildError(f"cleanups without a {POPULATE_PREFIX}<table>.sql script: {', '.join(orphans)}")
    return populate, cleanups


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def plan_build(inputs: BuildInputs) -> dict:
    """Everything checked, nothing run: the plan the stages walk (JSON, for XCom).

    Keys: schema; levels (the tables' names, level by level); create and populate (one item per
    table, in foreign-key order: table, level, script, sha256; create's also references and
    uses_postgis); lookup_file, procedures_file (or None); cleanups (table, script, sha256, column).
    """
    tables = read_table_scripts(inputs.create_tables_dir)
    levels = foreign_key_levels(tables)
    level_of = {table: n for n, names in enumerate(levels) for table in names}
    ordered = [table for names in levels for table in names]

    def item(table: str, path: Path, text: str) -> dict:
        return {"table": table, "level": level_of[table], "script": str(path), "sha256": sha256_of(text)}

    plan: dict = {
        "schema": inputs.schema,
        "levels": levels,
        "create": [item(t, tables[t].path, tables[t].sql)
                   | {"references": list(tables[t].references), "uses_postgis": tables[t].uses_postgis}
                   for t in ordered],
        "lookup_file": None,
        "procedures_file": None,
    }  # fmt: skip
    if inputs.lookup_file is not None:
        lookups = read_lookups(inputs.lookup_file)
        unknown = sorted(set(lookups) - set(tables))
        if unknown:
            raise BuildError(
                f"{inputs.lookup_file}: no CREATE script for lookup table(s) {', '.join(unknown)}"
            )
        plan["lookup_file"] = str(inputs.lookup_file)
    if inputs.procedures_file is not None:
        analyse(read_script(inputs.procedures_file), str(inputs.procedures_file))
        plan["procedures_file"] = str(inputs.procedures_file)
    populate, cleanups = read_populate_dir(inputs.populate_dir, tables) if inputs.populate_dir else ({}, {})
    plan["populate"] = [item(t, populate[t][0], populate[t][1]) for t in ordered if t in populate]
    plan["cleanups"] = [item(c.table, c.path, c.text) | {"column": c.column}
                        for c in sorted(cleanups.values(), key=lambda c: ordered.index(c.table))]  # fmt: skip
    needs_postgis = sorted(t.table for t in tables.values() if t.uses_postgis)
    log.info("plan for schema %s: %d tables in %d foreign-key levels (%s); %d lookup file, %d procedures "
             "file, %d populate scripts, %d cleanups%s", inputs.schema, len(tables), len(levels),
             " | ".join(", ".join(level) for level in levels), inputs.lookup_file is not None,
             inputs.procedures_file is not None, len(populate), len(cleanups),
             f"; PostGIS needed by {', '.join(needs_postgis)}" if needs_postgis else "")  # fmt: skip
    return plan


# --- the database side ------------------------------------------------------------------------


def schema_exists(conn, schema: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None


def table_exists(conn, schema: str, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified_name(schema, table),)).fetchone()[0]


def has_rows(conn, schema: str, table: str) -> bool:
    return conn.execute(f"SELECT EXISTS (SELECT 1 FROM {qualified_name(schema, table)})").fetchone()[0]


def postgis_installed(conn) -> bool:
    return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone() is not None


def _use_schema(conn, schema: str) -> None:
    # For this transaction only: unqualified names (types, functions) resolve in the schema being
    # built, then in public, where extensions such as PostGIS keep theirs.
    conn.execute("SELECT set_config('search_path', %s, true)", (f"{quote_identifier(schema)}, public",))


def _run_script(conn, sql: str, path: Path, schema: str) -> None:
    """Run a script's checked text, rendered for `schema`."""
    _use_schema(conn, schema)
    conn.execute(render(sql, str(path), schema))


def ensure_schema(conn, schema: str) -> str:
    if schema_exists(conn, schema):
        log.info("schema %s exists: %s", schema, COMPLETE)
        return COMPLETE
    conn.execute(f"CREATE SCHEMA {quote_identifier(schema, 'schema')}")
    conn.commit()
    log.info("created schema %s", schema)
    return "created"


def checked_text(item: Mapping) -> str:
    """The text of a planned script, which must be the text `prepare` checked (same SHA-256)."""
    text = read_script(Path(item["script"]))
    if sha256_of(text) != item["sha256"]:
        raise BuildError(f"{item['script']} changed after prepare checked it: run the build again, "
                         "so that what runs is what was checked")  # fmt: skip
    return text


def create_table(conn, schema: str, item: Mapping) -> dict:
    """Run one planned CREATE script, unless the table exists."""
    table, path = item["table"], Path(item["script"])
    if table_exists(conn, schema, table):
        log.info("%s.%s exists: %s", schema, table, COMPLETE)
        return {"table": table, "status": COMPLETE}
    missing = [ref for ref in item["references"] if not table_exists(conn, schema, ref)]
    if missing:
        raise BuildError(f"{table}: its foreign keys need {', '.join(f'{schema}.{m}' for m in missing)}, "
                         "which do not exist (not created?)")  # fmt: skip
    if item["uses_postgis"] and not postgis_installed(conn):
        raise BuildError(f"{table} needs PostGIS ({path.name} uses a geometry type), which this "
                         "database lacks: CREATE EXTENSION postgis (as a superuser), then rerun")  # fmt: skip
    _run_script(conn, checked_text(item), path, schema)
    conn.commit()
    log.info("created %s.%s from %s", schema, table, path.name)
    return {"table": table, "status": "created"}


def _lookup_differs(conn, schema: str, lookup: LookupTable) -> bool:
    """Whether the table's rows differ from the file's (both loaded, compared in SQL types)."""
    target = qualified_name(schema, lookup.table)
    columns = ", ".join(quote_identifier(c) for c in lookup.columns)
    conn.execute("DROP TABLE IF EXISTS pg_temp.lookup_incoming")
    conn.execute(
        f"CREATE TEMP TABLE lookup_incoming ON COMMIT DROP AS SELECT {columns} FROM {target} LIMIT 0"
    )
    placeholders = ", ".join(["%s"] * len(lookup.columns))
    for number, row in enumerate(lookup.rows, start=1):
        try:
            with conn.transaction():
                conn.execute(f"INSERT INTO pg_temp.lookup_incoming ({columns}) VALUES ({placeholders})", row)
        except Exception as err:
            raise BuildError(f"lookup table {lookup.table}: row {number} {list(row)}: {err}") from None
    incoming = "pg_temp.lookup_incoming"
    return conn.execute(
        f"SELECT EXISTS (SELECT {columns} FROM {target} EXCEPT ALL SELECT {columns} FROM {incoming})"
        f" OR EXISTS (SELECT {columns} FROM {incoming} EXCEPT ALL SELECT {columns} FROM {target})"
    ).fetchone()[0]


def _primary_key(conn, schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY (i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary",
        (qualified_name(schema, table),),
    ).fetchall()
    return [row[0] for row in rows]


def _replace_lookup_rows(conn, schema: str, lookup: LookupTable) -> None:
    """Make the table hold the incoming rows. Upserted on the primary key (then the rest deleted)
    where the file has it: a plain delete-and-insert would break the foreign keys that point at
    a lookup row even when the row itself does not change."""
    target = qualified_name(schema, lookup.table)
    columns = ", ".join(quote_identifier(c) for c in lookup.columns)
    key = _primary_key(conn, schema, lookup.table)
    if key and set(key) <= set(lookup.columns):
        with conn.cursor() as cur:
            merge_rows(cur, target, "pg_temp.lookup_incoming", lookup.columns, key, remove_missing=True)
    else:
        conn.execute(f"DELETE FROM {target}")
        conn.execute(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM pg_temp.lookup_incoming")


def populate_lookups(conn, schema: str, lookup_file: Path) -> dict:
    """Give every lookup table the file's rows, all tables in one transaction; tables that
    already hold exactly those rows are left alone."""
    lookups = read_lookups(Path(lookup_file))
    missing = [t for t in lookups if not table_exists(conn, schema, t)]
    if missing:
        raise BuildError(
            f"lookup tables missing in {schema}: {', '.join(missing)} (their create tasks failed?)"
        )
    import psycopg

    replaced = []
    for lookup in lookups.values():
        if _lookup_differs(conn, schema, lookup):
            try:
                _replace_lookup_rows(conn, schema, lookup)
            except psycopg.errors.IntegrityError as err:  # e.g. a code that rows still reference
                raise BuildError(f"{lookup_file}: {lookup.table}: {err}") from None
            replaced.append(lookup.table)
    conn.commit()
    if not replaced:
        log.info("all %d lookup tables hold the rows of %s: %s", len(lookups), lookup_file, COMPLETE)
        return {"lookup_tables": len(lookups), "status": COMPLETE}
    log.info(
        "replaced the rows of %d of %d lookup tables: %s", len(replaced), len(lookups), ", ".join(replaced)
    )
    return {"lookup_tables": len(lookups), "replaced": replaced, "status": "populated"}


def create_procedures(conn, schema: str, procedures_file: Path) -> dict:
    """(Re)create the script's functions in `schema`, unless each exists there with the same body."""
    path = Path(procedures_file)
    sql = read_script(path)
    facts = analyse(sql, str(path))
    names = sorted({f.name for f in facts.functions})
    existing = dict(conn.execute(
        "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = to_regnamespace(%s)", (schema,)
    ).fetchall())  # fmt: skip
    stale = [
        n for n in names if n not in existing or facts.function_bodies.get(n, existing[n]) != existing[n]
    ]
    if not stale:
        log.info(
            "the %d functions of %s exist in %s with the same bodies: %s",
            len(names),
            path.name,
            schema,
            COMPLETE,
        )
        return {"functions": names, "status": COMPLETE}
    _run_script(conn, sql, path, schema)
    conn.commit()
    log.info("created %d functions in %s from %s: %s", len(names), schema, path.name, ", ".join(names))
    return {"functions": names, "status": "created"}


def populate_table(conn, schema: str, item: Mapping) -> dict:
    """Run one planned POPULATE script, unless the table has rows; fails if it leaves the table empty."""
    table, path = item["table"], Path(item["script"])
    if not table_exists(conn, schema, table):
        raise BuildError(f"{schema}.{table} does not exist (not created?): nothing to populate")
    if has_rows(conn, schema, table):
        log.info("%s.%s has rows: %s", schema, table, COMPLETE)
        return {"table": table, "status": COMPLETE}
    _run_script(conn, checked_text(item), path, schema)
    rows = conn.execute(f"SELECT count(*) FROM {qualified_name(schema, table)}").fetchone()[0]
    if not rows:
        conn.rollback()
        raise BuildError(f"{path.name} ran but left {schema}.{table} empty: does its source hold rows?")
    conn.commit()
    log.info("populated %s.%s: %d rows", schema, table, rows)
    return {"table": table, "rows": rows, "status": "populated"}


def _has_values(conn, schema: str, table: str, column: str) -> bool:
    condition = f"{quote_identifier(column)} IS NOT NULL"
    return conn.execute(
        f"SELECT EXISTS (SELECT 1 FROM {qualified_name(schema, table)} WHERE {condition})"
    ).fetchone()[0]


def clean_table(conn, schema: str, item: Mapping) -> dict:
    """Run a table's planned Python cleanup, unless its column already holds a non-null value."""
    table, path, column = item["table"], Path(item["script"]), item["column"]
    if not table_exists(conn, schema, table) or not has_rows(conn, schema, table):
        raise BuildError(f"{schema}.{table} is missing or empty (not populated?): nothing to clean")
    if _has_values(conn, schema, table, column):
        log.info("%s.%s.%s has values: %s", schema, table, column, COMPLETE)
        return {"table": table, "status": COMPLETE}
    module = types.ModuleType(f"staging_cleanup_{table}")
    module.__file__ = str(path)
    exec(compile(checked_text(item), str(path), "exec"), module.__dict__)  # the planned module, as checked
    module.clean(conn, schema, table)
    if not _has_values(conn, schema, table, column):
        conn.rollback()
        raise BuildError(f"{path.name} ran but {schema}.{table}.{column} holds no value")
    conn.commit()
    log.info("cleaned %s.%s with %s", schema, table, path.name)
    return {"table": table, "status": "cleaned"}


STAGES = {"create": create_table, "populate": populate_table, "cleanups": clean_table}


def run_stage(conn, plan: Mapping, stage: str) -> dict:
    """Run one stage's step over the plan's tables in foreign-key order, each in its own
    transaction. A table that fails is rolled back and the walk goes on (a table needing it then
    fails saying so); a transient error (the connection lost, say) ends the walk at once, for the
    task's retry, which finds the tables done so far complete. Fails at the end listing every
    table that failed; returns each table's status, in order, when none did."""
    from steps.core.retries import transient_reason

    schema, step, statuses, failed = plan["schema"], STAGES[stage], [], {}
    for item in plan[stage]:
        started = time.monotonic()
        try:
            status = step(conn, schema, item)["status"]
        except Exception as err:
            conn.rollback()
            if transient_reason(err):
                raise
            failed[item["table"]] = status = f"failed: {err}"
        log.info("%s, level %s: %-32s %s (%.1f s)", stage, item["level"], item["table"], status,
                 time.monotonic() - started)  # fmt: skip
        statuses.append({"table": item["table"], "level": item["level"], "status": status})
    if failed:
        raise BuildError(f"{stage}: {len(failed)} of {len(statuses)} tables failed (the others are done): "
                         + "; ".join(f"{table}: {why}" for table, why in failed.items()))  # fmt: skip
    return {"schema": schema, "stage": stage, "tables": statuses}


def verify_build(conn, plan: Mapping) -> dict:
    """Row counts of every planned table, and a failure listing whatever the build is missing."""
    schema = plan["schema"]
    rows, problems = {}, []
    for item in plan["create"]:
        if table_exists(conn, schema, item["table"]):
            rows[item["table"]] = conn.execute(
                f"SELECT count(*) FROM {qualified_name(schema, item['table'])}"
            ).fetchone()[0]
        else:
            problems.append(f"table {item['table']} does not exist")
    if plan.get("lookup_file"):
        for lookup in read_lookups(Path(plan["lookup_file"])).values():
            if lookup.table in rows and _lookup_differs(conn, schema, lookup):
                problems.append(f"lookup table {lookup.table} does not hold the rows of the lookup file")
    for item in plan["populate"]:
        if rows.get(item["table"]) == 0:
            problems.append(f"table {item['table']} is empty")
    for cleanup in plan["cleanups"]:
        if rows.get(cleanup["table"]) and not _has_values(conn, schema, cleanup["table"], cleanup["column"]):
            problems.append(f"{cleanup['table']}.{cleanup['column']} holds no value (cleanup not run)")
    conn.rollback()
    log.info("schema %s: %d tables, %d rows\n%s", schema, len(rows), sum(rows.values()),
             "\n".join(f"  {table:<40} {count:>10}" for table, count in sorted(rows.items())))  # fmt: skip
    if problems:
        raise BuildError(f"the build of {schema} is incomplete: " + "; ".join(problems))
    return {"schema": schema, "tables": len(rows), "rows": sum(rows.values()), "rows_by_table": rows}


# --- promotion ----------------------------------------------------------------------------------


def promote(
    conn, source: str = DEFAULT_SCHEMA, target: str = PROMOTED_SCHEMA, lock_timeout_seconds: int = 60
) -> dict:
    """Replace schema `target` with `source` and recreate `source` empty, in one transaction: a
    failure (or a killed connection) at any point leaves both as they were.

    The old `target` is renamed aside first and dropped last: dropping needs every one of its
    tables' locks, and waits (up to the lock timeout) for queries still reading them.
    """
    source, target = checked_identifier(source, "source schema"), checked_identifier(target, "target schema")
    if source == target:
        raise BuildError(f"source and target are both {source}")
    parked = checked_identifier(f"{target}_replaced", "schema")
    if not schema_exists(conn, source):
        raise BuildError(f"schema {source} does not exist: build it first (DAG police_staging)")
    tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (source,)).fetchone()[0]
    if not tables:
        raise BuildError(f"schema {source} has no tables: build it first (DAG police_staging)")
    if schema_exists(conn, parked):
        raise BuildError(f"schema {parked} exists; a promotion needs that name free (drop it or rename it)")
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(lock_timeout_seconds)}s",))
    replaced = schema_exists(conn, target)
    if replaced:
        conn.execute(f"ALTER SCHEMA {quote_identifier(target)} RENAME TO {quote_identifier(parked)}")
    conn.execute(f"ALTER SCHEMA {quote_identifier(source)} RENAME TO {quote_identifier(target)}")
    conn.execute(f"CREATE SCHEMA {quote_identifier(source)}")
    if replaced:
        import psycopg

        try:
            conn.execute(f"DROP SCHEMA {quote_identifier(parked)} CASCADE")
        except psycopg.errors.LockNotAvailable:
            conn.rollback()
            raise BuildError(f"gave up after {lock_timeout_seconds} s waiting for queries that read {target} "
                             "to finish; nothing changed") from None  # fmt: skip
    conn.commit()
    log.info("promoted %s to %s (%d tables)%s; %s is empty again", source, target, tables,
             f", replacing the old {target}" if replaced else "", source)  # fmt: skip
    return {"promoted": source, "to": target, "tables": tables, "replaced_old": replaced}
