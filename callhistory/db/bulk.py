"""Multi-row INSERTs (and upserts) compiled once per (table, columns, row count) and run on the
driver, and PostgreSQL's COPY.

SQLAlchemy's generic executemany builds a parameter dict per row, and a row-by-row
executemany hands the GIL back and forth once per row; on ingest's hot path both cost more
than the database's own work (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler

from callhistory.db.backend import backend

# Rows per INSERT: at most 100, and within both backends' 32,766 parameters.
ROWS = 100
_MAX_PARAMETERS = 32_000


def _rows(names: tuple[str, ...], count: int) -> list[dict[str, Any]]:
    """The VALUES of ``count`` rows: one bind parameter per column and row."""
    return [{name: sa.bindparam(f"{name}_{i}") for name in names} for i in range(count)]


def _driver_sql(
    statement: sa.ClauseElement, dialect: sa.Dialect, names: tuple[str, ...], count: int
) -> str:
    """``statement`` in the driver's SQL, checked to take its parameters row by row in
    ``names``' order."""
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    expected = [f"{name}_{i}" for i in range(count) for name in names]
    assert list(compiled.positiontup or []) == expected, "columns out of the table's order"
    return str(compiled)


@lru_cache(maxsize=256)
def insert_sql(dialect: sa.Dialect, table: sa.Table, names: tuple[str, ...], count: int) -> str:
    """An INSERT of ``count`` rows of ``names`` in the driver's own SQL; its parameters go
    row by row, in that column order (which must be the table's)."""
    return _driver_sql(table.insert().values(_rows(names, count)), dialect, names, count)


@lru_cache(maxsize=256)
def upsert_sql(
    dialect: sa.Dialect,
    table: sa.Table,
    names: tuple[str, ...],
    count: int,
    keys: tuple[str, ...],
    updates: tuple[str, ...],
) -> str:
    """As ``insert_sql``, and a row whose ``keys`` are stored already gets ``updates`` from it."""
    insert = backend(dialect.name).insert(table).values(_rows(names, count))
    statement = insert.on_conflict_do_update(
        index_elements=list(keys), set_={name: insert.excluded[name] for name in updates}
    )
    return _driver_sql(statement, dialect, names, count)


def rows_per_insert(names: Sequence[str]) -> int:
    return max(1, min(ROWS, _MAX_PARAMETERS // len(names)))


async def _in_chunks(
    conn: AsyncConnection,
    names: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    sql: Callable[[int], str],
) -> None:
    """Run ``sql(n)`` for each chunk of ``n`` rows, its parameters row after row."""
    size = rows_per_insert(names)
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        await conn.exec_driver_sql(sql(len(chunk)), tuple([v for row in chunk for v in row]))


async def insert_rows(
    conn: AsyncConnection,
    table: sa.Table,
    names: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Insert ``rows`` (values in ``names``' order, the table's column order)."""
    await _in_chunks(conn, names, rows, lambda n: insert_sql(conn.dialect, table, names, n))


async def copy_rows(
    conn: AsyncConnection,
    table: sa.Table,
    names: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Insert ``rows`` (as ``insert_rows``) in the caller's transaction: on PostgreSQL by one
    binary COPY (no statement to parse; the server routes rows to their partitions), elsewhere
    by ``insert_rows``."""
    if conn.dialect.name != "postgresql":
        await insert_rows(conn, table, names, rows)
        return
    if not rows:
        return
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    assert driver.is_in_transaction(), "COPY outside the caller's transaction"
    await driver.copy_records_to_table(table.name, records=rows, columns=list(names))


async def upsert_rows(
    conn: AsyncConnection,
    table: sa.Table,
    names: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    *,
    keys: tuple[str, ...],
    updates: tuple[str, ...],
) -> None:
    """Insert ``rows`` (as ``insert_rows``); those whose ``keys`` are stored replace ``updates``.
    A chunk must not hold one key twice."""
    await _in_chunks(
        conn, names, rows, lambda n: upsert_sql(conn.dialect, table, names, n, keys, updates)
    )
