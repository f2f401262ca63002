"""All SQL on call logs. Every function takes the tenant and every statement is scoped by it.

Pages are keyset scans along ``(tenant_id, <sort column>, id)``. A filter that is an OR over
several index ranges (caller or callee; a list of extensions or hotlines) is run as a UNION of
index-ordered, LIMITed subqueries, so the database never sorts a whole tenant to find one page.
"""

from __future__ import annotations

import asyncio
import operator
import re
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler

from callhistory.calllogs.months import Window, month_of, month_start, month_windows, next_month
from callhistory.calllogs.query import CallLogQuery
from callhistory.db.engine import ALL_TENANTS, InIdList, beyond, fetch, id_list
from callhistory.db.tables import (
    LONG_CALL_TIERS,
    call_logs,
    long_calls,
    unindexed_duration,
    users,
)
from callhistory.paging import Key

c = call_logs.c
SORT_COLUMNS: dict[str, sa.Column[int]] = {
    "started_at": c.started_at,
    "created_at": c.created_at,
    "updated_at": c.updated_at,
    "duration": c.duration,
}
_COMPARE = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
Condition = sa.ColumnElement[bool]
_PARTITION_LOCK = 0x63616C6C  # advisory lock serialising partition creation across processes
_PARTITION = re.compile(r"call_logs_p\d{6}")


# Up to this many ids of a list are one UNION branch each (an index walk per id: a few
# extensions are cheap to page however rare); a longer list is one bound parameter, so that the
# SQL texts, and what caches them, stay few and small whatever lists clients send.
BRANCHED_IDS = 4
LISTED = -1

# Filters compared for equality with a column of the same name.
_EQUAL = ("call_state", "direction", "user_id", "external_id", "external_session_id")


class _Shape(NamedTuple):
    """What a page statement's SQL depends on; every value goes in as a bind parameter (named
    as in ``page_statement``), so one compiled statement serves every page of the same shape."""

    # date_from, date_to, the _EQUAL ones, window_from, window_before, department_id (unresolved)
    filters: tuple[str, ...]
    duration_op: str | None
    long_call_tier: int | None  # the tier of long calls every duration match is in
    call_number: bool
    extensions: int  # ids, one UNION branch each; LISTED: one list parameter
    hotlines: int
    members: bool  # the department's users, once resolved (a list parameter)
    keyed: bool
    sort: str
    forward: bool
    inclusive: bool
    columns: tuple[str, ...]
    late_columns: bool


def page_statement(
    tenant_id: int,
    q: CallLogQuery,
    *,
    sort: str,
    key: Key | None,
    forward: bool,
    limit: int,
    inclusive: bool = False,
    columns: tuple[str, ...] = (),
    window: Window = (None, None),
    late_columns: bool = False,
) -> tuple[sa.Select[Any], dict[str, Any]]:
    """A page's statement (cached per shape) and its values by bind-parameter name. Its rows are
    (sort value, id, rendered document), or ``columns``. ``window`` bounds started_at further
    (from, before). With ``late_columns`` the branches of an OR filter pick the page by sort
    value and id, and the page's columns are read for its rows alone (SQLite; see
    ``_statement``)."""
    columns = columns or (sort.lstrip("-"), "id", "doc")
    values: dict[str, Any] = {"tenant_id": tenant_id, "limit": limit}
    filters = []
    for name in ("date_from", "date_to", *_EQUAL):
        if getattr(q, name) is not None:
            filters.append(name)
            values[name] = getattr(q, name)
    for name, bound in zip(("window_from", "window_before"), window, strict=True):
        if bound is not None:
            filters.append(name)
            values[name] = bound
    if q.department_id is not None and q.members is None:
        filters.append("department_id")
        values["department_id"] = q.department_id
    duration_op, tier = None, None
    if q.duration_op is not None and q.duration_value is not None:
        duration_op = q.duration_op
        values["duration"] = q.duration_value
        tier = _long_call_tier(duration_op, q.duration_value)
    if q.call_number is not None:
        values["call_number"] = q.call_number
    for prefix, ids in (("extension_id", q.extension_ids), ("hotline_id", q.hotline_ids)):
        if _listed(ids) == LISTED:
            values[f"{prefix}s"] = id_list(ids)
        else:
            values.update({f"{prefix}_{i}": v for i, v in enumerate(ids)})
    if q.members is not None:
        values["members"] = id_list(q.members)
    if key is not None:
        values["key_value"], values["key_id"] = key
    shape = _Shape(
        filters=tuple(filters),
        duration_op=duration_op,
        long_call_tier=tier,
        call_number=q.call_number is not None,
        extensions=_listed(q.extension_ids),
        hotlines=_listed(q.hotline_ids),
        members=q.members is not None,
        keyed=key is not None,
        sort=sort,
        forward=forward,
        inclusive=inclusive,
        columns=columns,
        late_columns=late_columns,
    )
    return _statement(shape), values


def _listed(ids: tuple[int, ...]) -> int:
    """How a list of ids goes into a statement: its length (one index walk each), or LISTED."""
    return len(ids) if len(ids) <= BRANCHED_IDS else LISTED


def _long_call_tier(op: str, value: int) -> int | None:
    least = {">": value + 1, ">=": value, "=": value}.get(op)
    if least is None:
        return None
    return max((tier for tier in LONG_CALL_TIERS if tier <= least), default=None)


def _bind(name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name)


def _ids(prefix: str, count: int) -> list[sa.BindParameter[int]]:
    return [sa.bindparam(f"{prefix}_{i}", type_=sa.BigInteger) for i in range(count)]


def _filter(name: str) -> Condition:
    if name in ("date_from", "window_from"):
        return c.started_at >= _bind(name)
    if name == "date_to":
        return c.started_at <= _bind(name)
    if name == "window_before":
        return c.started_at < _bind(name)
    if name == "department_id":
        members = sa.select(users.c.id).where(
            users.c.tenant_id == _bind("tenant_id"), users.c.department_id == _bind(name)
        )
        return c.user_id.in_(members)
    return c[name] == _bind(name)


def _conditions(shape: _Shape) -> list[Condition]:
    conds: list[Condition] = [c.tenant_id == _bind("tenant_id")]
    conds += [_filter(name) for name in shape.filters]
    if shape.duration_op is not None:
        # "+ 0" keeps the planner on the sort's index: a LIMITed walk in order beats
        # collecting every call in a duration range and sorting them.
        conds.append(_COMPARE[shape.duration_op](unindexed_duration(), _bind("duration")))
    if shape.long_call_tier is not None:
        # Implied by the comparison, and written as the tier's index states it (a constant),
        # so that both databases see the index covers every match.
        conds.append(long_calls(shape.long_call_tier))
    if shape.members:
        # A department's users share much of the traffic: filtering the walk along the sort's
        # index beats one index walk per user (measured: 0.5 ms against 13 ms on SQLite).
        conds.append(InIdList(c.user_id, "members"))
    for count, column, name in (
        (shape.extensions, c.extension_id, "extension_ids"),
        (shape.hotlines, c.hotline_id, "hotline_ids"),
    ):
        if count == LISTED:
            conds.append(InIdList(column, name))
    return conds


def _branches(shape: _Shape) -> tuple[list[Condition], list[Condition]]:
    """Split the OR-shaped filters: one becomes UNION branches, the others plain predicates.
    The branches of one filter never match the same call: a call has one extension and one
    hotline, and the callee branch leaves out calls the caller branch has."""
    ors: list[list[Condition]] = []
    if shape.call_number:
        number = _bind("call_number")
        ors.append([c.caller_norm == number, (c.callee_norm == number) & (c.caller_norm != number)])
    if shape.extensions != LISTED and shape.extensions:
        ors.append([c.extension_id == v for v in _ids("extension_id", shape.extensions)])
    if shape.hotlines != LISTED and shape.hotlines:
        ors.append([c.hotline_id == v for v in _ids("hotline_id", shape.hotlines)])
    if not ors:
        return [], []
    ors.sort(key=len)
    return ors[0], [sa.or_(*alternatives) for alternatives in ors[1:]]


@lru_cache(maxsize=512)
def _statement(shape: _Shape) -> sa.Select[Any]:
    column = SORT_COLUMNS[shape.sort.lstrip("-")]
    columns = [c[name] for name in shape.columns]
    descending = shape.sort.startswith("-") == shape.forward
    conds = _conditions(shape)
    if shape.keyed:
        bound = (
            sa.bindparam("key_value", type_=sa.BigInteger),
            sa.bindparam("key_id", type_=sa.BigInteger),
        )
        conds.append(
            beyond((column, c.id), bound, descending=descending, inclusive=shape.inclusive)
        )
    branches, extra = _branches(shape)
    conds += extra
    limit = sa.bindparam("limit", type_=sa.Integer)

    def ordered(
        select: sa.Select[Any], col: sa.ColumnElement[int], id_: sa.ColumnElement[int]
    ) -> sa.Select[Any]:
        if descending:
            return select.order_by(col.desc(), id_.desc())
        return select.order_by(col.asc(), id_.asc())

    if len(branches) <= 1:
        select = sa.select(*columns).where(*conds, *branches)
        return ordered(select, column, c.id).limit(limit)
    # Branches match disjoint sets of calls (see _branches), so UNION ALL: nothing to compare.
    # With late_columns they pick the page by sort value and id alone, mostly from their
    # indexes, and the page's own columns are read for its calls only, not for every branch's
    # candidates (SQLite, 2M calls: two extensions 0.86 -> 0.36 ms, a busy number 0.75 -> 0.44
    # ms; see window_statements for PostgreSQL).
    picked = (column.label("_k"), c.id) if shape.late_columns else (*columns, column.label("_k"))
    parts = [
        ordered(sa.select(*picked).where(*conds, branch), column, c.id).limit(limit).subquery()
        for branch in branches
    ]
    union = sa.union_all(*(sa.select(part) for part in parts)).subquery()
    if not shape.late_columns:
        outer = sa.select(*(union.c[col.name] for col in columns))
        return ordered(outer, union.c._k, union.c.id).limit(limit)
    keys = ordered(sa.select(union.c._k, union.c.id), union.c._k, union.c.id).limit(limit)
    page = keys.subquery()
    on = (c.tenant_id == _bind("tenant_id")) & (column == page.c._k) & (c.id == page.c.id)
    return ordered(sa.select(*columns).join_from(page, call_logs, on), page.c._k, page.c.id)


def page_select(tenant_id: int, query: CallLogQuery, **options: Any) -> sa.Select[Any]:
    """A page's statement with its values bound (for EXPLAIN and the benchmark's floor);
    ``options`` as ``page_statement``'s."""
    statement, values = page_statement(tenant_id, query, **options)
    return statement.params(values)


async def fetch_page(
    conn: AsyncConnection,
    *,
    tenant_id: int,
    query: CallLogQuery,
    sort: str,
    key: Key | None,
    forward: bool,
    limit: int,
    inclusive: bool,
) -> list[Sequence[Any]]:
    """Up to ``limit`` rows of (sort value, id, rendered document) beyond ``key``.

    On PostgreSQL a walk along ``started_at`` reads month by month, from the month of the key or
    of the tenant's first call that way (see ``walk_windows``). Over every monthly partition at
    once, PostgreSQL planned the statement anew for each page, and that alone took ~3 ms at 5M
    calls (a first page: 2.7 ms against 0.9 ms this way, the first call's lookup included).
    """
    edge = None
    if key is None and _walks_started_at(conn.dialect.name, sort):
        found = await fetch(
            conn, *edge_start(tenant_id, query, descending=sort.startswith("-") == forward)
        )
        edge = found[0][0] if found else None
        if edge is None:
            return []
    rows: list[Sequence[Any]] = []
    statements = window_statements(
        conn.dialect.name,
        tenant_id,
        query,
        sort=sort,
        key=key,
        forward=forward,
        limit=limit,
        inclusive=inclusive,
        edge=edge,
    )
    for statement, values in statements:
        rows += await fetch(conn, statement, {**values, "limit": limit - len(rows)})
        if len(rows) >= limit:
            break
    return rows


def window_statements(
    dialect: str,
    tenant_id: int,
    query: CallLogQuery,
    *,
    sort: str,
    key: Key | None,
    forward: bool,
    limit: int,
    inclusive: bool = False,
    edge: int | None = None,
    columns: tuple[str, ...] = (),
) -> Iterator[tuple[sa.Select[Any], dict[str, Any]]]:
    """A page's statements and their values, to run in turn until ``limit`` rows are read: one
    per window of started_at (``walk_windows``), as ``dialect`` reads them best, each built when
    the walk gets to it. On SQLite an OR filter's page is picked before its columns are read
    (``late_columns``); PostgreSQL joining back over its partitions was slower (1.4 -> 2.1 ms)."""
    for window in walk_windows(
        dialect, query=query, sort=sort, key=key, forward=forward, edge=edge
    ):
        yield page_statement(
            tenant_id,
            query,
            sort=sort,
            key=key,
            forward=forward,
            limit=limit,
            inclusive=inclusive,
            columns=columns,
            window=window,
            late_columns=dialect == "sqlite",
        )


def _walks_started_at(dialect: str, sort: str) -> bool:
    return dialect == "postgresql" and sort.lstrip("-") == "started_at"


def walk_windows(
    dialect: str,
    *,
    query: CallLogQuery,
    sort: str,
    key: Key | None,
    forward: bool,
    edge: int | None,
) -> list[Window]:
    """The bounds of started_at a page is read within, one after the other (``fetch_page``):
    from the month of ``key``, else of ``edge`` (the start of the tenant's first call in the
    walk's direction, ``edge_start``)."""
    anchor = key[0] if key is not None else edge
    if not _walks_started_at(dialect, sort) or anchor is None:
        return [(None, None)]
    if sort.startswith("-") == forward:
        return month_windows(anchor, query.date_from, step=-1)
    return month_windows(anchor, query.date_to, step=1)


def edge_start(
    tenant_id: int, query: CallLogQuery, *, descending: bool
) -> tuple[sa.Select[Any], dict[str, Any]]:
    """The statement, and its values, of the start of the tenant's newest call (``descending``)
    or oldest one within the query's dates."""
    values: dict[str, Any] = {"tenant_id": tenant_id}
    dates = tuple(name for name in ("date_from", "date_to") if getattr(query, name) is not None)
    values.update({name: getattr(query, name) for name in dates})
    return _edge_statement(descending, dates), values


@lru_cache(maxsize=8)
def _edge_statement(descending: bool, dates: tuple[str, ...]) -> sa.Select[Any]:
    edge = sa.func.max(c.started_at) if descending else sa.func.min(c.started_at)
    return sa.select(edge).where(c.tenant_id == _bind("tenant_id"), *map(_filter, dates))


async def exists_beyond(
    conn: AsyncConnection,
    *,
    tenant_id: int,
    query: CallLogQuery,
    sort: str,
    key: Key,
    forward: bool,
) -> bool:
    page = page_statement(
        tenant_id, query, sort=sort, key=key, forward=forward, limit=1, columns=("id",)
    )
    return bool(await fetch(conn, *page))


_SOURCE_CHUNK = 500
# Stored calls by source id, a whole batch per statement (a short one repeats its last id), so
# one statement serves every batch (see db.engine.fetch).
_BY_SOURCE = sa.select(*(col for col in call_logs.columns if col.name != "doc")).where(
    c.tenant_id == _bind("tenant_id"),
    c.source_id.in_([_bind(f"source_{i}") for i in range(_SOURCE_CHUNK)]),
)
_BY_SOURCE_NAMES = tuple(col.name for col in call_logs.columns if col.name != "doc")


async def find_by_source(
    conn: AsyncConnection, *, tenant_id: int, source_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Stored calls (every column but the document) of these PBX call ids, by source id."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(source_ids), _SOURCE_CHUNK):
        chunk = list(source_ids[start : start + _SOURCE_CHUNK])
        chunk += chunk[-1:] * (_SOURCE_CHUNK - len(chunk))
        params: dict[str, Any] = {f"source_{i}": v for i, v in enumerate(chunk)}
        params["tenant_id"] = tenant_id
        for row in await fetch(conn, _BY_SOURCE, params):
            stored = dict(zip(_BY_SOURCE_NAMES, row, strict=True))
            found[stored["source_id"]] = stored
    return found


# Rows per INSERT (x 25 columns: well within both backends' 32,766 parameters).
_INSERT_ROWS = 100
Inserts = list[tuple[str, tuple[Any, ...]]]


def prepare_inserts(
    dialect: sa.Dialect, *, tenant_id: int, rows: Sequence[dict[str, Any]]
) -> Inserts:
    """The multi-row INSERTs (SQL and parameters, ``_INSERT_ROWS`` rows each) that store new
    calls: built apart from running them, so an ingest batch builds them before it takes the
    write lock.

    Measured: the generic path spent more time building parameters than SQLite spent
    inserting, and a row-by-row executemany hands the GIL back and forth 500 times a batch,
    so a second request's Python stalled the insert (and the other way round).
    """
    if not rows:
        return []
    # The table's order (tenant_id first), which is the order of the compiled VALUES.
    names = tuple(col.name for col in call_logs.columns if col.name in rows[0])
    values = operator.itemgetter(*names)
    return [
        (
            _insert_sql(dialect, names, len(chunk)),
            tuple([v for row in chunk for v in (tenant_id, *values(row))]),
        )
        for chunk in (rows[i : i + _INSERT_ROWS] for i in range(0, len(rows), _INSERT_ROWS))
    ]


async def insert_prepared(conn: AsyncConnection, inserts: Inserts) -> None:
    """Run INSERTs from ``prepare_inserts`` on the driver."""
    for sql, params in inserts:
        await conn.exec_driver_sql(sql, params)


async def insert_many(
    conn: AsyncConnection, *, tenant_id: int, rows: Sequence[dict[str, Any]]
) -> None:
    """Insert new calls."""
    await insert_prepared(conn, prepare_inserts(conn.dialect, tenant_id=tenant_id, rows=rows))


@lru_cache(maxsize=128)
def _insert_sql(dialect: sa.Dialect, names: tuple[str, ...], count: int) -> str:
    """An INSERT of ``count`` rows of (tenant_id, *names) in the driver's own SQL; its
    parameters go row by row, in that column order."""
    columns = ("tenant_id", *names)
    statement = call_logs.insert().values(
        [{name: sa.bindparam(f"{name}_{i}") for name in columns} for i in range(count)]
    )
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    expected = [f"{name}_{i}" for i in range(count) for name in columns]
    assert list(compiled.positiontup or []) == expected, "columns out of the table's order"
    return str(compiled)


async def update_many(
    conn: AsyncConnection, *, tenant_id: int, rows: Sequence[dict[str, Any]]
) -> None:
    """Rewrite stored calls found by (id, previous started_at); id and created_at never change."""
    if not rows:
        return
    columns = [name for name in rows[0] if name not in ("id", "created_at", "previous_started_at")]
    statement = (
        call_logs.update()
        .where(
            c.tenant_id == tenant_id,
            c.started_at == sa.bindparam("_started"),
            c.id == sa.bindparam("_id"),
        )
        .values({name: sa.bindparam(name) for name in columns})
    )
    params = [
        {**{k: row[k] for k in columns}, "_id": row["id"], "_started": row["previous_started_at"]}
        for row in rows
    ]
    await conn.execute(statement, params)


def _partition_name(year: int, month: int) -> str:
    return f"call_logs_p{year:04d}{month:02d}"


async def _partitions(conn: AsyncConnection) -> set[str]:
    """Names of the monthly partitions of call_logs, read from the catalog."""
    result = await conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'call_logs'::regclass"
        )
    )
    return {name for name in result.scalars() if _PARTITION.fullmatch(name)}


async def ensure_partitions(conn: AsyncConnection, *, started: Iterable[int]) -> None:
    """Make sure the monthly partitions holding these start times exist (PostgreSQL only).

    New partitions are created empty and then attached, which locks the parent only in SHARE
    UPDATE EXCLUSIVE mode: reads and writes of call logs go on meanwhile.
    """
    if conn.dialect.name != "postgresql":
        return
    wanted = {_partition_name(*month_of(micros)): month_of(micros) for micros in started}
    if not wanted.keys() - await _partitions(conn):
        return
    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PARTITION_LOCK)))
    existing = await _partitions(conn)  # again, now that no other process is creating any
    for name, (year, month) in sorted(wanted.items()):
        if name not in existing:
            lower = month_start(year, month)
            upper = month_start(*next_month(year, month))
            await conn.execute(
                sa.text(
                    f"CREATE TABLE {name} (LIKE call_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                )
            )
            await conn.execute(
                sa.text(
                    f"ALTER TABLE call_logs ATTACH PARTITION {name} "
                    f"FOR VALUES FROM ({lower}) TO ({upper})"
                )
            )


async def delete_older_than(conn: AsyncConnection, *, cutoff: int) -> int:
    """Retention, across every tenant: delete the calls that started before ``cutoff`` (on
    PostgreSQL, after ``drop_partitions_before``: only the month that straddles the cutoff)."""
    result = await conn.execute(
        call_logs.delete().where(c.started_at < cutoff), execution_options=ALL_TENANTS
    )
    return int(result.rowcount)


class RetentionBlocked(RuntimeError):
    """A partition could not be detached within the lock timeout, however often tried."""


_LOCK_NOT_AVAILABLE = "55P03"


async def drop_partitions_before(
    engine: AsyncEngine, *, cutoff: int, lock_timeout_ms: int = 2000, attempts: int = 30
) -> int:
    """Drop the monthly partitions wholly before ``cutoff`` (PostgreSQL); returns how many
    calls they held.

    Each is detached CONCURRENTLY, in its own transactions (the statement cannot run in one):
    readers and writers of call_logs go on and never queue behind it. It waits for the
    transactions that may still read the partition, each wait bounded by ``lock_timeout``;
    a detach cut short stays pending and is finished (FINALIZE) at the next attempt. No
    statement timeout: this is maintenance, not a request."""
    async with engine.connect() as raw:
        conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("SET statement_timeout = 0"))
        await conn.execute(sa.text(f"SET lock_timeout = {int(lock_timeout_ms)}"))
        try:
            return await _drop_before(conn, cutoff=cutoff, attempts=attempts)
        finally:  # the pool hands this connection out again
            await conn.execute(sa.text("RESET statement_timeout"))
            await conn.execute(sa.text("RESET lock_timeout"))


async def _drop_before(conn: AsyncConnection, *, cutoff: int, attempts: int) -> int:
    """Detach (see ``_detach``), count and drop each partition wholly before ``cutoff``."""
    removed = 0
    result = await conn.execute(
        sa.text(
            "SELECT c.relname, i.inhdetachpending FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'call_logs'::regclass"
        )
    )
    for name, pending in sorted(result.all()):
        if not _PARTITION.fullmatch(name):
            continue
        year, month = int(name[-6:-2]), int(name[-2:])
        if month_start(*next_month(year, month)) > cutoff:
            continue
        await _detach(conn, name, pending=bool(pending), attempts=attempts)
        count = await conn.execute(
            sa.select(sa.func.count()).select_from(sa.table(name)),
            execution_options=ALL_TENANTS,
        )
        removed += int(count.scalar_one())
        await conn.execute(sa.text(f"DROP TABLE {name}"))
    return removed


async def _detach(conn: AsyncConnection, name: str, *, pending: bool, attempts: int) -> None:
    for attempt in range(attempts):
        how = "FINALIZE" if pending else "CONCURRENTLY"
        try:
            await conn.execute(sa.text(f"ALTER TABLE call_logs DETACH PARTITION {name} {how}"))
            return
        except sa.exc.DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            # A concurrent detach that timed out while waiting leaves the partition pending.
            pending = bool(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT i.inhdetachpending FROM pg_inherits i "
                            "WHERE i.inhrelid = CAST(:name AS regclass)"
                        ),
                        {"name": name},
                    )
                ).scalar()
            )
            await asyncio.sleep(min(0.1 * 2**attempt, 5.0))
    raise RetentionBlocked(
        f"partition {name} is still being read after {attempts} tries; "
        "a long transaction holds it: run retention again later"
    )


async def lock_for_ingest(conn: AsyncConnection, *, tenant_id: int) -> None:
    """Serialise a tenant's ingest batches so two can't insert the same source id at once.

    SQLite already serialises writers (BEGIN IMMEDIATE); PostgreSQL takes a transaction lock.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(tenant_id)))
