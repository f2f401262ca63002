"""SQL for tenants and API keys. Keys are looked up by hash across tenants (that is how a
caller's tenant is found); everything else is addressed by id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.engine import fetch
from callhistory.db.tables import AnyRow, api_keys, service_state, tenants


async def insert_tenant(
    conn: AsyncConnection,
    *,
    tenant_id: int,
    name: str,
    domain: str | None,
    timezone: str,
    status: str,
    now: int,
) -> None:
    await conn.execute(
        tenants.insert().values(
            id=tenant_id,
            name=name,
            domain=domain,
            timezone=timezone,
            status=status,
            created_at=now,
            updated_at=now,
        )
    )


async def get_tenant(conn: AsyncConnection, *, tenant_id: int) -> AnyRow | None:
    result = await conn.execute(sa.select(tenants).where(tenants.c.id == tenant_id))
    return result.first()


async def set_tenant_status(
    conn: AsyncConnection, *, tenant_id: int, status: str, now: int
) -> bool:
    result = await conn.execute(
        tenants.update().where(tenants.c.id == tenant_id).values(status=status, updated_at=now)
    )
    return result.rowcount == 1


async def insert_key(
    conn: AsyncConnection, *, key_id: int, tenant_id: int, key_hash: str, scope: str, now: int
) -> None:
    await conn.execute(
        api_keys.insert().values(
            id=key_id, tenant_id=tenant_id, key_hash=key_hash, scope=scope, created_at=now
        )
    )


_ACTIVE_KEY = (
    sa.select(
        api_keys.c.id,
        api_keys.c.key_hash,
        api_keys.c.scope,
        api_keys.c.tenant_id,
        tenants.c.domain,
        tenants.c.timezone,
        tenants.c.status,
    )
    .join(tenants, tenants.c.id == api_keys.c.tenant_id)
    .where(api_keys.c.key_hash == sa.bindparam("key_hash"), api_keys.c.revoked_at.is_(None))
)


async def find_active_key(conn: AsyncConnection, *, key_hash: str) -> Sequence[Any] | None:
    """The unrevoked key with this hash, joined with its tenant: (id, key_hash, scope,
    tenant_id, domain, timezone, status). Every request starts here, so it runs on the driver."""
    rows = await fetch(conn, _ACTIVE_KEY, {"key_hash": key_hash})
    return rows[0] if rows else None


async def revoke_key(conn: AsyncConnection, *, key_id: int, now: int) -> AnyRow | None:
    result = await conn.execute(
        api_keys.update()
        .where(api_keys.c.id == key_id)
        .values(revoked_at=sa.func.coalesce(api_keys.c.revoked_at, now))
        .returning(api_keys.c.id, api_keys.c.scope, api_keys.c.tenant_id)
    )
    return result.first()


async def get_state(conn: AsyncConnection, *, name: str) -> str | None:
    result = await conn.execute(
        sa.select(service_state.c.value).where(service_state.c.name == name)
    )
    value = result.scalar_one_or_none()
    return None if value is None else str(value)


async def find_tenant_by_domain(conn: AsyncConnection, *, domain: str) -> AnyRow | None:
    result = await conn.execute(sa.select(tenants).where(tenants.c.domain == domain.lower()))
    return result.first()
