"""Reading the police staging SQL scripts before any of them runs (PIPELINES.md 5).

The scripts are templates written against the schema `staging` (`CREATE TABLE staging.arrests`);
a build runs them against another schema, usually `staging_dev`. Postgres' own parser and scanner
(libpg_query, through pglast) read each script, so that:

- every object a statement creates, changes or drops is read from its parse tree, and a script
  that would touch a schema other than the target is refused, naming the file and line;
- the foreign keys (`REFERENCES staging.officers_hub`) are the parse tree's: a commented-out
  REFERENCES is not a dependency;
- the template schema is replaced in code only, token by token: `staging.` in a comment, a string
  or a function body is left as written (a function body names the schema it runs against once
  promoted), and the rest of the text (layout, comments) is kept.

Only the statements a staging build needs are accepted (table, index, view, sequence, type and
function DDL, data changes, comments, ANALYZE); anything else (`DO`, `SET`, `CREATE SCHEMA`,
`COMMIT`, ...) is refused, because it could escape the checks or the step's transaction.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from steps.core.files import utf8_text
from steps.core.identifiers import checked_identifier, quote_identifier

TEMPLATE_SCHEMA = "staging"


class ScriptError(ValueError):
    """A script that cannot be run as it is; the message names the file and line."""


@dataclass(frozen=True)
class Name:
    schema: str | None
    name: str
    line: int

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass
class ScriptFacts:
    """What one script does, read from its parse tree."""

    source: str
    tables_created: list[Name] = field(default_factory=list)
    references: list[Name] = field(default_factory=list)  # foreign keys
    functions: list[Name] = field(default_factory=list)
    function_bodies: dict[str, str] = field(default_factory=dict)  # name -> body, as Postgres keeps it
    uses_postgis: bool = False


_POSTGIS_TYPES = {"geometry", "geography", "box2d", "box3d", "raster"}
# The objects a staging script may create, alter, drop or comment on (pglast's ObjectType names).
_OBJECTS = {"TABLE", "INDEX", "VIEW", "MATVIEW", "SEQUENCE", "FUNCTION", "PROCEDURE", "TYPE", "COLUMN"}
_COMMENTS = {"SQL_COMMENT", "C_COMMENT"}
_PARSE_ERRORS = {  # libpg_query's words for an unclosed token, and ours
    "unterminated /* comment": "a /* comment is never closed",
    "unterminated quoted string": "a ' quote is never closed",
    "unterminated quoted identifier": 'a " quote is never closed',
    "unterminated dollar-quoted string": "a $...$ quoted text is never closed",
}


class _Script:
    """A script's text, its code tokens and its statements, with lines for the messages."""

    def __init__(self, sql: str, source: str):
        from pglast.parser import ParseError, parse_sql, scan

        self.sql, self.source = sql, source
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", sql)]
        try:
            self.statements = parse_sql(sql)
        except ParseError as err:
            message, offset = err.args[0], err.args[1] if len(err.args) > 1 else 0
            known = next((ours for theirs, ours in _PARSE_ERRORS.items() if message.startswith(theirs)), None)
            raise self.error(known or f"not valid SQL: {message}", self.line(offset)) from None
        self.tokens = [t for t in scan(sql) if t.name not in _COMMENTS]
        self._token_starts = [t.start for t in self.tokens]

    def line(self, offset: int) -> int:
        return bisect.bisect_right(self._line_starts, offset)

    def error(self, message: str, line: int) -> ScriptError:
        return ScriptError(f"{self.source}: line {line}: {message}")

    def text(self, token) -> str:
        return self.sql[token.start : token.end + 1]

    def statement_tokens(self, raw) -> list:
        """The code tokens of one statement (its location may start at a comment before it)."""
        start = raw.stmt_location
        end = start + raw.stmt_len if raw.stmt_len else len(self.sql)
        first, after = (bisect.bisect_left(self._token_starts, offset) for offset in (start, end))
        return self.tokens[first:after]


def _walk(node: Any):
    """Every parse-tree node under `node`, itself included."""
    from pglast import ast

    if isinstance(node, ast.Node):
        yield node
        for attribute in node:
            yield from _walk(getattr(node, attribute))
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _walk(item)


def analyse(sql: str, source: str) -> ScriptFacts:
    """What the script creates, references and writes; raises ScriptError for what it may not do.

    Every object written must be qualified with the template schema (`staging.x`): with an
    unqualified `INSERT INTO x`, Postgres would pick `x` from whichever schema of the search path
    has one. Function names are the exception: the build creates every function in its target
    schema, whatever the script says (see `render`).
    """
    script = _Script(sql, source)
    facts = ScriptFacts(source)
    for raw in script.statements:
        tokens = script.statement_tokens(raw)
        _analyse_statement(script, raw.stmt, script.line(tokens[0].start) if tokens else 1, tokens, facts)
    return facts


def _refusal(script: _Script, tokens: list, line: int) -> ScriptError:
    """What a statement that is not allowed is called in the message: `DROP SCHEMA`, or its first
    words."""
    words = [script.text(t) for t in tokens[:4]]
    first = words[0].upper() if words else ""
    if first in ("CREATE", "DROP", "ALTER", "COMMENT"):
        kinds = [w.upper() for w in words[1:] if w.upper() not in ("OR", "REPLACE", "ON", "TEMP", "UNIQUE")]
        what = f"{first}{' ON' if first == 'COMMENT' else ''} {kinds[0] if kinds else '(nothing)'}"
        return script.error(f"{what} is not allowed in a staging script", line)
    return script.error(
        f"`{' '.join(words[:3])} ...` is not allowed in a staging script (only table, index, view, sequence "
        "and function definitions, comments and data changes)",
        line,
    )


def _analyse_statement(script: _Script, stmt, line: int, tokens: list, facts: ScriptFacts) -> None:
    from pglast import ast, enums

    def name_line(offset: int | None) -> int:
        return script.line(offset) if offset is not None and offset >= 0 else line

    def relation(range_var) -> Name:
        return Name(range_var.schemaname, range_var.relname, name_line(range_var.location))

    def named(parts) -> Name:  # [schema,] name, as String nodes (no location: the statement's line)
        values = [part.sval for part in parts]
        return Name(values[-2] if len(values) > 1 else None, values[-1], line)

    writes: list[Name] = []
    match stmt:
        case ast.CreateStmt(relation=table):
            writes.append(relation(table))
            facts.tables_created.append(writes[-1])
        case ast.CreateTableAsStmt(into=into, objtype=objtype):
            if objtype == enums.ObjectType.OBJECT_TABLE:
                facts.tables_created.append(relation(into.rel))
        case ast.IndexStmt(relation=table) | ast.AlterTableStmt(relation=table) | ast.ViewStmt(view=table):
            writes.append(relation(table))
        case ast.CreateSeqStmt(sequence=sequence) | ast.AlterSeqStmt(sequence=sequence):
            writes.append(relation(sequence))
        case ast.RenameStmt(relation=table) if table is not None:
            writes.append(relation(table))
        case ast.CompositeTypeStmt(typevar=type_):
            writes.append(relation(type_))
        case ast.CreateEnumStmt(typeName=parts) | ast.CreateRangeStmt(typeName=parts):
            writes.append(named(parts))
        case ast.CreateFunctionStmt(funcname=parts, options=options):
            facts.functions.append(named(parts))
            body = next((o.arg[0].sval for o in options or () if o.defname == "as" and o.arg), None)
            if body is not None:
                facts.function_bodies[parts[-1].sval] = body
        case ast.DropStmt(removeType=kind, objects=objects) if kind.name.removeprefix("OBJECT_") in _OBJECTS:
            for dropped in objects:
                parts = dropped.objname if isinstance(dropped, ast.ObjectWithArgs) else dropped
                writes.append(named(parts))
        case ast.CommentStmt(objtype=kind, object=target) if kind.name.removeprefix("OBJECT_") in _OBJECTS:
            if kind not in (enums.ObjectType.OBJECT_FUNCTION, enums.ObjectType.OBJECT_PROCEDURE):
                # COMMENT ON COLUMN x.col: the table is the name without its last part.
                parts = target[:-1] if kind == enums.ObjectType.OBJECT_COLUMN else target
                writes.append(named(parts))
        case ast.VacuumStmt(is_vacuumcmd=False) | ast.SelectStmt() | ast.InsertStmt() | ast.UpdateStmt():
            pass  # what they write is found below, wherever it is in the statement
        case ast.DeleteStmt() | ast.TruncateStmt():
            pass
        case ast.AlterObjectSchemaStmt():
            raise script.error("ALTER ... SET SCHEMA would move an object out of the schema built", line)
        case _:
            raise _refusal(script, tokens, line)

    for node in _walk(stmt):
        match node:
            case ast.InsertStmt(relation=table) | ast.UpdateStmt(relation=table) | ast.IntoClause(rel=table):
                writes.append(relation(table))
            case ast.DeleteStmt(relation=table) | ast.MergeStmt(relation=table):
                writes.append(relation(table))
            case ast.TruncateStmt(relations=tables):
                writes += [relation(table) for table in tables]
            case ast.Constraint(contype=enums.ConstrType.CONSTR_FOREIGN, pktable=referenced):
                foreign = relation(referenced)
                if foreign.schema not in (None, TEMPLATE_SCHEMA):
                    raise script.error(f"a foreign key to {foreign}, outside the schema being built: refused",
                                       foreign.line)  # fmt: skip
                facts.references.append(Name(TEMPLATE_SCHEMA, foreign.name, foreign.line))
            case ast.TypeName(names=parts) if parts and parts[-1].sval in _POSTGIS_TYPES:
                facts.uses_postgis = True

    for name in writes:
        if name.schema is None:
            raise script.error(f"{name.name}: name its schema ({TEMPLATE_SCHEMA}.{name.name}); an "
                               "unqualified name could resolve to a table of another schema",
                               name.line)  # fmt: skip
        if name.schema != TEMPLATE_SCHEMA:
            raise script.error(f"{name} is outside the schema being built ({TEMPLATE_SCHEMA}.*): refused",
                               name.line)  # fmt: skip


def _identifier(text: str) -> str:
    """The name an identifier token stands for: folded to lower case unless quoted."""
    return text[1:-1].replace('""', '"') if text.startswith('"') else text.lower()


def render(sql: str, source: str, schema: str) -> str:
    """The script with the template schema replaced by `schema` in code, and every function it
    defines created in `schema` (the real procedures file names `public` and `production`: a build
    of `staging_dev` must not replace the functions that production uses today)."""
    target = quote_identifier(checked_identifier(schema, "schema"), "schema")
    script = _Script(sql, source)
    tokens = script.tokens
    replaced: dict[int, tuple[int, str]] = {}  # start -> (end, text)
    for index, token in enumerate(tokens):
        creates_function = token.name in ("FUNCTION", "PROCEDURE") and _follows_create(tokens, index)
        if creates_function and index + 1 < len(tokens):
            # `FUNCTION [schema.]name` becomes `FUNCTION target.name`.
            first = name = tokens[index + 1]
            if index + 3 < len(tokens) and tokens[index + 2].name == "ASCII_46":
                name = tokens[index + 3]
            replaced[first.start] = (name.end + 1, f"{target}.{script.text(name)}")
    for token, after in pairwise(tokens):
        if (token.name == "IDENT" and after.name == "ASCII_46" and token.start not in replaced
                and _identifier(script.text(token)) == TEMPLATE_SCHEMA):  # fmt: skip
            replaced[token.start] = (token.end + 1, target)
    out, position = [], 0
    for start in sorted(replaced):
        if start < position:
            continue  # inside a function name already rewritten
        end, text = replaced[start]
        out += [sql[position:start], text]
        position = end
    out.append(sql[position:])
    return "".join(out)


def _follows_create(tokens: list, index: int) -> bool:
    """Whether the FUNCTION keyword at `index` follows CREATE [OR REPLACE]."""
    before = [t.name for t in tokens[max(0, index - 3) : index]]
    return before[-1:] == ["CREATE"] or before[-3:] == ["CREATE", "OR", "REPLACE"]


def read_script(path: Path) -> str:
    """A file of a script set (SQL, YAML or Python) as text: UTF-8 and without NUL bytes, which
    neither Postgres nor Python takes; else a ScriptError naming the file and line."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ScriptError(f"{path}: no such file") from None
    text = utf8_text(data, str(path), ScriptError)
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise ScriptError(f"{path}: line {line}: a NUL byte, which no script may hold")
    return text
