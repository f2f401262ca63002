"""Directory rules: creating and listing hotlines, departments, users and extensions, and
(un)assigning users to extensions. A reference to an id outside the tenant is ``not_found``."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.directory import repository
from callhistory.directory.repository import Kind as Kind  # other domains name kinds too
from callhistory.directory.repository import Row
from callhistory.directory.schemas import (
    DepartmentCreate,
    DepartmentRead,
    ExtensionCreate,
    ExtensionRead,
    HotlineCreate,
    HotlineRead,
    UserCreate,
    UserRead,
)
from callhistory.kit import ids
from callhistory.kit.errors import AlreadyExists, InvalidArgument, NotFound
from callhistory.kit.numbers import normalize
from callhistory.kit.paging import CursorCodec, Key, paginate, parse_paging
from callhistory.kit.schemas import Id, Paging, PagingRead
from callhistory.kit.sealing import Sealer
from callhistory.kit.times import format_micros, now_micros
from callhistory.principal import Principal, Scope

SORTS = ("-created_at", "created_at")

# What other domains read of the directory: ingest attributes calls to extensions and
# hotlines by number and checks the ids it is given; ListCallLogs filters by a department;
# statistics group by department.
ExtensionRef = repository.ExtensionRef
department_members = repository.department_members
extensions_by_number = repository.extensions_by_number
hotlines_by_number = repository.hotlines_by_number
existing_ids = repository.existing_ids
user_departments = repository.user_departments
T = TypeVar("T")


def hotline_read(row: Any) -> HotlineRead:
    return HotlineRead(
        id=str(row.id),
        hotline=row.hotline,
        name=row.name,
        description=row.description,
        network=row.network,
        is_free_charge=row.is_free_charge,
        status=row.status,
        created_at=format_micros(row.created_at),
        updated_at=format_micros(row.updated_at),
    )


def department_read(row: Any) -> DepartmentRead:
    return DepartmentRead(
        id=str(row.id),
        name=row.name,
        created_at=format_micros(row.created_at),
        updated_at=format_micros(row.updated_at),
    )


def user_read(row: Any) -> UserRead:
    return UserRead(
        id=str(row.id),
        full_name=row.full_name,
        email=row.email,
        phone=row.phone,
        department_id=ids.format_id(row.department_id),
        created_at=format_micros(row.created_at),
        updated_at=format_micros(row.updated_at),
    )


def _password_context(tenant_id: int, extension_id: int) -> str:
    return f"extension:{tenant_id}:{extension_id}"


def extension_reader(principal: Principal, sealer: Sealer) -> Callable[[Any], ExtensionRead]:
    """Rows as the API shows them: the SIP password to admin keys only ("" to the others)."""
    admin = principal.scope is Scope.ADMIN

    def read(row: Any) -> ExtensionRead:
        context = _password_context(principal.tenant_id, row.id)
        return ExtensionRead(
            id=str(row.id),
            extension_number=row.extension_number,
            extension_password=sealer.open(row.extension_password, context=context)
            if admin
            else "",
            hotline_id=ids.format_id(row.hotline_id),
            user_id=ids.format_id(row.user_id),
            tenant_id=str(principal.tenant_id),
            tenant_domain=principal.tenant_domain,
            account_id=ids.format_id(row.account_id),
            subscription_id=ids.format_id(row.subscription_id),
            state=row.state,
            created_at=format_micros(row.created_at),
            updated_at=format_micros(row.updated_at),
            expires_at=format_micros(row.expires_at),
        )

    return read


async def _create(
    conn: AsyncConnection, *, kind: Kind, principal: Principal, values: dict[str, Any]
) -> Row:
    now = now_micros()
    record_id = values.get("id") or ids.new_id()
    row = {"id": record_id, "created_at": now, "updated_at": now, **values}
    await repository.insert(conn, kind=kind, tenant_id=principal.tenant_id, values=row)
    stored = await repository.get(
        conn, kind=kind, tenant_id=principal.tenant_id, record_id=record_id
    )
    assert stored is not None
    return stored


async def _require(
    conn: AsyncConnection, *, kind: Kind, principal: Principal, value: Id, field: str
) -> int | None:
    """Parse an optional reference and check it names a record of the caller's tenant."""
    record_id = ids.parse_id(value, field)
    if record_id is not None and not await repository.get(
        conn, kind=kind, tenant_id=principal.tenant_id, record_id=record_id
    ):
        raise NotFound(f"{field}: no such record in this tenant", field=field)
    return record_id


async def create_hotline(
    conn: AsyncConnection, *, principal: Principal, request: HotlineCreate
) -> HotlineRead:
    norm = normalize(request.hotline)
    if not norm.lstrip("+").isdigit():
        raise InvalidArgument("hotline", "must be a phone number")
    values = {
        "hotline": request.hotline,
        "hotline_norm": norm,
        "name": request.name,
        "description": request.description,
        "network": request.network,
        "is_free_charge": request.is_free_charge,
        "status": "P",
    }
    return hotline_read(await _create(conn, kind="hotlines", principal=principal, values=values))


async def create_department(
    conn: AsyncConnection, *, principal: Principal, request: DepartmentCreate
) -> DepartmentRead:
    row = await _create(
        conn, kind="departments", principal=principal, values={"name": request.name}
    )
    return department_read(row)


async def create_user(
    conn: AsyncConnection, *, principal: Principal, request: UserCreate
) -> UserRead:
    department_id = await _require(
        conn,
        kind="departments",
        principal=principal,
        value=request.department_id,
        field="department_id",
    )
    values = {
        "full_name": request.full_name,
        "email": request.email,
        "phone": request.phone,
        "department_id": department_id,
    }
    return user_read(await _create(conn, kind="users", principal=principal, values=values))


async def create_extension(
    conn: AsyncConnection, *, principal: Principal, request: ExtensionCreate, sealer: Sealer
) -> ExtensionRead:
    number = str(request.extension_number)
    if not (number.isascii() and number.isdigit() and 1 <= len(number) <= 16):
        raise InvalidArgument("extension_number", "must be 1 to 16 digits")
    hotline_id = await _require(
        conn, kind="hotlines", principal=principal, value=request.hotline_id, field="hotline_id"
    )
    user_id = await _require(
        conn, kind="users", principal=principal, value=request.user_id, field="user_id"
    )
    extension_id = ids.new_id()
    password = secrets.token_urlsafe(12)
    values = {
        "id": extension_id,
        "extension_number": number,
        "extension_password": sealer.seal(
            password, context=_password_context(principal.tenant_id, extension_id)
        ),
        "hotline_id": hotline_id,
        "user_id": user_id,
        "state": "P",
    }
    try:
        async with conn.begin_nested():
            row = await _create(conn, kind="extensions", principal=principal, values=values)
    except IntegrityError:
        raise AlreadyExists(
            f"extension_number {number} already exists in this tenant", field="extension_number"
        ) from None
    return extension_reader(principal, sealer)(row)


async def update_extension_user(
    conn: AsyncConnection,
    *,
    principal: Principal,
    extension_id: Id,
    user_id: Id | None,
    sealer: Sealer,
) -> ExtensionRead:
    """Assign a user to an extension, or remove its user when ``user_id`` is None."""
    ext_id = ids.parse_id(extension_id, "extension_id")
    if ext_id is None:
        raise InvalidArgument("extension_id", "is required")
    new_user = None
    if user_id is not None:
        new_user = await _require(
            conn, kind="users", principal=principal, value=user_id, field="user_id"
        )
        if new_user is None:
            raise InvalidArgument("user_id", "is required")
    row = await repository.update(
        conn,
        kind="extensions",
        tenant_id=principal.tenant_id,
        record_id=ext_id,
        values={"user_id": new_user, "updated_at": now_micros()},
    )
    if row is None:
        raise NotFound("extension_id: no such extension in this tenant", field="extension_id")
    return extension_reader(principal, sealer)(row)


async def _list(
    conn: AsyncConnection,
    *,
    kind: Kind,
    principal: Principal,
    paging: Paging | None,
    secret: bytes,
    read: Callable[[Any], T],
) -> tuple[list[T], PagingRead]:
    page = parse_paging(paging, default_sort="-created_at", allowed_sorts=SORTS)
    tenant_id = principal.tenant_id
    codec = CursorCodec(
        secret=secret, tenant_id=tenant_id, sort=page.sort, filter_key=kind.encode()
    )

    async def fetch(key: Key | None, forward: bool, limit: int, inclusive: bool) -> list[Row]:
        return await repository.fetch_page(
            conn,
            kind=kind,
            tenant_id=tenant_id,
            sort=page.sort,
            key=key,
            forward=forward,
            limit=limit,
            inclusive=inclusive,
        )

    async def exists(key: Key, forward: bool) -> bool:
        return await repository.exists_beyond(
            conn, kind=kind, tenant_id=tenant_id, sort=page.sort, key=key, forward=forward
        )

    result = await paginate(
        request=page, codec=codec, fetch=fetch, exists=exists, key_of=lambda r: (r.created_at, r.id)
    )
    return [read(row) for row in result.rows], result.paging


async def reseal_passwords(conn: AsyncConnection, *, sealer: Sealer) -> int:
    """Seal every SIP password not sealed with the current key (stored before sealing, or
    under an earlier key); how many were. Run when the service starts."""
    count = 0
    for tenant_id, extension_id, stored in await repository.extension_passwords(conn):
        if sealer.current(stored):
            continue
        context = _password_context(tenant_id, extension_id)
        plain = sealer.open(stored, context=context)
        if not plain:
            continue  # sealed with a key no longer configured: left for that key's return
        await repository.set_extension_password(
            conn,
            tenant_id=tenant_id,
            extension_id=extension_id,
            value=sealer.seal(plain, context=context),
        )
        count += 1
    return count


async def list_hotlines(
    conn: AsyncConnection, *, principal: Principal, paging: Paging | None, secret: bytes
) -> tuple[list[HotlineRead], PagingRead]:
    return await _list(
        conn, kind="hotlines", principal=principal, paging=paging, secret=secret, read=hotline_read
    )


async def list_departments(
    conn: AsyncConnection, *, principal: Principal, paging: Paging | None, secret: bytes
) -> tuple[list[DepartmentRead], PagingRead]:
    return await _list(
        conn,
        kind="departments",
        principal=principal,
        paging=paging,
        secret=secret,
        read=department_read,
    )


async def list_users(
    conn: AsyncConnection, *, principal: Principal, paging: Paging | None, secret: bytes
) -> tuple[list[UserRead], PagingRead]:
    return await _list(
        conn, kind="users", principal=principal, paging=paging, secret=secret, read=user_read
    )


async def list_extensions(
    conn: AsyncConnection,
    *,
    principal: Principal,
    paging: Paging | None,
    secret: bytes,
    sealer: Sealer,
) -> tuple[list[ExtensionRead], PagingRead]:
    return await _list(
        conn,
        kind="extensions",
        principal=principal,
        paging=paging,
        secret=secret,
        read=extension_reader(principal, sealer),
    )
