"""SQL of retention: every tenant's calls and legs older than a cutoff (across tenants, on
purpose)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.engine import ALL_TENANTS
from callhistory.db.tables import call_legs, call_logs


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
