"""Recordings' rows, and the call an upload is for; every statement takes the tenant."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.tables import recordings

_COLUMNS = (
    recordings.c.id,
    recordings.c.call_id,
    recordings.c.name,
    recordings.c.source,
    recordings.c.key,
    recordings.c.size,
    recordings.c.content_type,
    recordings.c.sha256,
    recordings.c.created_at,
)


async def get(conn: AsyncConnection, *, tenant_id: int, recording_id: int) -> Any:
    select = sa.select(*_COLUMNS).where(
        recordings.c.tenant_id == tenant_id, recordings.c.id == recording_id
    )
    return (await conn.execute(select)).first()


async def of_call(conn: AsyncConnection, *, tenant_id: int, call_id: int) -> list[Any]:
    select = (
        sa.select(*_COLUMNS)
        .where(recordings.c.tenant_id == tenant_id, recordings.c.call_id == call_id)
        .order_by(recordings.c.name)
    )
    return list(await conn.execute(select))


async def named(conn: AsyncConnection, *, tenant_id: int, call_id: int, name: str) -> Any:
    select = sa.select(*_COLUMNS).where(
        recordings.c.tenant_id == tenant_id,
        recordings.c.call_id == call_id,
        recordings.c.name == name,
    )
    return (await conn.execute(select)).first()


async def insert(conn: AsyncConnection, *, tenant_id: int, values: dict[str, Any]) -> None:
    await conn.execute(recordings.insert().values(tenant_id=tenant_id, **values))


async def replace(
    conn: AsyncConnection, *, tenant_id: int, recording_id: int, values: dict[str, Any]
) -> None:
    await conn.execute(
        recordings.update()
        .where(recordings.c.tenant_id == tenant_id, recordings.c.id == recording_id)
        .values(**values)
    )
