"""What ingest writes: PBX legs, and the call logs built from them (and from IngestCallLogs).
Every function takes the tenant and scopes by it."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db import bulk
from callhistory.db.backend import backend
from callhistory.db.engine import fetch, lock_tenant_writes
from callhistory.db.tables import call_legs, call_log_erasures, call_logs, change_counters
from callhistory.rollups.sums import CALL_FIELDS

c = call_legs.c
logs = call_logs.c
_CHUNK = 400


async def upsert_legs(
    conn: AsyncConnection, *, tenant_id: int, legs: Sequence[dict[str, Any]]
) -> None:
    """Store legs keyed by (call_source_id, leg_id): new ones inserted, known ones replaced, in
    one statement (two posts of one CDR at once must not both try to insert it)."""
    if not legs:
        return
    statement = backend(conn).insert(call_legs)
    statement = statement.on_conflict_do_update(
        index_elements=[c.tenant_id, c.call_source_id, c.leg_id],
        set_={"data": statement.excluded.data, "started_at": statement.excluded.started_at},
    )
    await conn.execute(statement, [{**leg, "tenant_id": tenant_id} for leg in legs])


async def legs_of(
    conn: AsyncConnection, *, tenant_id: int, call_ids: Sequence[str]
) -> dict[str, list[str]]:
    """The stored legs (as their JSON) of these calls."""
    found: dict[str, list[str]] = {}
    for start in range(0, len(call_ids), _CHUNK):
        result = await conn.execute(
            sa.select(c.call_source_id, c.data)
            .where(c.tenant_id == tenant_id, c.call_source_id.in_(call_ids[start : start + _CHUNK]))
            .order_by(c.call_source_id, c.leg_id)
        )
        for row in result:
            found.setdefault(row.call_source_id, []).append(row.data)
    return found


_SOURCE_CHUNK = 500
_BY_SOURCE = sa.select(*(col for col in call_logs.columns if col.name != "doc")).where(
    logs.tenant_id == sa.bindparam("tenant_id"),
    logs.source_id.in_([sa.bindparam(f"source_{i}") for i in range(_SOURCE_CHUNK)]),
)
_BY_SOURCE_NAMES = tuple(col.name for col in call_logs.columns if col.name != "doc")


async def _by_source(
    conn: AsyncConnection,
    statement: sa.Select[Any],
    *,
    tenant_id: int,
    source_ids: Sequence[str],
) -> list[Sequence[Any]]:
    """The rows ``statement`` finds for these source ids, a whole batch per statement (a short
    one repeats its last id), so one statement serves every batch (see db.engine.fetch)."""
    rows: list[Sequence[Any]] = []
    for start in range(0, len(source_ids), _SOURCE_CHUNK):
        chunk = list(source_ids[start : start + _SOURCE_CHUNK])
        chunk += chunk[-1:] * (_SOURCE_CHUNK - len(chunk))
        params: dict[str, Any] = {f"source_{i}": v for i, v in enumerate(chunk)}
        params["tenant_id"] = tenant_id
        rows += await fetch(conn, statement, params)
    return rows


async def find_by_source(
    conn: AsyncConnection, *, tenant_id: int, source_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Stored calls (every column but the document) of these PBX call ids, by source id."""
    rows = await _by_source(conn, _BY_SOURCE, tenant_id=tenant_id, source_ids=source_ids)
    found = (dict(zip(_BY_SOURCE_NAMES, row, strict=True)) for row in rows)
    return {stored["source_id"]: stored for stored in found}


# Rows per INSERT (x 26 columns: well within both backends' 32,766 parameters).
_INSERT_ROWS = 100
# Each INSERT: its SQL, its parameters row after row, and how many rows.
Inserts = list[tuple[str, tuple[Any, ...], int]]


def _columns(row: dict[str, Any]) -> tuple[str, ...]:
    """The columns a row holds, in the table's order (change_seq last): the order of the
    compiled VALUES and of a COPY's records."""
    return tuple(col.name for col in call_logs.columns if col.name in row)


def prepare_inserts(
    conn: AsyncConnection, *, tenant_id: int, rows: Sequence[dict[str, Any]]
) -> Inserts:
    """The multi-row INSERTs (SQL and parameters, ``_INSERT_ROWS`` rows each) that store new
    calls: built apart from running them, so an ingest batch builds them before it takes the
    write lock.

    Plain tuples and SQL compiled once (``db.bulk``).
    """
    if not rows:
        return []
    names = _columns(rows[0])
    assert names[-1] == "change_seq", "every row carries its change number, last"
    values = operator.itemgetter(*names)
    return [
        (
            bulk.insert_sql(conn.dialect, call_logs, ("tenant_id", *names), len(chunk)),
            tuple([v for row in chunk for v in (tenant_id, *values(row))]),
            len(chunk),
        )
        for chunk in (rows[i : i + _INSERT_ROWS] for i in range(0, len(rows), _INSERT_ROWS))
    ]


def numbered(inserts: Inserts, first_seq: int) -> Inserts:
    """The INSERTs with their rows' change numbers set, ``first_seq`` onwards in row order
    (they are built before the numbers can be taken, under the tenant's lock)."""
    out: Inserts = []
    seq = first_seq
    for sql, params, count in inserts:
        values = list(params)
        width = len(values) // count
        for end in range(width - 1, len(values), width):
            values[end] = seq
            seq += 1
        out.append((sql, tuple(values), count))
    return out


async def insert_prepared(conn: AsyncConnection, inserts: Inserts) -> None:
    """Run INSERTs from ``prepare_inserts`` on the driver."""
    for sql, params, _ in inserts:
        await conn.exec_driver_sql(sql, params)


async def insert_many(
    conn: AsyncConnection, *, tenant_id: int, rows: Sequence[dict[str, Any]]
) -> None:
    """Insert new calls (on PostgreSQL by COPY, ``db.bulk.copy_rows``)."""
    if not rows:
        return
    names = _columns(rows[0])
    values = operator.itemgetter(*names)
    await bulk.copy_rows(
        conn, call_logs, ("tenant_id", *names), [(tenant_id, *values(row)) for row in rows]
    )


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
            logs.tenant_id == tenant_id,
            logs.started_at == sa.bindparam("_started"),
            logs.id == sa.bindparam("_id"),
        )
        .values({name: sa.bindparam(name) for name in columns})
    )
    params = [
        {**{k: row[k] for k in columns}, "_id": row["id"], "_started": row["previous_started_at"]}
        for row in rows
    ]
    await conn.execute(statement, params)


async def source_of(conn: AsyncConnection, *, tenant_id: int, call_id: int) -> str | None:
    """A stored call's PBX call id."""
    select = sa.select(call_logs.c.source_id).where(
        call_logs.c.tenant_id == tenant_id, call_logs.c.id == call_id
    )
    return (await conn.execute(select)).scalar()


async def lock_for_ingest(conn: AsyncConnection, *, tenant_id: int) -> None:
    """Serialise a tenant's ingest batches so two can't insert the same source id at once."""
    await lock_tenant_writes(conn, tenant_id=tenant_id)


async def take_seqs(conn: AsyncConnection, *, tenant_id: int, count: int) -> int:
    """The first of ``count`` new change numbers of the tenant. The counter's row stays locked
    until the transaction ends, so the tenant's changes commit in the order of their numbers."""
    statement = backend(conn).insert(change_counters).values(tenant_id=tenant_id, last_seq=count)
    statement = statement.on_conflict_do_update(
        index_elements=[change_counters.c.tenant_id],
        set_={"last_seq": change_counters.c.last_seq + statement.excluded.last_seq},
    ).returning(change_counters.c.last_seq)
    last = (await conn.execute(statement)).scalar_one()
    return int(last) - count + 1


_ERASED = sa.select(call_log_erasures.c.source_id, call_log_erasures.c.id).where(
    call_log_erasures.c.tenant_id == sa.bindparam("tenant_id"),
    call_log_erasures.c.source_id.in_([sa.bindparam(f"source_{i}") for i in range(_SOURCE_CHUNK)]),
)


async def erased_of(
    conn: AsyncConnection, *, tenant_id: int, source_ids: Sequence[str]
) -> dict[str, int]:
    """The ids of the erased calls among these source ids, by source id."""
    rows = await _by_source(conn, _ERASED, tenant_id=tenant_id, source_ids=source_ids)
    return {str(source_id): int(call_id) for source_id, call_id in rows}


# An erased call's source id, and what its statistics counted (rollups.apply takes it back).
_ERASE_COLUMNS = (logs.source_id, *(logs[name] for name in CALL_FIELDS))


async def calls_to_erase(
    conn: AsyncConnection, *, tenant_id: int, ids: Sequence[int], number: str
) -> list[dict[str, Any]]:
    """The calls with these ids, or with this normalised number as caller or callee: their
    id, source id, and what their statistics counted."""
    where = (
        sa.or_(logs.caller_norm == number, logs.callee_norm == number)
        if number
        else logs.id.in_(list(ids))
    )
    result = await conn.execute(
        sa.select(*_ERASE_COLUMNS).where(logs.tenant_id == tenant_id, where).order_by(logs.id)
    )
    return [dict(row) for row in result.mappings()]


async def erase(
    conn: AsyncConnection,
    *,
    tenant_id: int,
    calls: Sequence[dict[str, Any]],
    first_seq: int,
    now: int,
) -> None:
    """Remove these calls and their PBX legs, and record each as erased with its change
    number."""
    for start in range(0, len(calls), _CHUNK):
        chunk = calls[start : start + _CHUNK]
        await conn.execute(
            call_log_erasures.insert(),
            [
                {
                    "tenant_id": tenant_id,
                    "id": call_id,
                    "source_id": source_id,
                    "erased_at": now,
                    "change_seq": first_seq + start + i,
                }
                for i, (call_id, source_id) in enumerate(
                    (call["id"], call["source_id"]) for call in chunk
                )
            ],
        )
        await conn.execute(
            call_logs.delete().where(
                logs.tenant_id == tenant_id,
                sa.tuple_(logs.started_at, logs.id).in_(
                    [(call["started_at"], call["id"]) for call in chunk]
                ),
            )
        )
        await conn.execute(
            call_legs.delete().where(
                c.tenant_id == tenant_id,
                c.call_source_id.in_([call["source_id"] for call in chunk]),
            )
        )
