"""SQL on call legs; every function takes the tenant and scopes by it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.engine import ALL_TENANTS
from callhistory.db.tables import call_legs

c = call_legs.c
_CHUNK = 400


async def upsert_legs(
    conn: AsyncConnection, *, tenant_id: int, legs: Sequence[dict[str, Any]]
) -> None:
    """Store legs keyed by (call_source_id, leg_id): new ones inserted, known ones replaced, in
    one statement (two posts of one CDR at once must not both try to insert it)."""
    if not legs:
        return
    insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = insert(call_legs)
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


async def delete_legs_older_than(conn: AsyncConnection, *, cutoff: int) -> None:
    """Retention, across every tenant: forget the legs of calls that started before ``cutoff``."""
    await conn.execute(
        call_legs.delete().where(c.started_at < cutoff), execution_options=ALL_TENANTS
    )
