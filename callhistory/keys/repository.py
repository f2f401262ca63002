"""SQL for tenants and API keys. Keys are looked up by hash across tenants (that is how a
caller's tenant is found); everything else is addressed by id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.engine import fetch
from callhistory.db.tables import (
    AnyRow,
    api_keys,
    pbx_accounts,
    pbx_tenants,
    routing_numbers,
    service_state,
    tenants,
)


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


async def update_tenant_status(
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
        api_keys.c.expires_at,
        api_keys.c.last_used_at,
    )
    .join(tenants, tenants.c.id == api_keys.c.tenant_id)
    .where(api_keys.c.key_hash == sa.bindparam("key_hash"), api_keys.c.revoked_at.is_(None))
)


async def find_active_key(conn: AsyncConnection, *, key_hash: str) -> Sequence[Any] | None:
    """The unrevoked key with this hash, joined with its tenant: (id, key_hash, scope,
    tenant_id, domain, timezone, status, expires_at, last_used_at). Every request starts here,
    so it runs on the driver."""
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


async def list_keys(conn: AsyncConnection, *, tenant_id: int | None) -> Sequence[AnyRow]:
    """Every key (of one tenant, or of all: the operator's view), newest first."""
    select = sa.select(api_keys).order_by(api_keys.c.created_at.desc(), api_keys.c.id.desc())
    if tenant_id is not None:
        select = select.where(api_keys.c.tenant_id == tenant_id)
    return (await conn.execute(select)).all()


async def touch_key(conn: AsyncConnection, *, key_id: int, now: int) -> None:
    await conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(last_used_at=now))


async def set_key_expiry(conn: AsyncConnection, *, key_id: int, expires_at: int) -> None:
    await conn.execute(
        api_keys.update().where(api_keys.c.id == key_id).values(expires_at=expires_at)
    )


async def insert_pbx(
    conn: AsyncConnection, *, pbx_id: int, name: str, secret_hash: str, now: int
) -> None:
    await conn.execute(
        pbx_accounts.insert().values(id=pbx_id, name=name, secret_hash=secret_hash, created_at=now)
    )


async def find_pbx(conn: AsyncConnection, *, name: str) -> AnyRow | None:
    result = await conn.execute(sa.select(pbx_accounts).where(pbx_accounts.c.name == name))
    return result.first()


async def list_pbxes(conn: AsyncConnection) -> Sequence[AnyRow]:
    return (await conn.execute(sa.select(pbx_accounts).order_by(pbx_accounts.c.name))).all()


async def pbx_tenant_ids(conn: AsyncConnection, *, pbx_id: int) -> list[int]:
    result = await conn.execute(
        sa.select(pbx_tenants.c.tenant_id)
        .where(pbx_tenants.c.pbx_id == pbx_id)
        .order_by(pbx_tenants.c.tenant_id)
    )
    return [int(v) for v in result.scalars()]


async def insert_pbx_tenant(conn: AsyncConnection, *, pbx_id: int, tenant_id: int) -> None:
    found = await conn.execute(
        sa.select(pbx_tenants.c.pbx_id).where(
            pbx_tenants.c.pbx_id == pbx_id, pbx_tenants.c.tenant_id == tenant_id
        )
    )
    if found.first() is None:
        await conn.execute(pbx_tenants.insert().values(pbx_id=pbx_id, tenant_id=tenant_id))


async def delete_pbx_tenant(conn: AsyncConnection, *, pbx_id: int, tenant_id: int) -> bool:
    result = await conn.execute(
        pbx_tenants.delete().where(
            pbx_tenants.c.pbx_id == pbx_id, pbx_tenants.c.tenant_id == tenant_id
        )
    )
    return result.rowcount == 1


async def update_pbx(conn: AsyncConnection, *, pbx_id: int, **values: Any) -> None:
    await conn.execute(pbx_accounts.update().where(pbx_accounts.c.id == pbx_id).values(**values))


async def insert_route(conn: AsyncConnection, *, number: str, tenant_id: int, now: int) -> None:
    await conn.execute(
        routing_numbers.insert().values(number_norm=number, tenant_id=tenant_id, created_at=now)
    )


async def delete_route(conn: AsyncConnection, *, number: str) -> bool:
    result = await conn.execute(
        routing_numbers.delete().where(routing_numbers.c.number_norm == number)
    )
    return result.rowcount == 1


async def list_routes(conn: AsyncConnection) -> Sequence[AnyRow]:
    select = sa.select(routing_numbers).order_by(routing_numbers.c.number_norm)
    return (await conn.execute(select)).all()


async def tenant_of_route(conn: AsyncConnection, *, number: str) -> int | None:
    result = await conn.execute(
        sa.select(routing_numbers.c.tenant_id).where(routing_numbers.c.number_norm == number)
    )
    value = result.scalar_one_or_none()
    return None if value is None else int(value)
