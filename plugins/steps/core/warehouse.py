"""The warehouse loader: a CSV or parquet file (or a stream of Arrow batches) into one Postgres
table, validated, through COPY, in one transaction.

Luigi's `CopyToTable` promise, kept: either the whole file lands or nothing does. Memory stays flat
whatever the file size because the file is read, checked and sent in batches inside one COPY.

    spec = TableSpec("default_recs", (Column("rec_id", "bigint", nullable=False), ...),
                     key=("rec_id",))
    with connect(dsn) as conn:
        result = load_file(conn, Path("top_popular.parquet"), spec, mode="upsert")

Modes:
- "upsert": insert new keys, update changed rows, leave identical rows untouched (a rerun
  changes no row). Into an empty table the rows are copied straight in: the fast path.
- "replace": delete the rows of `partition` (or all rows), then copy the file in.

Every problem with the input raises `BadInputError` naming the source, and the row and column
where there is one; the transaction is rolled back, so the table keeps its previous contents.
"""

from __future__ import annotations

import csv
import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steps.core.identifiers import checked_identifier, qualified_name, quote_identifier

log = logging.getLogger(__name__)

BATCH_ROWS = 262_144  # about 16 MB of CSV text per piece

# SQL type -> the Arrow type a column must convert to. Kept to the types the pipelines use.
SQL_TYPES = ("bigint", "integer", "double precision", "text", "boolean", "timestamptz", "date")


def _arrow_type(sql_type: str):
    import pyarrow as pa

    return {
        "bigint": pa.int64(),
        "integer": pa.int32(),
        "double precision": pa.float64(),
        "text": pa.string(),
        "boolean": pa.bool_(),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
    }[sql_type]


WAREHOUSE_CONN_ID = "warehouse"


CLIENT_CHECK_INTERVAL = "2s"


def warehouse_connection(conn_id: str = WAREHOUSE_CONN_ID):
    """A psycopg (3) connection to the warehouse, from the Airflow connection `conn_id`.

    A task killed in the middle of a long statement must not leave it running in the warehouse
    (holding its locks, so that the retry waits behind it): Postgres 14+ checks every
    CLIENT_CHECK_INTERVAL that the client is still there and, if not, cancels and rolls back."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook(postgres_conn_id=conn_id).get_conn()
    if conn.info.server_version >= 140000:
        conn.execute("SELECT set_config('client_connection_check_interval', %s, false)",
                     (CLIENT_CHECK_INTERVAL,))  # fmt: skip
        conn.commit()  # a SET inside a transaction lasts for the session once committed
    return conn


def read_frame(conn, sql: str, params: tuple | dict | None = None):
    """The rows of a query as a pandas DataFrame, its columns named as the query names them."""
    import pandas as pd

    with conn.cursor() as cur:
        cur.execute(sql, params)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


class BadInputError(ValueError):
    """The input cannot be loaded; the message names the file, row and column where known."""


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    nullable: bool = True
    # Other names the column may have in input files (e.g. items_cnt for items_selected).
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        checked_identifier(self.name, "column")
        if self.sql_type not in SQL_TYPES:
            raise ValueError(f"column {self.name}: unsupported type {self.sql_type!r}")


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    schema: str = "public"

    def __post_init__(self) -> None:
        checked_identifier(self.name, "table")
        checked_identifier(self.schema, "schema")
        unknown = set(self.key) - set(self.column_names)
        if unknown:
            raise ValueError(f"table {self.name}: key columns {sorted(unknown)} are not columns")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def qualified(self) -> str:
        return qualified_name(self.schema, self.name)

    def create_sql(self) -> str:
        lines = [
            f"{quote_identifier(c.name)} {c.sql_type}{'' if c.nullable else ' NOT NULL'}"
            for c in self.columns
        ]
        if self.key:
            lines.append(f"UNIQUE ({', '.join(quote_identifier(k) for k in self.key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.qualified} (\n  " + ",\n  ".join(lines) + "\n)"


@dataclass(frozen=True)
class LoadResult:
    table: str
    source: str
    mode: str
    rows_read: int
    rows_written: int  # rows inserted or changed; 0 on a rerun of the same file
    seconds: float


# --- reading and validating -------------------------------------------------------------------


def read_batches(path: Path, spec: TableSpec, batch_rows: int = BATCH_ROWS) -> Iterator[Any]:
    """Arrow record batches of `path` (CSV with a header, or parquet), with exactly the spec's
    columns, converted to the spec's types. Raises BadInputError naming file, row and column."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from _parquet_batches(path, spec, batch_rows)
    elif suffix in (".csv", ".gz"):
        yield from _csv_batches(path, spec, batch_rows)
    else:
        raise BadInputError(f"{path}: unsupported file type {suffix!r} (expected .csv or .parquet)")


def _match_columns(source: str, available: list[str], spec: TableSpec) -> dict[str, str]:
    """Spec column -> the input's column of that name (or one of its aliases)."""
    found, missing = {}, []
    for column in spec.columns:
        name = next((n for n in (column.name, *column.aliases) if n in available), None)
        if name is None:
            missing.append(column.name)
        else:
            found[column.name] = name
    if missing:
        raise BadInputError(
            f"{source}: missing column(s) {', '.join(missing)}; the file has {', '.join(available)}"
        )
    return found


def _csv_batches(path: Path, spec: TableSpec, batch_rows: int) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with _open_text(path) as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise BadInputError(f"{path}: empty file (no header row)")
    names = _match_columns(str(path), header, spec)
    by_input_name = {names[c.name]: c for c in spec.columns}
    convert = pacsv.ConvertOptions(
        column_types={n: _csv_arrow_type(c.sql_type) for n, c in by_input_name.items()},
        include_columns=list(by_input_name),
        strings_can_be_null=True,  # as COPY reads CSV: bare empty = NULL, "" = empty text
        quoted_strings_can_be_null=False,
    )
    read = pacsv.ReadOptions(column_names=header)
    rows_before = 0
    for chunk in _csv_chunks(path, chunk_bytes=max(1 << 16, batch_rows * 64)):
        try:
            table = pacsv.read_csv(pa.py_buffer(chunk), read_options=read, convert_options=convert)
        except pa.ArrowInvalid as err:
            raise _csv_error(path, header, err, rows_before) from None
        for batch in table.to_batches(max_chunksize=batch_rows):
            batch = _select(batch, spec, names)
            _check_values(str(path), batch, spec, rows_before)
            rows_before += batch.num_rows
            yield batch


def _csv_chunks(path: Path, chunk_bytes: int) -> Iterator[bytes]:
    """The data lines of a CSV file (header skipped) in pieces of about `chunk_bytes`, each ending
    at a line break outside quotes.

    pyarrow's own streaming reader reads ahead without bound (a whole file, as measured), so the
    file is cut here and each piece parsed on its own: memory stays one piece, whatever the file.
    A line break is outside quotes when the piece up to it holds an even number of quote
    characters (an escaped quote is two of them)."""
    import gzip

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as raw:
        raw.readline()  # the header, read separately
        pending = b""
        while True:
            block = raw.read(chunk_bytes)
            data = pending + block
            if not block:
                if data.strip():
                    yield data if data.endswith(b"\n") else data + b"\n"
                return
            cut = data.rfind(b"\n")
            while cut >= 0 and data.count(b'"', 0, cut) % 2:
                cut = data.rfind(b"\n", 0, cut)
            if cut < 0:
                pending = data  # one record longer than a block: read on
                continue
            yield data[: cut + 1]
            pending = data[cut + 1 :]


def _csv_arrow_type(sql_type: str):
    """Timestamps in CSV files stay text: Postgres parses them, with or without a zone (naive
    ones are UTC), and names the row and column of a bad one."""
    import pyarrow as pa

    return pa.string() if sql_type == "timestamptz" else _arrow_type(sql_type)


def _open_text(path: Path):
    if path.suffix.lower() == ".gz":
        import gzip

        return gzip.open(path, "rt", newline="", encoding="utf-8")
    return open(path, newline="", encoding="utf-8")


_CSV_CONVERSION = re.compile(r"In CSV column #(\d+): (?:Row #(\d+): )?(.*)", re.S)


def _csv_error(path: Path, header: list[str], err: Exception, rows_before: int = 0) -> BadInputError:
    match = _CSV_CONVERSION.search(str(err))
    if not match:
        return BadInputError(f"{path}: after row {rows_before}: {str(err).splitlines()[0]}")
    index, detail = int(match[1]), match[3].strip().splitlines()[0]
    column = header[index] if index < len(header) else f"#{index}"
    # pyarrow does not always say which row; then find it (this is the error path only).
    row = rows_before + int(match[2]) if match[2] else _first_bad_csv_row(path, index, detail)
    where = f"row {row}, " if row else ""
    return BadInputError(f"{path}: {where}column {column}: {detail}")


def _first_bad_csv_row(path: Path, index: int, detail: str) -> int | None:
    """Data row (1-based) of the first value in column `index` that the converter rejects."""
    import pyarrow as pa

    target = re.search(r"conversion error to (\w+)", detail)
    if not target:
        return None
    arrow_type = {"int64": pa.int64(), "int32": pa.int32(), "double": pa.float64(), "bool": pa.bool_()}.get(
        target[1]
    )
    if arrow_type is None:
        return None
    with _open_text(path) as handle:
        rows = csv.reader(handle)
        next(rows, None)
        for number, row in enumerate(rows, start=1):
            value = row[index] if index < len(row) else ""
            if value == "":
                continue
            try:
                pa.array([value]).cast(arrow_type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return number
    return None


def _parquet_batches(path: Path, spec: TableSpec, batch_rows: int) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise BadInputError(f"{path}: not a readable parquet file ({err})") from None
    schema = parquet.schema_arrow
    names = _match_columns(str(path), schema.names, spec)
    for column in spec.columns:
        _check_castable(str(path), column, schema.field(names[column.name]).type)
    rows_before = 0
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=list(names.values())):
        batch = _select(batch, spec, names, row_offset=rows_before, source=str(path))
        _check_values(str(path), batch, spec, rows_before)
        rows_before += batch.num_rows
        yield batch


def _check_castable(source: str, column: Column, file_type) -> None:
    """Refuse type changes that would lose meaning (text into a number, a number into text)."""
    import pyarrow.types as t

    target = _arrow_type(column.sql_type)
    numeric = t.is_integer(file_type) or t.is_floating(file_type)
    ok = (
        file_type == target
        or (t.is_dictionary(file_type) and _is_text(file_type.value_type) and _is_text(target))
        or (_is_text(file_type) and _is_text(target))
        or (numeric and (t.is_integer(target) or t.is_floating(target)))
        or (t.is_timestamp(file_type) and t.is_timestamp(target))
        or (t.is_date(file_type) and t.is_date(target))
        or (t.is_null(file_type))
    )
    if not ok:
        shown = "string" if _is_text(file_type) else file_type  # large_string means the same to users
        raise BadInputError(f"{source}: column {column.name} has type {shown}, expected {column.sql_type}")


def _is_text(arrow_type) -> bool:
    import pyarrow.types as t

    return t.is_string(arrow_type) or t.is_large_string(arrow_type)


def _select(batch, spec: TableSpec, names: Mapping[str, str], row_offset: int = 0, source=""):
    """The spec's columns, in the spec's order, converted to the spec's types."""
    import pyarrow as pa

    arrays = []
    for column in spec.columns:
        array = batch.column(batch.schema.get_field_index(names[column.name]))
        target = _arrow_type(column.sql_type)
        if array.type != target and not (_is_text(array.type) and column.sql_type == "timestamptz"):
            try:
                array = array.cast(target, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
                row = _first_uncastable(array, target)
                raise BadInputError(
                    f"{source}: row {row_offset + row + 1}, column {column.name}: "
                    f"value {array[row].as_py()!r} does not fit {column.sql_type} ({err})"
                ) from None
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, names=spec.column_names)


def _first_uncastable(array, target) -> int:
    import pyarrow as pa

    for index in range(len(array)):
        try:
            array.slice(index, 1).cast(target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return index
    return 0


def _check_values(source: str, batch, spec: TableSpec, rows_before: int) -> None:
    """Required columns hold a value; numbers are finite (NaN or infinity would load into
    Postgres and quietly poison every sum and ranking over them)."""
    import pyarrow.compute as pc
    import pyarrow.types as t

    for column in spec.columns:
        array = batch.column(batch.schema.get_field_index(column.name))
        if not column.nullable and array.null_count:
            row = pc.index(pc.is_null(array), True).as_py()
            raise BadInputError(
                f"{source}: row {rows_before + row + 1}, column {column.name}: empty value "
                "in a required column"
            )
        if t.is_floating(array.type):
            not_finite = pc.invert(pc.fill_null(pc.is_finite(array), True))
            if pc.any(not_finite).as_py():
                row = pc.index(not_finite, True).as_py()
                value = array[row].as_py()
                shown = "NaN" if value != value else ("inf" if value > 0 else "-inf")
                raise BadInputError(f"{source}: row {rows_before + row + 1}, column {column.name}: "
                                    f"{shown} is not a finite number")  # fmt: skip


# --- writing --------------------------------------------------------------------------------


_PREFETCH = 2


def _prefetched(items: Iterator[Any], depth: int = _PREFETCH) -> Iterator[Any]:
    """Yield what `items` yields, produced ahead in a thread; its exceptions are re-raised here."""
    import queue
    import threading

    slots: queue.Queue = queue.Queue(maxsize=depth)
    done, stop = object(), threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(("item", item), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(("end", done))
        except BaseException as err:  # handed to the consumer, which raises it
            slots.put(("error", err))

    worker = threading.Thread(target=produce, name="copy-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join(timeout=5)


def _batch_csv(batch) -> bytes:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    sink = pa.BufferOutputStream()
    pacsv.write_csv(batch, sink, write_options=pacsv.WriteOptions(include_header=False))
    return sink.getvalue().to_pybytes()


def copy_batches(cur, target: str, columns: str, batches: Iterable[Any], source: str) -> int:
    """COPY the batches into `target` as CSV; returns the rows. The next pieces are read and
    converted in a thread while Postgres parses the current one (pyarrow and libpq release the
    GIL), and at most `_PREFETCH` pieces wait, so memory stays bounded."""
    rows, last_log = 0, time.monotonic()
    with cur.copy(f"COPY {target} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
        for batch, data in _prefetched((b, _batch_csv(b)) for b in batches):
            copy.write(data)
            rows += batch.num_rows
            if time.monotonic() - last_log >= 10:
                log.info("%s: %d rows sent so far", source, rows)
                last_log = time.monotonic()
    return rows


def load_file(conn, path: Path, spec: TableSpec, mode: str = "upsert", **kwargs) -> LoadResult:
    """Load a CSV (with header) or parquet file into `spec`'s table; see the module docstring."""
    return load_batches(conn, read_batches(path, spec), spec, mode=mode, source=str(path), **kwargs)


def load_batches(
    conn,
    batches: Iterable[Any],
    spec: TableSpec,
    *,
    mode: str = "upsert",
    source: str = "input",
    partition: Mapping[str, Any] | None = None,
) -> LoadResult:
    """Load Arrow batches (already in the spec's columns and types) in one transaction."""
    import psycopg

    if mode not in ("upsert", "replace"):
        raise ValueError(f"unknown load mode {mode!r}")
    if mode == "upsert" and not spec.key:
        raise ValueError(f"table {spec.name}: upsert needs a key")
    for name in partition or {}:
        checked_identifier(name, "partition column")
    started = time.monotonic()
    columns = ", ".join(quote_identifier(c) for c in spec.column_names)
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL timezone = 'UTC'")
            cur.execute(spec.create_sql())
            if mode == "replace":
                _delete_partition(cur, spec, partition)
                direct = True
            else:
                cur.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {spec.qualified})")
                direct = cur.fetchone()[0]
            target = spec.qualified if direct else _staging_table(cur, spec)
            rows = copy_batches(cur, target, columns, batches, source)
            if rows == 0:
                raise BadInputError(f"{source}: no data rows")
            written = rows if direct else _merge_staged(cur, spec, target, source)
        conn.commit()
    except psycopg.Error as err:
        conn.rollback()
        raise _database_error(source, spec, err) from None
    except BaseException:
        conn.rollback()
        raise
    result = LoadResult(
        table=f"{spec.schema}.{spec.name}",
        source=source,
        mode=mode,
        rows_read=rows,
        rows_written=written,
        seconds=time.monotonic() - started,
    )
    log.info(
        "loaded %s into %s (%s): %d rows read, %d rows written in %.1fs",
        source,
        result.table,
        mode,
        result.rows_read,
        result.rows_written,
        result.seconds,
    )
    return result


def _delete_partition(cur, spec: TableSpec, partition: Mapping[str, Any] | None) -> None:
    if not partition:
        cur.execute(f"DELETE FROM {spec.qualified}")
        return
    where = " AND ".join(f"{quote_identifier(k)} = %s" for k in partition)
    cur.execute(f"DELETE FROM {spec.qualified} WHERE {where}", list(partition.values()))


STAGED_ROW = "staged_row_number__"


def _staging_table(cur, spec: TableSpec) -> str:
    name = quote_identifier(f"stage_{spec.name}"[:63])
    cur.execute(f"CREATE TEMP TABLE {name} (LIKE {spec.qualified} INCLUDING DEFAULTS) ON COMMIT DROP")
    # COPY fills it in file order: each staged row keeps its number, for the errors that name rows.
    cur.execute(f"ALTER TABLE {name} ADD COLUMN {STAGED_ROW} bigserial")
    return name


def _merge_staged(cur, spec: TableSpec, staging: str, source: str) -> int:
    key = ", ".join(quote_identifier(k) for k in spec.key)
    cur.execute(
        f"SELECT {key}, count(*), (array_agg({STAGED_ROW} ORDER BY {STAGED_ROW}))[1:5] FROM {staging} "
        f"GROUP BY {key} HAVING count(*) > 1 ORDER BY min({STAGED_ROW}) LIMIT 1"
    )
    duplicate = cur.fetchone()
    if duplicate:
        *values, count, rows = duplicate
        shown = ", ".join(f"{k}={v}" for k, v in zip(spec.key, values, strict=True))
        listed = ", ".join(map(str, rows)) + (", ..." if count > len(rows) else "")
        raise BadInputError(f"{source}: duplicate key {shown} in rows {listed} ({count} rows)")
    return merge_rows(cur, spec.qualified, staging, spec.column_names, spec.key)


def merge_rows(cur, target: str, source: str, columns: Iterable[str], key: Iterable[str],
               remove_missing: bool = False) -> int:  # fmt: skip
    """Upsert the rows of table `source` into `target` on `key` (which `target` has as a primary
    key or unique constraint); returns the rows inserted or changed. A row equal to the one it
    would replace is not rewritten, so a rerun changes no row. `remove_missing` also deletes the
    target's rows whose key `source` lacks: the target then holds the source's rows, and a row
    that other tables reference by its key survives as long as its key does."""
    columns, key = [quote_identifier(c) for c in columns], [quote_identifier(k) for k in key]
    others = [c for c in columns if c not in key]
    listed, keys = ", ".join(columns), ", ".join(key)
    if others:
        changed = ", ".join(f"{c} = EXCLUDED.{c}" for c in others)
        current = ", ".join(f"t.{c}" for c in others)
        incoming = ", ".join(f"EXCLUDED.{c}" for c in others)
        on_conflict = f"DO UPDATE SET {changed} WHERE ROW({current}) IS DISTINCT FROM ROW({incoming})"
    else:
        on_conflict = "DO NOTHING"
    cur.execute(f"INSERT INTO {target} AS t ({listed}) SELECT {listed} FROM {source} "
                f"ON CONFLICT ({keys}) {on_conflict}")  # fmt: skip
    written = cur.rowcount
    if remove_missing:
        same_key = " AND ".join(f"s.{k} = t.{k}" for k in key)
        cur.execute(f"DELETE FROM {target} t WHERE NOT EXISTS (SELECT 1 FROM {source} s WHERE {same_key})")
        written += cur.rowcount
    return written


_COPY_LINE = re.compile(r"line (\d+)")


def _database_error(source: str, spec: TableSpec, err) -> Exception:
    """Postgres' complaint about the data, retold with the source file and its row."""
    import psycopg.errors as pgerr

    diag = getattr(err, "diag", None)
    context = (diag.context if diag else None) or ""
    line = _COPY_LINE.search(context)
    column = re.search(r"column (\w+)", context)
    where = (f"row {line[1]}, " if line else "") + (f"column {column[1]}: " if column else "")
    detail = (diag.message_detail if diag else None) or ""
    primary = (diag.message_primary if diag else None) or str(err).splitlines()[0]
    if isinstance(err, pgerr.UniqueViolation):
        key = re.search(r"Key \((.*)\)=\((.*)\) already exists", detail)
        shown = f"{key[1]}={key[2]}" if key else detail
        return BadInputError(f"{source}: {where}duplicate key {shown} in {spec.name}")
    if isinstance(err, pgerr.DataError | pgerr.IntegrityError):
        return BadInputError(f"{source}: {where}{primary} {detail}".strip())
    return err
