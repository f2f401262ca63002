"""SQL on call legs; every function takes the tenant and scopes by it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.engine import ALL_TENANTS
from callhistory.db.tables import call_legs

c = call_legs.c
_CHUNK = 400


async def upsert_legs(
    conn: AsyncConnection, *, tenant_id: int, legs: Sequence[dict[str, Any]]
) -> None:
    """Store legs keyed by (call_source_id, leg_id): new ones inserted, known ones replaced."""
    calls = sorted({leg["call_source_id"] for leg in legs})
    known: set[tuple[str, str]] = set()
    for start in range(0, len(calls), _CHUNK):
        result = await conn.execute(
            sa.select(c.call_source_id, c.leg_id).where(
                c.tenant_id == tenant_id, c.call_source_id.in_(calls[start : start + _CHUNK])
            )
        )
        known.update((row.call_source_id, row.leg_id) for row in result)
    inserts = [leg for leg in legs if (leg["call_source_id"], leg["leg_id"]) not in known]
    updates = [leg for leg in legs if (leg["call_source_id"], leg["leg_id"]) in known]
    if inserts:
        await conn.execute(call_legs.insert(), [{**leg, "tenant_id": tenant_id} for leg in inserts])
    if updates:
        statement = (
            call_legs.update()
            .where(
                c.tenant_id == tenant_id,
                c.call_source_id == sa.bindparam("_call"),
                c.leg_id == sa.bindparam("_leg"),
            )
            .values(data=sa.bindparam("data"), started_at=sa.bindparam("started_at"))
        )
        params = [
            {
                "_call": leg["call_source_id"],
                "_leg": leg["leg_id"],
                "data": leg["data"],
                "started_at": leg["started_at"],
            }
            for leg in updates
        ]
        await conn.execute(statement, params)


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


async def delete_legs_older_than(conn: AsyncConnection, *, cutoff: int) -> None:
    """Retention, across every tenant: forget the legs of calls that started before ``cutoff``."""
    await conn.execute(
        call_legs.delete().where(c.started_at < cutoff), execution_options=ALL_TENANTS
    )
