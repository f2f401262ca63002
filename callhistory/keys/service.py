"""Tenants and keys: creation, revocation, and authenticating a request's bearer key."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.keys import repository
from callhistory.keys.schemas import (
    ApiKeyCreated,
    ApiKeyListed,
    ApiKeyRead,
    PbxCreated,
    PbxPrincipal,
    PbxRead,
    RoutingNumber,
    TenantRead,
    TenantStatus,
)
from callhistory.kit import ids
from callhistory.kit.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from callhistory.kit.numbers import normalize
from callhistory.kit.sealing import Sealer, parse_key, parse_keys
from callhistory.kit.times import format_micros, now_micros, valid_zone
from callhistory.principal import Principal, Scope

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
KEY_PREFIX = "ch_"
PBX_PREFIX = "pbx_"
_DAY = 86_400 * 1_000_000
USE_RESOLUTION = 60 * 1_000_000  # a key's last_used_at is kept to the minute
ROTATION_GRACE_HOURS = 24
_PBX_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


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


async def update_tenant_status(
    conn: AsyncConnection, *, tenant_id: int, status: TenantStatus
) -> None:
    if not await repository.update_tenant_status(
        conn, tenant_id=tenant_id, status=status, now=now_micros()
    ):
        raise NotFound(f"tenant {tenant_id} does not exist")


async def create_key(
    conn: AsyncConnection, *, tenant_id: int, scope: Scope, expires_in_days: int | None = None
) -> ApiKeyCreated:
    if await repository.get_tenant(conn, tenant_id=tenant_id) is None:
        raise NotFound(f"tenant {tenant_id} does not exist")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = ids.new_id()
    now = now_micros()
    await repository.insert_key(
        conn, key_id=key_id, tenant_id=tenant_id, key_hash=hash_key(key), scope=scope, now=now
    )
    expires_at = None
    if expires_in_days is not None:
        if expires_in_days < 1:
            raise InvalidArgument("expires_in_days", "must be at least 1")
        expires_at = now + expires_in_days * _DAY
        await repository.set_key_expiry(conn, key_id=key_id, expires_at=expires_at)
    return ApiKeyCreated(
        id=str(key_id),
        key=key,
        scope=scope,
        tenant_id=str(tenant_id),
        expires_at=format_micros(expires_at),
    )


async def list_keys(conn: AsyncConnection, *, tenant_id: int | None) -> list[ApiKeyListed]:
    if tenant_id is not None and await repository.get_tenant(conn, tenant_id=tenant_id) is None:
        raise NotFound(f"tenant {tenant_id} does not exist")
    return [
        ApiKeyListed(
            id=str(row.id),
            tenant_id=str(row.tenant_id),
            scope=Scope(row.scope),
            created_at=format_micros(row.created_at),
            expires_at=format_micros(row.expires_at),
            last_used_at=format_micros(row.last_used_at),
            revoked=row.revoked_at is not None,
        )
        for row in await repository.list_keys(conn, tenant_id=tenant_id)
    ]


def use_is_due(principal: Principal, now: int) -> bool:
    """Whether a request by this key should record its use: at most once a minute a key,
    so that reads do not each become a write."""
    return principal.key_id != 0 and (
        principal.used_at is None or now - principal.used_at >= USE_RESOLUTION
    )


async def record_use(conn: AsyncConnection, *, key_id: int, now: int) -> None:
    await repository.touch_key(conn, key_id=key_id, now=now)


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
    key_id, key_hash, scope, tenant_id, domain, timezone, status, expires_at, last_used = row
    # The lookup is by hash; compare again in constant time so no code path compares secrets
    # byte by byte.
    if not hmac.compare_digest(str(key_hash), digest):
        raise Unauthenticated("unknown or revoked API key")
    now = now_micros()
    if expires_at is not None and now >= expires_at:
        raise Unauthenticated("this API key has expired")
    if status != TenantStatus.ACTIVE:
        raise PermissionDenied("this tenant is suspended")
    principal = Principal(
        key_id=key_id,
        tenant_id=tenant_id,
        tenant_domain=domain or "",
        timezone=timezone,
        scope=Scope(scope),
        used_at=last_used,
    )
    if not principal.allows(needed):
        raise PermissionDenied(f"this method needs a key with scope {needed.value!r}")
    return principal


async def cursor_secret(conn: AsyncConnection) -> bytes:
    value = await repository.get_state(conn, name="cursor_secret")
    if value is None:
        raise RuntimeError("the database has no cursor secret: run `callhistory migrate`")
    return bytes.fromhex(value)


async def sealer(conn: AsyncConnection, *, configured: str) -> Sealer:
    """The sealer of stored secrets: the operator's keys (``CALLHISTORY_DATA_KEY``) first, the
    database's own last."""
    keys = parse_keys(configured)
    stored = await repository.get_state(conn, name="data_key")
    if stored is None:
        raise RuntimeError("the database has no data key: run `callhistory migrate`")
    keys.append(parse_key(stored, variable="the database's data key"))
    return Sealer(keys)


async def require_tenant(conn: AsyncConnection, *, tenant_id: int) -> None:
    """Refuse a tenant id that names no tenant (operator commands)."""
    if await repository.get_tenant(conn, tenant_id=tenant_id) is None:
        raise NotFound(f"tenant {tenant_id} does not exist")


async def tenant_principal(conn: AsyncConnection, *, tenant_id: int) -> Principal:
    """Acting for a tenant on the operator's behalf (a PBX's own credentials)."""
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


async def create_pbx(conn: AsyncConnection, *, name: str, tenant_ids: list[int]) -> PbxCreated:
    """A PBX's own credentials, for the tenants it serves (at least one)."""
    if not _PBX_NAME.fullmatch(name):
        raise InvalidArgument(
            "name", "must be 1-64 lowercase letters, digits, '.', '_' or '-', starting with one"
        )
    if not tenant_ids:
        raise InvalidArgument("tenant", "name at least one tenant this PBX serves")
    for tenant_id in tenant_ids:
        if await repository.get_tenant(conn, tenant_id=tenant_id) is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
    if await repository.find_pbx(conn, name=name) is not None:
        raise AlreadyExists(f"a PBX named {name!r} already exists")
    secret = PBX_PREFIX + secrets.token_urlsafe(32)
    pbx_id = ids.new_id()
    try:
        async with conn.begin_nested():
            await repository.insert_pbx(
                conn, pbx_id=pbx_id, name=name, secret_hash=hash_key(secret), now=now_micros()
            )
    except IntegrityError:  # created at the same moment by another command
        raise AlreadyExists(f"a PBX named {name!r} already exists") from None
    for tenant_id in sorted(set(tenant_ids)):
        await repository.insert_pbx_tenant(conn, pbx_id=pbx_id, tenant_id=tenant_id)
    return PbxCreated(
        name=name,
        secret=secret,
        credentials=f"{name}:{secret}",
        tenant_ids=[str(t) for t in sorted(set(tenant_ids))],
    )


async def _pbx(conn: AsyncConnection, name: str) -> Any:
    row = await repository.find_pbx(conn, name=name)
    if row is None:
        raise NotFound(f"no PBX named {name!r}")
    return row


async def rotate_pbx(
    conn: AsyncConnection, *, name: str, grace_hours: int = ROTATION_GRACE_HOURS
) -> PbxCreated:
    """A new secret; the current one keeps working for ``grace_hours`` (0: stops at once)."""
    row = await _pbx(conn, name)
    if row.revoked_at is not None:
        raise PermissionDenied(f"PBX {name!r} is revoked")
    if grace_hours < 0:
        raise InvalidArgument("grace_hours", "must not be negative")
    secret = PBX_PREFIX + secrets.token_urlsafe(32)
    await repository.update_pbx(
        conn,
        pbx_id=row.id,
        secret_hash=hash_key(secret),
        previous_hash=row.secret_hash if grace_hours else None,
        previous_until=now_micros() + grace_hours * 3_600_000_000 if grace_hours else None,
    )
    tenant_ids = await repository.pbx_tenant_ids(conn, pbx_id=row.id)
    return PbxCreated(
        name=name,
        secret=secret,
        credentials=f"{name}:{secret}",
        tenant_ids=[str(t) for t in tenant_ids],
    )


async def revoke_pbx(conn: AsyncConnection, *, name: str) -> PbxRead:
    row = await _pbx(conn, name)
    await repository.update_pbx(
        conn, pbx_id=row.id, revoked_at=row.revoked_at or now_micros(), previous_hash=None
    )
    return (await list_pbxes(conn, name=name))[0]


async def create_pbx_tenant(conn: AsyncConnection, *, name: str, tenant_id: int) -> PbxRead:
    """Let the PBX write for this tenant."""
    row = await _pbx(conn, name)
    if await repository.get_tenant(conn, tenant_id=tenant_id) is None:
        raise NotFound(f"tenant {tenant_id} does not exist")
    await repository.insert_pbx_tenant(conn, pbx_id=row.id, tenant_id=tenant_id)
    return (await list_pbxes(conn, name=name))[0]


async def delete_pbx_tenant(conn: AsyncConnection, *, name: str, tenant_id: int) -> PbxRead:
    """Stop the PBX writing for this tenant."""
    row = await _pbx(conn, name)
    if not await repository.delete_pbx_tenant(conn, pbx_id=row.id, tenant_id=tenant_id):
        raise NotFound(f"PBX {name!r} does not serve tenant {tenant_id}")
    return (await list_pbxes(conn, name=name))[0]


async def list_pbxes(conn: AsyncConnection, *, name: str | None = None) -> list[PbxRead]:
    rows = [await _pbx(conn, name)] if name else await repository.list_pbxes(conn)
    now = now_micros()
    return [
        PbxRead(
            name=row.name,
            tenant_ids=[str(t) for t in await repository.pbx_tenant_ids(conn, pbx_id=row.id)],
            created_at=format_micros(row.created_at),
            previous_secret_until=(
                format_micros(row.previous_until)
                if row.previous_hash and row.previous_until and row.previous_until > now
                else None
            ),
            revoked=row.revoked_at is not None,
        )
        for row in rows
    ]


async def authenticate_pbx(conn: AsyncConnection, *, name: str, secret: str) -> PbxPrincipal:
    """The PBX these Basic credentials belong to, or ``unauthenticated``."""
    row = await repository.find_pbx(conn, name=name) if _PBX_NAME.fullmatch(name) else None
    digest = hash_key(secret)
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("unknown PBX or wrong secret")
    current = hmac.compare_digest(str(row.secret_hash), digest)
    previous = bool(row.previous_hash) and hmac.compare_digest(str(row.previous_hash), digest)
    if not current and not (previous and (row.previous_until or 0) > now_micros()):
        raise Unauthenticated("unknown PBX or wrong secret")
    tenant_ids = await repository.pbx_tenant_ids(conn, pbx_id=row.id)
    return PbxPrincipal(id=row.id, name=row.name, tenant_ids=frozenset(tenant_ids))


async def create_route(conn: AsyncConnection, *, number: str, tenant_id: int) -> RoutingNumber:
    """Route a PBX's CDRs that came in on ``number`` (and name no tenant's domain) to this
    tenant. A number routes to one tenant only."""
    normalized = normalize(number)
    if not normalized or len(normalized) > 32:
        raise InvalidArgument("number", "must be a phone number")
    if await repository.get_tenant(conn, tenant_id=tenant_id) is None:
        raise NotFound(f"tenant {tenant_id} does not exist")
    owner = await repository.tenant_of_route(conn, number=normalized)
    if owner is not None:
        raise AlreadyExists(f"number {normalized} already routes to tenant {owner}")
    now = now_micros()
    try:
        async with conn.begin_nested():
            await repository.insert_route(conn, number=normalized, tenant_id=tenant_id, now=now)
    except IntegrityError:  # routed at the same moment by another command
        raise AlreadyExists(f"number {normalized} already routes to a tenant") from None
    return RoutingNumber(number=normalized, tenant_id=str(tenant_id), created_at=format_micros(now))


async def delete_route(conn: AsyncConnection, *, number: str) -> None:
    if not await repository.delete_route(conn, number=normalize(number)):
        raise NotFound(f"number {number!r} routes nowhere")


async def list_routes(conn: AsyncConnection) -> list[RoutingNumber]:
    return [
        RoutingNumber(
            number=row.number_norm,
            tenant_id=str(row.tenant_id),
            created_at=format_micros(row.created_at),
        )
        for row in await repository.list_routes(conn)
    ]


async def tenant_of_route(conn: AsyncConnection, *, number: str) -> int | None:
    return await repository.tenant_of_route(conn, number=normalize(number)) if number else None
