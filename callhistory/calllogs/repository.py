"""All SQL on call logs. Every function takes the tenant and every statement is scoped by it.

Pages are keyset scans along ``(tenant_id, <sort column>, id)``. A filter that is an OR over
several index ranges (caller or callee; a list of extensions or hotlines) is run as a UNION of
index-ordered, LIMITed subqueries, so the database never sorts a whole tenant to find one page.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.calllogs.query import CallLogQuery
from callhistory.db.backend import Backend, backend
from callhistory.db.engine import InIdList, fetch, id_list, keyset_past
from callhistory.db.months import Window, month_windows
from callhistory.db.tables import (
    LONG_CALL_TIERS,
    call_log_erasures,
    call_logs,
    change_counters,
    long_calls,
    service_state,
    unindexed_duration,
    users,
)
from callhistory.kit.paging import Key

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
    limit: int | None  # in the SQL itself (``_kept_plan``); else a bind parameter
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
        limit=limit if _kept_plan(q) else None,
        sort=sort,
        forward=forward,
        inclusive=inclusive,
        columns=columns,
        late_columns=late_columns,
    )
    return _statement(shape), values


_UNFILTERED = CallLogQuery()


def _kept_plan(query: CallLogQuery) -> bool:
    """Whether a page's statement gets a plan made once and kept (``Backend.kept_plans``): an
    unfiltered one, whose plan no value changes once its LIMIT is written in the SQL (as a
    parameter, the planner takes it for a tenth of the rows, and plans anew at every call what
    it found cheaper with the value). A filter's plan depends on its values (how many calls
    match), so it is planned with them each time."""
    return query == _UNFILTERED


def starts_at_edge(store: Backend, query: CallLogQuery, *, sort: str, key: Key | None) -> bool:
    """Whether a page's walk starts at the month of the tenant's first call its way, looked up
    first (``edge_start``): a first page along started_at over monthly partitions, unless it
    is one statement with a kept plan."""
    if key is not None or not _walks_started_at(store, sort):
        return False
    return not (store.kept_plans and _kept_plan(query))


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
        # index beats one index walk per user.
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
            keyset_past((column, c.id), bound, descending=descending, inclusive=shape.inclusive)
        )
    branches, extra = _branches(shape)
    conds += extra
    limit: sa.ColumnElement[Any] = (
        sa.bindparam("limit", type_=sa.Integer)
        if shape.limit is None
        else sa.literal_column(str(int(shape.limit)))
    )

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
    # candidates (SQLite; on PostgreSQL the join back over its partitions costs more).
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

    Over monthly partitions a walk along ``started_at`` reads month by month (see
    ``walk_windows``), from the month of the key or of the tenant's first call that way: a
    statement over every month is planned anew at each call, at more cost than the read;
    except an unfiltered first page where plans are kept (``starts_at_edge``).
    """
    store = backend(conn)
    edge = None
    if starts_at_edge(store, query, sort=sort, key=key):
        found = await fetch(
            conn, *edge_start(tenant_id, query, descending=sort.startswith("-") == forward)
        )
        edge = found[0][0] if found else None
        if edge is None:
            return []
    rows: list[Sequence[Any]] = []
    statements = window_statements(
        store,
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
        found = await fetch(conn, statement, {**values, "limit": limit - len(rows)})
        rows += found[: limit - len(rows)]  # a LIMIT in the SQL is the whole page's
        if len(rows) >= limit:
            break
    return rows


def window_statements(
    store: Backend,
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
    per window of started_at (``walk_windows``), as ``store`` reads them best, each built when
    the walk gets to it."""
    for window in walk_windows(store, query=query, sort=sort, key=key, forward=forward, edge=edge):
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
            late_columns=store.late_columns,
        )


def _walks_started_at(store: Backend, sort: str) -> bool:
    return store.monthly_partitions and sort.lstrip("-") == "started_at"


def walk_windows(
    store: Backend,
    *,
    query: CallLogQuery,
    sort: str,
    key: Key | None,
    forward: bool,
    edge: int | None,
) -> list[Window]:
    """The bounds of started_at a page is read within, one after the other (``fetch_page``):
    from the month of ``key``, else of ``edge`` (the start of the tenant's first call in the
    walk's direction, ``edge_start``). The page is read as of that lookup: its first window
    ends at ``edge``, so that it names one month (months made ahead for calls to come cost
    planning time, empty as they are)."""
    anchor = key[0] if key is not None else edge
    if not _walks_started_at(store, sort) or anchor is None:
        return [(None, None)]
    descending = sort.startswith("-") == forward
    if descending:
        windows = month_windows(anchor, query.date_from, step=-1)
    else:
        windows = month_windows(anchor, query.date_to, step=1)
    if key is None:
        low, high = windows[0]
        windows[0] = (low, anchor + 1) if descending else (anchor, high)
    return windows


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


_TENANT: sa.BindParameter[int] = sa.bindparam("tenant_id", type_=sa.BigInteger)
# One call by what names it: the newest, should a PBX have reused an external id.
_BY = {
    name: sa.select(c.doc)
    .where(c.tenant_id == _TENANT, c[name] == sa.bindparam("value"))
    .order_by(c.started_at.desc(), c.id.desc())
    .limit(1)
    for name in ("id", "source_id", "external_id", "external_session_id")
}


async def get_document(
    conn: AsyncConnection, *, tenant_id: int, by: str, value: int | str
) -> bytes | None:
    """The stored document of the call whose ``by`` column is ``value``."""
    rows = await fetch(conn, _BY[by], {"tenant_id": tenant_id, "value": value})
    return bytes(rows[0][0]) if rows else None


_E = call_log_erasures.c
_POSITION: sa.BindParameter[int] = sa.bindparam("position", type_=sa.BigInteger)
_LIMIT: sa.BindParameter[int] = sa.bindparam("limit", type_=sa.Integer)
# Calls stored before the change feed existed, by id.
_UNSEQUENCED = (
    sa.select(c.id, c.doc)
    .where(c.tenant_id == _TENANT, c.change_seq.is_(None), c.id > _POSITION)
    .order_by(c.id)
    .limit(_LIMIT)
)
_UPSERTS = (
    sa.select(c.change_seq, c.doc)
    .where(
        c.tenant_id == _TENANT,
        c.change_seq.isnot(None),
        c.change_seq > _POSITION,
        c.change_seq <= sa.bindparam("upto", type_=sa.BigInteger),
    )
    .order_by(c.change_seq)
    .limit(_LIMIT)
)
_ERASURES = (
    sa.select(_E.change_seq, _E.id, _E.source_id, _E.erased_at)
    .where(
        _E.tenant_id == _TENANT,
        _E.change_seq > _POSITION,
        _E.change_seq <= sa.bindparam("upto", type_=sa.BigInteger),
    )
    .order_by(_E.change_seq)
    .limit(_LIMIT)
)
_HORIZON = sa.select(change_counters.c.last_seq).where(change_counters.c.tenant_id == _TENANT)


async def unsequenced_changes(
    conn: AsyncConnection, *, tenant_id: int, after_id: int, limit: int
) -> Sequence[Sequence[Any]]:
    """(id, document) of calls stored before the feed existed, past ``after_id``."""
    params = {"tenant_id": tenant_id, "position": after_id, "limit": limit}
    return await fetch(conn, _UNSEQUENCED, params)


async def change_horizon(conn: AsyncConnection, *, tenant_id: int) -> int:
    """The tenant's last change number: every change up to it has committed (numbers are
    taken under a lock held to the commit), so a reader may pass it without missing one."""
    rows = await fetch(conn, _HORIZON, {"tenant_id": tenant_id})
    return int(rows[0][0]) if rows else 0


async def upserts_between(
    conn: AsyncConnection, *, tenant_id: int, after: int, upto: int, limit: int
) -> Sequence[Sequence[Any]]:
    """(change number, document) of the calls last written with a number in (after, upto]."""
    params = {"tenant_id": tenant_id, "position": after, "upto": upto, "limit": limit}
    return await fetch(conn, _UPSERTS, params)


async def erasures_between(
    conn: AsyncConnection, *, tenant_id: int, after: int, upto: int, limit: int
) -> Sequence[Sequence[Any]]:
    """(change number, id, source id, erased at) of the erasures numbered in (after, upto]."""
    params = {"tenant_id": tenant_id, "position": after, "upto": upto, "limit": limit}
    return await fetch(conn, _ERASURES, params)


_PURGED = sa.select(service_state.c.value).where(service_state.c.name == "purged_before")


async def purged_before(conn: AsyncConnection) -> int:
    """Retention's latest cutoff: every call that started before it is gone (0: none yet)."""
    rows = await fetch(conn, _PURGED, {})
    return int(rows[0][0]) if rows else 0


_FOR_MISSED = sa.select(
    c.started_at,
    c.id,
    c.direction,
    c.call_state,
    c.caller,
    c.caller_norm,
    c.callee_norm,
    c.hotline_id,
).where(
    c.tenant_id == _bind("tenant_id"),
    c.started_at >= _bind("start"),
    c.started_at <= _bind("end"),
    c.direction.in_([sa.literal_column(f"'{d}'") for d in ("in", "ext_in", "out", "ext_out")]),
)


async def calls_between(
    conn: AsyncConnection, *, tenant_id: int, start: int, end: int
) -> Sequence[Sequence[Any]]:
    """(started_at, id, direction, call_state, caller, caller_norm, callee_norm, hotline_id)
    of the tenant's calls to or from outside that started within ``[start, end]``."""
    return await fetch(conn, _FOR_MISSED, {"tenant_id": tenant_id, "start": start, "end": end})


async def call_recordings(
    conn: AsyncConnection, *, tenant_id: int, call_id: int | None, source_id: str | None
) -> tuple[int, int, str] | None:
    """A call of the tenant by its id or its PBX call id: (id, started_at, its
    ``recording_urls`` JSON)."""
    where = [call_logs.c.tenant_id == tenant_id]
    if call_id is not None:
        where.append(call_logs.c.id == call_id)
    if source_id is not None:
        where.append(call_logs.c.source_id == source_id)
    select = sa.select(call_logs.c.id, call_logs.c.started_at, call_logs.c.recording_urls)
    row = (await conn.execute(select.where(*where))).first()
    return None if row is None else (int(row.id), int(row.started_at), str(row.recording_urls))


async def calls_naming_recordings(
    conn: AsyncConnection, *, tenant_id: int, start: int, end: int
) -> list[tuple[int, int, str]]:
    """The tenant's calls started in [start, end) whose CDR named recordings: (id,
    started_at, ``recording_urls`` JSON)."""
    select = sa.select(call_logs.c.id, call_logs.c.started_at, call_logs.c.recording_urls).where(
        call_logs.c.tenant_id == tenant_id,
        call_logs.c.started_at >= start,
        call_logs.c.started_at < end,
        call_logs.c.recording_urls != "[]",
    )
    return [
        (int(r.id), int(r.started_at), str(r.recording_urls)) for r in await conn.execute(select)
    ]
