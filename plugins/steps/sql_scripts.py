"""Reading the police staging SQL scripts before any of them runs (PIPELINES.md 5).

The scripts are templates written against the schema `staging` (`CREATE TABLE staging.arrests`);
a build runs them against another schema, usually `staging_dev`. This module tokenizes a script
the way Postgres does (comments, string literals, quoted identifiers and dollar-quoted function
bodies are told apart from code), so that:

- the template schema is replaced in code only: `staging.` in a comment, a string or a function
  body is left as written (a function body names the schema it runs against once promoted);
- every object a statement creates, changes or drops is found, and a script that would touch a
  schema other than the target is refused, naming the file and line;
- the foreign keys (`REFERENCES staging.officers_hub`) are read from code only: a commented-out
  REFERENCES is not a dependency.

Only the statements a staging build needs are accepted (table, index, view, sequence and function
DDL, data changes, comments); anything else (`DO`, `SET`, `CREATE SCHEMA`, `COMMIT`, ...) is
refused, because it could escape the checks or the step's transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from steps.core.files import utf8_text
from steps.core.identifiers import checked_identifier, quote_identifier

TEMPLATE_SCHEMA = "staging"

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*)
  | (?P<block>/\*)
  | (?P<estring>[eE]'(?:\\.|''|[^'\\])*')
  | (?P<string>'(?:''|[^'])*')
  | (?P<quoted>"(?:""|[^"])*")
  | (?P<dollar>\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$)
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
  | (?P<punct>::|.)
    """,
    re.VERBOSE | re.DOTALL,
)


class ScriptError(ValueError):
    """A script that cannot be run as it is; the message names the file and line."""


@dataclass(frozen=True)
class Token:
    kind: str  # space, comment, string, quoted, dollar (a whole $tag$...$tag$ body), word, number, punct
    text: str
    line: int

    @property
    def is_code(self) -> bool:
        return self.kind not in ("space", "comment")

    @property
    def is_identifier(self) -> bool:
        return self.kind in ("word", "quoted")

    @property
    def identifier(self) -> str:
        """The name this token stands for: folded to lower case unless quoted."""
        return self.text[1:-1].replace('""', '"') if self.kind == "quoted" else self.text.lower()

    def keyword(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


def tokenize(sql: str, source: str) -> list[Token]:
    tokens: list[Token] = []
    pos, line = 0, 1
    while pos < len(sql):
        match = _TOKEN.match(sql, pos)
        kind, end = match.lastgroup, match.end()
        if kind == "block":  # block comments nest in Postgres
            depth, end = 1, pos + 2
            while depth and end < len(sql):
                if sql.startswith("/*", end):
                    depth, end = depth + 1, end + 2
                elif sql.startswith("*/", end):
                    depth, end = depth - 1, end + 2
                else:
                    end += 1
            if depth:
                raise ScriptError(f"{source}: line {line}: a /* comment is never closed")
            kind = "comment"
        elif kind == "dollar":
            closing = sql.find(match.group(), end)
            if closing < 0:
                raise ScriptError(f"{source}: line {line}: {match.group()} quoted text is never closed")
            end = closing + len(match.group())
        elif kind == "punct" and match.group() in ("'", '"'):
            raise ScriptError(f"{source}: line {line}: a {match.group()} quote is never closed")
        elif kind == "estring":
            kind = "string"
        text = sql[pos:end]
        tokens.append(Token(kind, text, line))
        line += text.count("\n")
        pos = end
    return tokens


@dataclass(frozen=True)
class Name:
    schema: str | None
    name: str
    line: int

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass
class ScriptFacts:
    """What one script does, read from its code."""

    source: str
    tables_created: list[Name] = field(default_factory=list)
    references: list[Name] = field(default_factory=list)  # foreign keys
    functions: list[Name] = field(default_factory=list)
    function_bodies: dict[str, str] = field(default_factory=dict)  # name -> body, as Postgres keeps it
    uses_postgis: bool = False


# Statements a staging script may hold, by their first word.
_ALLOWED_STARTS = {"CREATE", "DROP", "ALTER", "COMMENT", "INSERT", "UPDATE", "DELETE", "TRUNCATE",
                   "WITH", "SELECT", "ANALYZE"}  # fmt: skip
_CREATABLE = {"TABLE", "INDEX", "VIEW", "SEQUENCE", "FUNCTION", "PROCEDURE", "TYPE"}
_CREATE_MODIFIERS = {"OR", "REPLACE", "TEMP", "TEMPORARY", "UNLOGGED", "GLOBAL", "LOCAL", "UNIQUE",
                     "MATERIALIZED", "RECURSIVE"}  # fmt: skip
_POSTGIS_TYPES = {"geometry", "geography", "box2d", "box3d", "raster"}


class _Statement:
    """The code tokens of one statement, with a cursor for the little parsing we do."""

    def __init__(self, tokens: list[Token], source: str):
        self.tokens = tokens
        self.source = source

    @property
    def line(self) -> int:
        return self.tokens[0].line

    def error(self, message: str, line: int | None = None) -> ScriptError:
        return ScriptError(f"{self.source}: line {line or self.line}: {message}")

    def words(self, start: int, count: int) -> list[str]:
        return [t.keyword() for t in self.tokens[start : start + count]]

    def skip(self, index: int, *keywords: str) -> int:
        while index < len(self.tokens) and self.tokens[index].keyword() in keywords:
            index += 1
        return index

    def name_at(self, index: int, column: bool = False) -> tuple[Name | None, int]:
        """The (possibly schema-qualified) name starting at `index`, and the index after it; with
        `column`, the table of a `[schema.]table.column` name."""
        tokens = self.tokens
        if index >= len(tokens) or not tokens[index].is_identifier:
            return None, index
        parts = [tokens[index]]
        while (index + 2 < len(tokens) and tokens[index + 1].text == "."
               and tokens[index + 2].is_identifier):  # fmt: skip
            parts.append(tokens[index + 2])
            index += 2
        if column:
            parts = parts[:-1]
        if not parts or len(parts) > 2:
            raise self.error(f"cannot read the name {'.'.join(p.text for p in parts)!r}", tokens[index].line)
        schema = parts[0].identifier if len(parts) == 2 else None
        return Name(schema, parts[-1].identifier, parts[0].line), index + 1


def split_statements(tokens: list[Token], source: str) -> list[_Statement]:
    statements, current = [], []
    for token in tokens:
        if token.text == ";" and token.kind == "punct":
            if current:
                statements.append(_Statement(current, source))
            current = []
        elif token.is_code:
            current.append(token)
    if current:
        statements.append(_Statement(current, source))
    return statements


def analyse(sql: str, source: str) -> ScriptFacts:
    """What the script creates, references and writes; raises ScriptError for what it may not do.

    Every object written must be qualified with the template schema (`staging.x`): with an
    unqualified `INSERT INTO x`, Postgres would pick `x` from whichever schema of the search path
    has one. Function names are the exception: the build creates every function in its target
    schema, whatever the script says (see `render`).
    """
    facts = ScriptFacts(source)
    for statement in split_statements(tokenize(sql, source), source):
        _analyse_statement(statement, facts)
    return facts


def _analyse_statement(st: _Statement, facts: ScriptFacts) -> None:
    first = st.tokens[0].keyword()
    if first not in _ALLOWED_STARTS:
        shown = " ".join(t.text for t in st.tokens[:3])
        raise st.error(f"`{shown} ...` is not allowed in a staging script (only table, index, view, "
                       "sequence and function definitions, comments and data changes)")  # fmt: skip
    writes: list[Name] = []
    if first == "CREATE":
        index = st.skip(1, *_CREATE_MODIFIERS)
        kind = st.tokens[index].keyword() if index < len(st.tokens) else ""
        if kind not in _CREATABLE:
            raise st.error(f"CREATE {kind or '(nothing)'} is not allowed in a staging script")
        index = st.skip(index + 1, "IF", "NOT", "EXISTS", "CONCURRENTLY")
        if kind == "INDEX":
            # CREATE INDEX [name] ON [ONLY] table: the index lives with its table.
            while index < len(st.tokens) and st.tokens[index].keyword() != "ON":
                index += 1
            index = st.skip(index + 1, "ONLY")
        name, index = st.name_at(index)
        if name is None:
            raise st.error(f"CREATE {kind}: cannot read the name that follows")
        if kind in ("FUNCTION", "PROCEDURE"):
            facts.functions.append(name)
            body = _function_body(st, index)
            if body is not None:
                facts.function_bodies[name.name] = body
        else:
            writes.append(name)
            if kind == "TABLE":
                facts.tables_created.append(name)
    elif first == "DROP":
        kind = st.tokens[1].keyword() if len(st.tokens) > 1 else ""
        if kind == "MATERIALIZED":
            kind = "VIEW"
        if kind not in _CREATABLE:
            raise st.error(f"DROP {kind or '(nothing)'} is not allowed in a staging script")
        index = st.skip(2, "VIEW", "IF", "EXISTS", "CONCURRENTLY")
        writes += _name_list(st, index)
    elif first == "ALTER":
        kind = st.tokens[1].keyword() if len(st.tokens) > 1 else ""
        if kind not in ("TABLE", "INDEX", "SEQUENCE", "VIEW"):
            raise st.error(f"ALTER {kind or '(nothing)'} is not allowed in a staging script")
        if any(a.keyword() == "SET" and b.keyword() == "SCHEMA" for a, b in pairwise(st.tokens)):
            raise st.error("ALTER ... SET SCHEMA would move an object out of the schema being built")
        name, _ = st.name_at(st.skip(2, "IF", "EXISTS", "ONLY"))
        writes.append(name)
    elif first == "COMMENT":
        # COMMENT ON TABLE x / COLUMN x.col: the table is the name without its last part.
        kind = st.tokens[2].keyword() if len(st.tokens) > 2 else ""
        if kind not in ("TABLE", "COLUMN", "VIEW", "INDEX", "SEQUENCE", "FUNCTION"):
            raise st.error(f"COMMENT ON {kind or '(nothing)'} is not allowed in a staging script")
        if kind != "FUNCTION":
            writes.append(st.name_at(3, column=kind == "COLUMN")[0])
    writes += _data_changes(st)
    facts.references += _references(st)
    facts.uses_postgis |= any(t.is_identifier and t.identifier in _POSTGIS_TYPES for t in st.tokens)
    for name in writes:
        if name is None:
            raise st.error("cannot read the name of the object this statement changes")
        if name.schema is None:
            raise st.error(f"{name.name}: name its schema ({TEMPLATE_SCHEMA}.{name.name}); an unqualified "
                           "name could resolve to a table of another schema", name.line)  # fmt: skip
        if name.schema != TEMPLATE_SCHEMA:
            raise st.error(f"{name} is outside the schema being built ({TEMPLATE_SCHEMA}.*): refused",
                           name.line)  # fmt: skip


def _name_list(st: _Statement, index: int) -> list[Name]:
    names = []
    while True:
        name, index = st.name_at(index)
        names.append(name)
        if index < len(st.tokens) and st.tokens[index].text == ",":
            index += 1
            continue
        return names


def _data_changes(st: _Statement) -> list[Name]:
    """Tables written by INSERT INTO / UPDATE / DELETE FROM / TRUNCATE / SELECT INTO / MERGE INTO,
    wherever they appear (a WITH may hold several)."""
    names = []
    tokens = st.tokens
    for index, token in enumerate(tokens):
        word = token.keyword()
        previous = tokens[index - 1].keyword() if index else ""
        if word == "INTO" and previous in ("INSERT", "MERGE"):
            names.append(st.name_at(index + 1)[0])
        elif word == "INTO":  # SELECT ... INTO new_table creates a table
            names.append(st.name_at(st.skip(index + 1, "TEMP", "TEMPORARY", "UNLOGGED", "TABLE"))[0])
        elif word == "FROM" and previous == "DELETE":
            names.append(st.name_at(st.skip(index + 1, "ONLY"))[0])
        elif word == "UPDATE" and previous not in ("DO", "FOR", "KEY", "ON"):
            # not ON CONFLICT DO UPDATE, SELECT ... FOR [NO KEY] UPDATE or ON UPDATE CASCADE
            names.append(st.name_at(st.skip(index + 1, "ONLY"))[0])
        elif word == "TRUNCATE":
            names += _name_list(st, st.skip(index + 1, "TABLE", "ONLY"))
    return names


def _references(st: _Statement) -> list[Name]:
    refs = []
    for index, token in enumerate(st.tokens):
        if token.keyword() == "REFERENCES":
            name, _ = st.name_at(index + 1)
            if name is None:
                raise st.error("REFERENCES: cannot read the table that follows", token.line)
            if name.schema not in (None, TEMPLATE_SCHEMA):
                raise st.error(f"a foreign key to {name}, outside the schema being built: refused",
                               token.line)  # fmt: skip
            refs.append(Name(TEMPLATE_SCHEMA, name.name, name.line))
    return refs


def _function_body(st: _Statement, index: int) -> str | None:
    """The text of a function's dollar-quoted body (what Postgres keeps in pg_proc.prosrc)."""
    for before, token in pairwise(st.tokens[index:]):
        if before.keyword() == "AS" and token.kind == "dollar":
            tag_length = token.text.index("$", 1) + 1
            return token.text[tag_length:-tag_length]
    return None


def render(sql: str, source: str, schema: str) -> str:
    """The script with the template schema replaced by `schema` in code, and every function it
    defines created in `schema` (the real procedures file names `public` and `production`: a build
    of `staging_dev` must not replace the functions that production uses today)."""
    target = quote_identifier(checked_identifier(schema, "schema"), "schema")
    out = []
    tokens = tokenize(sql, source)
    code = [i for i, t in enumerate(tokens) if t.is_code]
    next_code = dict(pairwise(code))
    previous_code = {b: a for a, b in pairwise(code)}
    skip_until = -1
    for index, token in enumerate(tokens):
        if index <= skip_until:
            continue
        follower = tokens[next_code[index]] if index in next_code else None
        if token.keyword() in ("FUNCTION", "PROCEDURE") and _creates(tokens, previous_code, index):
            # Rewrite `FUNCTION [schema.]name` as `FUNCTION target.name`.
            out.append(token.text + " ")
            name_index = next_code[index]
            after = next_code.get(name_index)
            if after is not None and tokens[after].text == "." and after in next_code:
                name_index = next_code[after]
            out.append(f"{target}.{tokens[name_index].text}")
            skip_until = name_index
            continue
        if (token.is_identifier and token.identifier == TEMPLATE_SCHEMA and follower is not None
                and follower.text == "."):  # fmt: skip
            out.append(target)
            continue
        out.append(token.text)
    return "".join(out)


def _creates(tokens: list[Token], previous_code: dict[int, int], index: int) -> bool:
    """Whether the FUNCTION keyword at `index` follows CREATE [OR REPLACE]."""
    seen = index
    while seen in previous_code:
        seen = previous_code[seen]
        word = tokens[seen].keyword()
        if word == "CREATE":
            return True
        if word not in ("OR", "REPLACE"):
            return False
    return False


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
