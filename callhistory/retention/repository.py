"""SQL of retention: every tenant's calls and legs older than a cutoff (across tenants, on
purpose)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.backend import backend
from callhistory.db.engine import ALL_TENANTS
from callhistory.db.tables import call_legs, call_logs, service_state


async def delete_older_than(conn: AsyncConnection, *, cutoff: int) -> int:
    """Retention, across every tenant: delete the calls that started before ``cutoff`` (on
    PostgreSQL, after ``drop_partitions_before``: only the month that straddles the cutoff)."""
    result = await conn.execute(
        call_logs.delete().where(call_logs.c.started_at < cutoff), execution_options=ALL_TENANTS
    )
    return int(result.rowcount)


async def delete_legs_older_than(conn: AsyncConnection, *, cutoff: int) -> None:
    """Retention, across every tenant: forget the legs of calls that started before ``cutoff``."""
    await conn.execute(
        call_legs.delete().where(call_legs.c.started_at < cutoff), execution_options=ALL_TENANTS
    )


async def record_purge(conn: AsyncConnection, *, cutoff: int) -> None:
    """Note that every call that started before ``cutoff`` is gone: the change feed tells each
    reader once, instead of one deletion per call."""
    result = await conn.execute(
        sa.select(service_state.c.value).where(service_state.c.name == "purged_before")
    )
    previous = result.scalar_one_or_none()
    if previous is not None and int(previous) >= cutoff:
        return
    statement = backend(conn).insert(service_state).values(name="purged_before", value=str(cutoff))
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[service_state.c.name], set_={"value": statement.excluded.value}
        )
    )
