"""What "a rerun changes nothing" is checked against: every table of some schemas, its rows
hashed in a fixed order, and every file under a folder, hashed. Two fingerprints compare whole."""

from __future__ import annotations

import hashlib
from pathlib import Path


def tables_fingerprint(conn, schemas: tuple[str, ...] = ("public",), with_xmin: bool = False) -> dict[str, str]:
    """{schema.table: md5 of its rows, ordered by their text}; `with_xmin` adds each row's xmin,
    so that a row rewritten with the same values counts as a change too."""
    tables = conn.execute(
        "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY(%s) ORDER BY 1, 2", (list(schemas),)
    ).fetchall()
    row = "t.xmin::text || t::text" if with_xmin else "t::text"
    return {
        f"{schema}.{table}": conn.execute(
            f'SELECT count(*)::text || \':\' || coalesce(md5(string_agg({row}, E\'\\n\' ORDER BY t::text)), \'\') '
            f'FROM "{schema}"."{table}" t'
        ).fetchone()[0]
        for schema, table in tables
    }


def files_fingerprint(root: Path) -> dict[str, str]:
    """{path under root: sha256 of its bytes} for every file below `root`."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(Path(root).rglob("*"))
        if path.is_file()
    }
