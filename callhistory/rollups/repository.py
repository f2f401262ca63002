"""SQL of the statistics kept as calls are written. Every statement is scoped by tenant but
``tenants`` (retention and the first build walk every tenant)."""

from __future__ import annotations

import json
from collections import Counter as Histogram
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db import bulk
from callhistory.db.engine import ALL_TENANTS, fetch
from callhistory.db.tables import (
    call_logs,
    call_stats_days,
    call_stats_hours,
    service_state,
)
from callhistory.db.tables import tenants as tenants_table
from callhistory.rollups.sums import CALL_FIELDS, DayKey, Sums

D = call_stats_days.c
H = call_stats_hours.c
_MEASURES = ("calls", "answered", "missed", "abandoned", "talk", "waits", "wait_us")
_READ = (*_MEASURES, "wait_hist")
_DAY_KEY = ("day", "dim", "value")
_CHUNK = 5000
_CALL_COLUMNS = tuple(call_logs.c[name] for name in CALL_FIELDS)
# ``_write`` sends a row as the tenant, its key, then ``_READ``: the tables' column order.
for _table, _key in ((call_stats_days, _DAY_KEY), (call_stats_hours, ("hour",))):
    assert tuple(c.name for c in _table.columns) == ("tenant_id", *_key, *_READ), _table.name


class Inconsistent(Exception):
    """The kept sums do not match the calls they are said to hold."""


def _sums(row: Sequence[Any]) -> Sums:
    """Sums from a row's ``_READ`` columns, in that order."""
    calls, answered, missed, abandoned, talk, waits, wait_us, hist = row
    return Sums(
        calls=int(calls),
        answered=int(answered),
        missed=int(missed),
        abandoned=int(abandoned),
        talk=int(talk),
        waits=int(waits),
        wait_us=int(wait_us),
        hist=Histogram({int(k): v for k, v in json.loads(hist).items()}) if waits else Histogram(),
    )


def _values(sums: Sums) -> tuple[Any, ...]:
    """The ``_READ`` columns of ``sums``, in that order."""
    hist = json.dumps({str(k): v for k, v in sorted(sums.hist.items())})
    return (*(getattr(sums, name) for name in _MEASURES), hist)


async def add_days(conn: AsyncConnection, *, tenant_id: int, delta: Mapping[DayKey, Sums]) -> None:
    """Add ``delta`` to the tenant's day rows (a row that comes to no call goes)."""
    if not delta:
        return
    days = sorted({key[0] for key in delta})
    result = await conn.execute(
        sa.select(D.day, D.dim, D.value, *(D[name] for name in _READ)).where(
            D.tenant_id == tenant_id, D.day.in_(days)
        )
    )
    current = {(int(row[0]), str(row[1]), str(row[2])): row[3:] for row in result}
    await _write(
        conn,
        call_stats_days,
        tenant_id=tenant_id,
        names=_DAY_KEY,
        current={k: _sums(v) for k, v in current.items() if k in delta},
        delta=delta,
    )


async def add_hours(conn: AsyncConnection, *, tenant_id: int, delta: Mapping[int, Sums]) -> None:
    """Add ``delta`` to the tenant's hour rows."""
    if not delta:
        return
    result = await conn.execute(
        sa.select(H.hour, *(H[name] for name in _READ)).where(
            H.tenant_id == tenant_id, H.hour.in_(sorted(delta))
        )
    )
    current = {(int(row[0]),): _sums(row[1:]) for row in result}
    await _write(
        conn,
        call_stats_hours,
        tenant_id=tenant_id,
        names=("hour",),
        current=current,
        delta={(hour,): sums for hour, sums in delta.items()},
    )


async def _write(
    conn: AsyncConnection,
    table: sa.Table,
    *,
    tenant_id: int,
    names: tuple[str, ...],
    current: Mapping[Any, Sums],
    delta: Mapping[Any, Sums],
) -> None:
    upserts: list[tuple[Any, ...]] = []
    gone: list[Any] = []
    for key, change in delta.items():
        sums = current.get(key) or Sums()
        sums.add(change)
        if sums.calls < 0:
            raise Inconsistent(f"statistics of tenant {tenant_id} would go below zero at {key}")
        if sums.calls:
            upserts.append((tenant_id, *key, *_values(sums)))
        elif key in current:
            gone.append(key)
    if upserts:
        order = ("tenant_id", *names, *_READ)  # the table's own (checked at import)
        await bulk.upsert_rows(
            conn, table, order, upserts, keys=("tenant_id", *names), updates=_READ
        )
    if gone:
        columns = [table.c[name] for name in names]
        await conn.execute(
            table.delete().where(
                table.c.tenant_id == tenant_id, sa.tuple_(*columns).in_([tuple(k) for k in gone])
            )
        )


async def clear(conn: AsyncConnection, *, tenant_id: int, days: tuple[int, int] | None) -> None:
    """Forget the tenant's sums of local days ``days`` (first, last), or all of them."""
    day_rows = call_stats_days.delete().where(D.tenant_id == tenant_id)
    hour_rows = call_stats_hours.delete().where(H.tenant_id == tenant_id)
    if days is not None:
        day_rows = day_rows.where(D.day.between(days[0], days[1]))
        hour_rows = hour_rows.where(H.hour.between(days[0] * 24, days[1] * 24 + 23))
    await conn.execute(day_rows)
    await conn.execute(hour_rows)


async def drop_before(conn: AsyncConnection, *, tenant_id: int, day: int) -> None:
    """Forget the tenant's sums of the local days before ``day``."""
    await conn.execute(call_stats_days.delete().where(D.tenant_id == tenant_id, D.day < day))
    await conn.execute(call_stats_hours.delete().where(H.tenant_id == tenant_id, H.hour < day * 24))


async def calls_of(
    conn: AsyncConnection, *, tenant_id: int, start: int | None, end: int | None
) -> AsyncIterator[list[dict[str, Any]]]:
    """The tenant's stored calls (the columns the sums need) that started within
    [start, end), a chunk at a time, along the primary key."""
    after: tuple[int, int] | None = None
    while True:
        query = sa.select(*_CALL_COLUMNS).where(call_logs.c.tenant_id == tenant_id)
        if start is not None:
            query = query.where(call_logs.c.started_at >= start)
        if end is not None:
            query = query.where(call_logs.c.started_at < end)
        if after is not None:
            query = query.where(
                sa.tuple_(call_logs.c.started_at, call_logs.c.id) > sa.tuple_(*after)
            )
        query = query.order_by(call_logs.c.started_at, call_logs.c.id).limit(_CHUNK)
        rows = [dict(zip(CALL_FIELDS, row, strict=True)) for row in await conn.execute(query)]
        if rows:
            yield rows
        if len(rows) < _CHUNK:
            return
        after = (rows[-1]["started_at"], rows[-1]["id"])


async def tenants(conn: AsyncConnection) -> list[tuple[int, str]]:
    """Every tenant's id and time zone."""
    result = await conn.execute(
        sa.select(tenants_table.c.id, tenants_table.c.timezone).order_by(tenants_table.c.id),
        execution_options=ALL_TENANTS,
    )
    return [(int(i), str(tz)) for i, tz in result]


_STATE = sa.select(service_state.c.value).where(service_state.c.name == "call_stats")


async def state(conn: AsyncConnection) -> str:
    """``ready`` when every stored call is in the sums, ``pending`` until they are built."""
    value = (await conn.execute(_STATE, execution_options=ALL_TENANTS)).scalar_one_or_none()
    return "ready" if value is None else str(value)


async def set_state(conn: AsyncConnection, value: str) -> None:
    await conn.execute(
        service_state.update().where(service_state.c.name == "call_stats").values(value=value),
        execution_options=ALL_TENANTS,
    )


_DAYS_OF = sa.select(D.day, D.value, *(D[name] for name in _READ)).where(
    D.tenant_id == sa.bindparam("tenant_id"),
    D.dim == sa.bindparam("dim"),
    D.day.between(sa.bindparam("first"), sa.bindparam("last")),
)
_HOURS_OF = sa.select(H.hour, *(H[name] for name in _READ)).where(
    H.tenant_id == sa.bindparam("tenant_id"),
    H.hour.between(sa.bindparam("first"), sa.bindparam("last")),
)
_ALL = (-(2**31), 2**31 - 1)


async def days_of(
    conn: AsyncConnection, *, tenant_id: int, days: tuple[int, int] | None, dim: str
) -> list[tuple[DayKey, Sums]]:
    """The tenant's day rows of dimension ``dim`` ("": the days' own) within ``days``."""
    first, last = days or _ALL
    rows = await fetch(
        conn, _DAYS_OF, {"tenant_id": tenant_id, "dim": dim, "first": first, "last": last}
    )
    return [((int(row[0]), dim, str(row[1])), _sums(row[2:])) for row in rows]


async def hours_of(
    conn: AsyncConnection, *, tenant_id: int, hours: tuple[int, int] | None
) -> list[tuple[int, Sums]]:
    """The tenant's hour rows within ``hours`` (first, last)."""
    first, last = hours or _ALL
    rows = await fetch(conn, _HOURS_OF, {"tenant_id": tenant_id, "first": first, "last": last})
    return [(int(row[0]), _sums(row[1:])) for row in rows]
