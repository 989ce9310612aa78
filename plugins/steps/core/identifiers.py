"""SQL identifiers that come from files, params or profiles are checked, then quoted."""

from __future__ import annotations

import re

_PLAIN = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
_PLAIN_IDENTIFIER = re.compile(_PLAIN)
# The same rule as the JSON-schema pattern of DAG params that name a schema (the UI form and the
# trigger API check it). Not `$`: Python's `$` also matches before a final newline.
IDENTIFIER_PATTERN = f"^{_PLAIN}(?![\\s\\S])"


class InvalidIdentifierError(ValueError):
    pass


def checked_identifier(name: str, what: str = "identifier") -> str:
    """Return `name` if it is a plain SQL identifier (letters, digits, underscore; at most 63
    characters, the Postgres limit), else raise naming the offending value."""
    if not isinstance(name, str) or not _PLAIN_IDENTIFIER.fullmatch(name):
        raise InvalidIdentifierError(
            f"{what} {name!r} is not a plain SQL identifier "
            "(letters, digits and _, not starting with a digit, at most 63 characters)"
        )
    return name


def quote_identifier(name: str, what: str = "identifier") -> str:
    """`"name"`, after checking it: quoting alone would let `x"; drop ...` through."""
    return f'"{checked_identifier(name, what)}"'


def qualified_name(schema: str, table: str) -> str:
    return f"{quote_identifier(schema, 'schema')}.{quote_identifier(table, 'table')}"
