"""Recordings' rows, and the call an upload is for; every statement takes the tenant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.engine import ALL_TENANTS
from callhistory.db.tables import recordings

_COLUMNS = (
    recordings.c.id,
    recordings.c.call_id,
    recordings.c.name,
    recordings.c.source,
    recordings.c.store,
    recordings.c.key,
    recordings.c.size,
    recordings.c.content_type,
    recordings.c.sha256,
    recordings.c.created_at,
)


async def get(conn: AsyncConnection, *, tenant_id: int, recording_id: int) -> Any:
    select = sa.select(*_COLUMNS).where(
        recordings.c.tenant_id == tenant_id,
        recordings.c.id == recording_id,
        recordings.c.gone_at.is_(None),
    )
    return (await conn.execute(select)).first()


async def of_call(conn: AsyncConnection, *, tenant_id: int, call_id: int) -> list[Any]:
    select = (
        sa.select(*_COLUMNS)
        .where(
            recordings.c.tenant_id == tenant_id,
            recordings.c.call_id == call_id,
            recordings.c.gone_at.is_(None),
        )
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


async def of_calls(conn: AsyncConnection, *, tenant_id: int, call_ids: list[int]) -> list[Any]:
    """The kept recordings of these calls: (call_id, id, name), by call and name."""
    select = (
        sa.select(recordings.c.call_id, recordings.c.id, recordings.c.name)
        .where(
            recordings.c.tenant_id == tenant_id,
            recordings.c.call_id.in_(call_ids),
            recordings.c.gone_at.is_(None),
        )
        .order_by(recordings.c.call_id, recordings.c.name)
    )
    return list(await conn.execute(select))


async def any_kept(conn: AsyncConnection, *, tenant_id: int) -> bool:
    select = (
        sa.select(recordings.c.id)
        .where(recordings.c.tenant_id == tenant_id, recordings.c.gone_at.is_(None))
        .limit(1)
    )
    return (await conn.execute(select)).first() is not None


async def mark_gone(
    conn: AsyncConnection, *, tenant_id: int, call_ids: Sequence[int], now: int
) -> None:
    for start in range(0, len(call_ids), 500):
        await conn.execute(
            recordings.update()
            .where(
                recordings.c.tenant_id == tenant_id,
                recordings.c.call_id.in_(list(call_ids[start : start + 500])),
                recordings.c.gone_at.is_(None),
            )
            .values(gone_at=now)
        )


async def mark_gone_before(conn: AsyncConnection, *, cutoff: int, now: int) -> None:
    """Every tenant's recordings of calls started before ``cutoff`` (retention is global)."""
    await conn.execute(
        recordings.update()
        .where(recordings.c.started_at < cutoff, recordings.c.gone_at.is_(None))
        .values(gone_at=now),
        execution_options=ALL_TENANTS,
    )


async def gone(conn: AsyncConnection, *, store: str, limit: int) -> list[Any]:
    """Gone recordings of any tenant kept in ``store``: (tenant_id, id, key)."""
    select = (
        sa.select(recordings.c.tenant_id, recordings.c.id, recordings.c.key)
        .where(recordings.c.gone_at.is_not(None), recordings.c.store == store)
        .limit(limit)
    )
    return list(await conn.execute(select, execution_options=ALL_TENANTS))


async def remove(conn: AsyncConnection, *, keys: list[tuple[int, int]]) -> None:
    await conn.execute(
        recordings.delete().where(sa.tuple_(recordings.c.tenant_id, recordings.c.id).in_(keys)),
        execution_options=ALL_TENANTS,
    )


async def keys_in(conn: AsyncConnection, *, store: str) -> list[str]:
    """The keys of every tenant's recordings kept in ``store`` (gone ones included: their
    files are still there until purged)."""
    select = sa.select(recordings.c.key).where(recordings.c.store == store)
    return [str(key) for key in await conn.scalars(select, execution_options=ALL_TENANTS)]
