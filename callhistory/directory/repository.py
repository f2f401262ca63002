"""All SQL on the directory tables; every function takes the tenant and scopes by it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.engine import ALL_TENANTS, fetch, keyset_past
from callhistory.db.tables import AnyRow, departments, extensions, hotlines, users
from callhistory.kit.paging import Key

# The directory's records, by the name of their table (which is also their cursors' filter key).
Kind = Literal["hotlines", "departments", "users", "extensions"]
_TABLES: dict[str, sa.Table] = {
    "hotlines": hotlines,
    "departments": departments,
    "users": users,
    "extensions": extensions,
}
Row = AnyRow


async def insert(
    conn: AsyncConnection, *, kind: Kind, tenant_id: int, values: dict[str, Any]
) -> None:
    table = _TABLES[kind]
    await conn.execute(table.insert().values(tenant_id=tenant_id, **values))


async def get(
    conn: AsyncConnection, *, kind: Kind, tenant_id: int, record_id: int
) -> AnyRow | None:
    table = _TABLES[kind]
    result = await conn.execute(
        sa.select(table).where(table.c.tenant_id == tenant_id, table.c.id == record_id)
    )
    return result.first()


async def update(
    conn: AsyncConnection,
    *,
    kind: Kind,
    tenant_id: int,
    record_id: int,
    values: dict[str, Any],
) -> AnyRow | None:
    table = _TABLES[kind]
    result = await conn.execute(
        table.update()
        .where(table.c.tenant_id == tenant_id, table.c.id == record_id)
        .values(**values)
        .returning(*table.c)
    )
    return result.first()


def _scan(
    columns: Iterable[sa.ColumnElement[Any]],
    *,
    kind: Kind,
    tenant_id: int,
    sort: str,
    key: Key | None,
    forward: bool,
    limit: int,
    inclusive: bool = False,
) -> sa.Select[Any]:
    table = _TABLES[kind]
    column = table.c[sort.lstrip("-")]
    descending = sort.startswith("-") == forward
    select = sa.select(*columns).where(table.c.tenant_id == tenant_id)
    if key is not None:
        select = select.where(
            keyset_past((column, table.c.id), key, descending=descending, inclusive=inclusive)
        )
    if descending:
        return select.order_by(column.desc(), table.c.id.desc()).limit(limit)
    return select.order_by(column.asc(), table.c.id.asc()).limit(limit)


async def fetch_page(
    conn: AsyncConnection,
    *,
    kind: Kind,
    tenant_id: int,
    sort: str,
    key: Key | None,
    forward: bool,
    limit: int,
    inclusive: bool,
) -> list[AnyRow]:
    table = _TABLES[kind]
    select = _scan(
        table.c,
        kind=kind,
        tenant_id=tenant_id,
        sort=sort,
        key=key,
        forward=forward,
        limit=limit,
        inclusive=inclusive,
    )
    return list((await conn.execute(select)).all())


async def exists_beyond(
    conn: AsyncConnection, *, kind: Kind, tenant_id: int, sort: str, key: Key, forward: bool
) -> bool:
    table = _TABLES[kind]
    select = _scan(
        (table.c.id,),
        kind=kind,
        tenant_id=tenant_id,
        sort=sort,
        key=key,
        forward=forward,
        limit=1,
    )
    return (await conn.execute(select)).first() is not None


_MEMBERS = (
    sa.select(users.c.id)
    .where(
        users.c.tenant_id == sa.bindparam("tenant_id"),
        users.c.department_id == sa.bindparam("department_id"),
    )
    .order_by(users.c.id)
)


async def department_members(
    conn: AsyncConnection, *, tenant_id: int, department_id: int
) -> tuple[int, ...]:
    """The department's users, on the hot path of ListCallLogs' department filter, so run on
    the driver (``fetch``)."""
    rows = await fetch(conn, _MEMBERS, {"tenant_id": tenant_id, "department_id": department_id})
    return tuple(row[0] for row in rows)


class ExtensionRef(NamedTuple):
    id: int
    user_id: int | None
    hotline_id: int | None


_EXTENSIONS = sa.select(
    extensions.c.extension_number, extensions.c.id, extensions.c.user_id, extensions.c.hotline_id
).where(extensions.c.tenant_id == sa.bindparam("tenant_id"))
_HOTLINES = sa.select(hotlines.c.hotline_norm, hotlines.c.id).where(
    hotlines.c.tenant_id == sa.bindparam("tenant_id")
)


async def extensions_by_number(conn: AsyncConnection, *, tenant_id: int) -> dict[str, ExtensionRef]:
    """The tenant's extensions by number (used to attribute ingested calls), on the driver
    like ``hotlines_by_number``: every ingest batch reads both."""
    rows = await fetch(conn, _EXTENSIONS, {"tenant_id": tenant_id})
    return {number: ExtensionRef(*rest) for number, *rest in rows}


async def hotlines_by_number(conn: AsyncConnection, *, tenant_id: int) -> dict[str, int]:
    """The tenant's hotline ids by normalised number."""
    rows = await fetch(conn, _HOTLINES, {"tenant_id": tenant_id})
    return {number: hotline_id for number, hotline_id in rows}


async def existing_ids(
    conn: AsyncConnection, *, kind: Kind, tenant_id: int, ids: Iterable[int]
) -> set[int]:
    table = _TABLES[kind]
    wanted = sorted(set(ids))
    found: set[int] = set()
    for start in range(0, len(wanted), 500):
        result = await conn.execute(
            sa.select(table.c.id).where(
                table.c.tenant_id == tenant_id, table.c.id.in_(wanted[start : start + 500])
            )
        )
        found.update(result.scalars())
    return found


async def extension_passwords(conn: AsyncConnection) -> list[tuple[int, int, str]]:
    """(tenant, extension, stored password) of every tenant's extensions (resealing)."""
    result = await conn.execute(
        sa.select(extensions.c.tenant_id, extensions.c.id, extensions.c.extension_password),
        execution_options=ALL_TENANTS,
    )
    return [(int(t), int(i), str(p)) for t, i, p in result]


async def set_extension_password(
    conn: AsyncConnection, *, tenant_id: int, extension_id: int, value: str
) -> None:
    await conn.execute(
        extensions.update()
        .where(extensions.c.tenant_id == tenant_id, extensions.c.id == extension_id)
        .values(extension_password=value)
    )


_USER_DEPARTMENTS = sa.select(users.c.id, users.c.department_id).where(
    users.c.tenant_id == sa.bindparam("tenant_id"), users.c.department_id.isnot(None)
)


async def user_departments(conn: AsyncConnection, *, tenant_id: int) -> dict[int, int]:
    """Each of the tenant's users' department (users without one are left out)."""
    rows = await fetch(conn, _USER_DEPARTMENTS, {"tenant_id": tenant_id})
    return {int(user): int(department) for user, department in rows}
