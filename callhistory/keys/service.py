"""Tenants and keys: creation, revocation, and authenticating a request's bearer key."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory import ids
from callhistory.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from callhistory.keys import repository
from callhistory.keys.schemas import (
    ApiKeyCreated,
    ApiKeyRead,
    Principal,
    Scope,
    TenantRead,
    TenantStatus,
)
from callhistory.times import format_micros, now_micros, valid_zone

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
KEY_PREFIX = "ch_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


async def create_tenant(
    conn: AsyncConnection, *, name: str, timezone: str = DEFAULT_TIMEZONE, domain: str = ""
) -> TenantRead:
    if not name.strip():
        raise InvalidArgument("name", "must not be empty")
    if not valid_zone(timezone):
        raise InvalidArgument("timezone", f"unknown time zone {timezone!r}")
    tenant_id = ids.new_id()
    now = now_micros()
    try:
        async with conn.begin_nested():
            await repository.insert_tenant(
                conn,
                tenant_id=tenant_id,
                name=name,
                domain=domain.lower() or None,
                timezone=timezone,
                status=TenantStatus.ACTIVE,
                now=now,
            )
    except IntegrityError:
        raise AlreadyExists(f"a tenant with domain {domain!r} already exists") from None
    return TenantRead(
        id=str(tenant_id),
        name=name,
        domain=domain.lower(),
        timezone=timezone,
        status=TenantStatus.ACTIVE,
        created_at=format_micros(now),
    )


async def set_tenant_status(conn: AsyncConnection, *, tenant_id: int, status: TenantStatus) -> None:
    if not await repository.set_tenant_status(
        conn, tenant_id=tenant_id, status=status, now=now_micros()
    ):
        raise NotFound(f"tenant {tenant_id} does not exist")


async def create_key(conn: AsyncConnection, *, tenant_id: int, scope: Scope) -> ApiKeyCreated:
    if await repository.get_tenant(conn, tenant_id=tenant_id) is None:
        raise NotFound(f"tenant {tenant_id} does not exist")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = ids.new_id()
    await repository.insert_key(
        conn,
        key_id=key_id,
        tenant_id=tenant_id,
        key_hash=hash_key(key),
        scope=scope,
        now=now_micros(),
    )
    return ApiKeyCreated(id=str(key_id), key=key, scope=scope, tenant_id=str(tenant_id))


async def revoke_key(conn: AsyncConnection, *, key_id: int) -> ApiKeyRead:
    row = await repository.revoke_key(conn, key_id=key_id, now=now_micros())
    if row is None:
        raise NotFound(f"key {key_id} does not exist")
    return ApiKeyRead(
        id=str(row.id), scope=Scope(row.scope), tenant_id=str(row.tenant_id), revoked=True
    )


async def authenticate(conn: AsyncConnection, *, key: str, needed: Scope) -> Principal:
    """The principal of a bearer key, or ``unauthenticated`` / ``permission_denied``."""
    if not key.startswith(KEY_PREFIX) or len(key) > 128:
        raise Unauthenticated("unknown API key")
    digest = hash_key(key)
    row = await repository.find_active_key(conn, key_hash=digest)
    if row is None:
        raise Unauthenticated("unknown or revoked API key")
    key_id, key_hash, scope, tenant_id, domain, timezone, status = row
    # The lookup is by hash; compare again in constant time so no code path compares secrets
    # byte by byte.
    if not hmac.compare_digest(str(key_hash), digest):
        raise Unauthenticated("unknown or revoked API key")
    if status != TenantStatus.ACTIVE:
        raise PermissionDenied("this tenant is suspended")
    principal = Principal(
        key_id=key_id,
        tenant_id=tenant_id,
        tenant_domain=domain or "",
        timezone=timezone,
        scope=Scope(scope),
    )
    if not principal.allows(needed):
        raise PermissionDenied(f"this method needs a key with scope {needed.value!r}")
    return principal


async def cursor_secret(conn: AsyncConnection) -> bytes:
    value = await repository.get_state(conn, name="cursor_secret")
    if value is None:
        raise RuntimeError("the database has no cursor secret: run `callhistory migrate`")
    return bytes.fromhex(value)


async def tenant_principal(conn: AsyncConnection, *, tenant_id: int) -> Principal:
    """Acting for a tenant on the operator's behalf (a shared PBX's credentials)."""
    row = await repository.get_tenant(conn, tenant_id=tenant_id)
    if row is None:
        raise NotFound(f"tenant {tenant_id} does not exist")
    if row.status != TenantStatus.ACTIVE:
        raise PermissionDenied("this tenant is suspended")
    return Principal(
        key_id=0,
        tenant_id=row.id,
        tenant_domain=row.domain or "",
        timezone=row.timezone,
        scope=Scope.INGEST,
    )


async def tenant_of_domain(conn: AsyncConnection, *, domain: str) -> int | None:
    row = await repository.find_tenant_by_domain(conn, domain=domain) if domain else None
    return None if row is None else int(row.id)


async def get_tenant(conn: AsyncConnection, *, principal: Principal) -> TenantRead:
    row = await repository.get_tenant(conn, tenant_id=principal.tenant_id)
    if row is None:
        raise NotFound("this key's tenant no longer exists")
    return TenantRead(
        id=str(row.id),
        name=row.name,
        domain=row.domain or "",
        timezone=row.timezone,
        status=TenantStatus(row.status),
        created_at=format_micros(row.created_at),
    )
