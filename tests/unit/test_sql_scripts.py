"""Reading staging scripts: what counts as code, what a script may touch, what it references."""

from __future__ import annotations

import pytest

from steps.sql_scripts import ScriptError, analyse, render


def test_the_template_schema_is_replaced_in_code_only():
    sql = """-- staging.a in a comment stays
/* so does staging.b, /* nested */ too */
CREATE TABLE staging.c (note TEXT DEFAULT 'staging.d', "staging" INT);
CREATE FUNCTION staging.f() RETURNS INT LANGUAGE plpgsql AS $body$ BEGIN RETURN (SELECT 1 FROM staging.e); END $body$;
"""
    out = render(sql, "t.sql", "staging_dev")
    assert 'CREATE TABLE "staging_dev".c' in out
    assert "-- staging.a in a comment stays" in out
    assert "so does staging.b, /* nested */ too" in out
    assert "'staging.d'" in out
    assert '"staging" INT' in out  # a column named staging, not a schema
    assert 'FUNCTION "staging_dev".f()' in out
    # A function body names the schema it runs against once promoted: left as written.
    assert "FROM staging.e" in out


def test_functions_are_created_in_the_target_schema_whatever_the_script_says():
    sql = """CREATE OR REPLACE FUNCTION public.f1() RETURNS INT AS $$ SELECT 1 $$ LANGUAGE sql;
CREATE FUNCTION f2() RETURNS INT AS $$ SELECT 2 $$ LANGUAGE sql;
CREATE OR REPLACE FUNCTION production.f3() RETURNS INT AS $x$ SELECT 3 $x$ LANGUAGE sql;"""
    out = render(sql, "p.sql", "build_1")
    assert out.count('"build_1".') == 3
    assert "public.f1" not in out and "production.f3" not in out
    facts = analyse(sql, "p.sql")
    assert [f.name for f in facts.functions] == ["f1", "f2", "f3"]
    assert facts.function_bodies == {"f1": " SELECT 1 ", "f2": " SELECT 2 ", "f3": " SELECT 3 "}


def test_foreign_keys_are_read_from_code_only():
    sql = """CREATE TABLE staging.charges (
  /* arrest_id varchar references staging.arrests(arrest_id), */
  -- officer_id INT REFERENCES staging.officers,
  event_id INT REFERENCES staging.events_hub (event_id) ON UPDATE CASCADE,
  parent INT REFERENCES charges (id),
  note TEXT DEFAULT 'REFERENCES staging.nothing'
);"""
    facts = analyse(sql, "c.sql")
    assert [t.name for t in facts.tables_created] == ["charges"]
    assert [r.name for r in facts.references] == ["events_hub", "charges"]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DROP SCHEMA public CASCADE;", "DROP SCHEMA is not allowed"),
        ("CREATE SCHEMA other;", "CREATE SCHEMA is not allowed"),
        ("INSERT INTO public.users SELECT 1;", "public.users is outside the schema being built"),
        ("WITH x AS (DELETE FROM audit.log RETURNING 1) SELECT 1;", "audit.log is outside"),
        ("UPDATE other.t SET a = 1;", "other.t is outside"),
        ("TRUNCATE staging.a, public.b;", "public.b is outside"),
        ("INSERT INTO events SELECT 1;", "events: name its schema"),
        ("ALTER TABLE staging.t SET SCHEMA public;", "SET SCHEMA"),
        ("CREATE TABLE staging.t (id INT REFERENCES public.users (id));", "a foreign key to public.users"),
        ("DO $$ BEGIN EXECUTE 'DROP SCHEMA public CASCADE'; END $$;", "`DO $$ BEGIN EXECUTE 'DROP SCHEMA"),
        ("SET search_path TO public;", "`SET search_path TO ...` is not allowed"),
        ("CREATE TABLE staging.t (a INT); COMMIT;", "`COMMIT ...` is not allowed"),
        ("SELECT * INTO public.copy FROM staging.t;", "public.copy is outside"),
        ("CREATE TABLE staging.t (a INT); /* never closed", "a /* comment is never closed"),
        ("CREATE TABLE staging.t (a TEXT DEFAULT 'x);", "a ' quote is never closed"),
    ],
)
def test_a_script_that_would_touch_another_schema_is_refused(sql, message):
    with pytest.raises(ScriptError) as raised:
        analyse(sql, "bad.sql")
    assert message in str(raised.value)
    assert str(raised.value).startswith("bad.sql: line 1:")


def test_errors_name_the_line():
    sql = "CREATE TABLE staging.t (\n  a INT\n);\n\nINSERT INTO\n  public.t VALUES (1);"
    with pytest.raises(ScriptError, match=r"bad.sql: line 6: public.t is outside"):
        analyse(sql, "bad.sql")


def test_a_statement_postgres_cannot_parse_is_refused_at_planning_naming_its_line():
    sql = "CREATE TABLE staging.t (\n  a INT,\n  b TEXT NOT NULL DEFAUT 'x'\n);"
    with pytest.raises(ScriptError, match=r"bad.sql: line 3: not valid SQL: syntax error at or near \"DEFAUT\""):
        analyse(sql, "bad.sql")


def test_data_changes_in_the_target_schema_are_accepted():
    sql = """INSERT INTO staging.t (a) SELECT a FROM police_source.raw r
ON CONFLICT (a) DO UPDATE SET a = EXCLUDED.a;
UPDATE staging.t SET a = 2 FROM police_source.raw WHERE TRUE;
SELECT * FROM police_source.raw FOR UPDATE;
COMMENT ON COLUMN staging.t.a IS 'a comment';
CREATE UNIQUE INDEX IF NOT EXISTS t_a ON staging.t (a);"""
    facts = analyse(sql, "ok.sql")
    assert facts.tables_created == [] and not facts.uses_postgis
