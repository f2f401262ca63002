"""ListCallLogs: validate the request, page through the tenant's calls, shape the response."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.calllogs import repository
from callhistory.calllogs.query import parse_request
from callhistory.calllogs.schemas import (
    CallLog,
    CallTarget,
    ListCallLogsRequest,
    ListCallLogsResponse,
)
from callhistory.db.engine import Database, transaction
from callhistory.directory import repository as directory
from callhistory.ids import format_id
from callhistory.ingest import repository as legs
from callhistory.keys.schemas import Principal
from callhistory.paging import CursorCodec, Key, paginate
from callhistory.times import format_micros, now_micros

SORTS = tuple(f"{sign}{name}" for name in repository.SORT_COLUMNS for sign in ("", "-"))
_encoder = msgspec.json.Encoder()


def render(row: Mapping[str, Any]) -> bytes:
    """The wire JSON of one call log from its stored columns: what the ``doc`` column holds, so
    that a page is served by joining stored documents (rendered once, when the call is written)."""
    return _encoder.encode(
        CallLog(
            call_state=row["call_state"],
            call_status=row["call_status"],
            call_targets=cast(list[CallTarget], msgspec.Raw(row["call_targets"])),
            callee=row["callee"],
            caller=row["caller"],
            contact_id=format_id(row["contact_id"]),
            created_at=format_micros(row["created_at"]),
            direction=row["direction"],
            duration=row["duration"],
            ended_at=format_micros(row["ended_at"]),
            extension_id=format_id(row["extension_id"]),
            external_id=row["external_id"] or "",
            external_session_id=row["external_session_id"] or "",
            hotline_id=format_id(row["hotline_id"]),
            id=str(row["id"]),
            note=row["note"],
            recording_urls=cast(list[str], msgspec.Raw(row["recording_urls"])),
            started_at=format_micros(row["started_at"]),
            updated_at=format_micros(row["updated_at"]),
            user_id=format_id(row["user_id"]),
        )
    )


async def list_call_logs(
    conn: AsyncConnection, *, principal: Principal, request: ListCallLogsRequest, secret: bytes
) -> ListCallLogsResponse:
    query, page = parse_request(request, timezone=principal.timezone, allowed_sorts=SORTS)
    tenant_id = principal.tenant_id
    codec = CursorCodec(
        secret=secret, tenant_id=tenant_id, sort=page.sort, filter_key=_encoder.encode(query)
    )
    if query.department_id is not None:
        members = await directory.department_members(
            conn, tenant_id=tenant_id, department_id=query.department_id
        )
        query = msgspec.structs.replace(query, members=members)

    async def fetch(
        key: Key | None, forward: bool, limit: int, inclusive: bool
    ) -> list[Sequence[Any]]:
        return await repository.fetch_page(
            conn,
            tenant_id=tenant_id,
            query=query,
            sort=page.sort,
            key=key,
            forward=forward,
            limit=limit,
            inclusive=inclusive,
        )

    async def exists(key: Key, forward: bool) -> bool:
        return await repository.exists_beyond(
            conn, tenant_id=tenant_id, query=query, sort=page.sort, key=key, forward=forward
        )

    result = await paginate(
        request=page,
        codec=codec,
        fetch=fetch,
        exists=exists,
        key_of=lambda row: (row[0], row[1]),
    )
    documents = [msgspec.Raw(doc) for _, _, doc in result.rows]
    return ListCallLogsResponse(call_logs=cast(list[CallLog], documents), paging=result.paging)


_MONTH = 31 * 86_400_000_000


async def prepare_partitions(conn: AsyncConnection) -> None:
    """Create this month's and the next two months' partitions ahead of time (PostgreSQL)."""
    now = now_micros()
    await repository.ensure_partitions(conn, started=[now + i * _MONTH for i in range(3)])


async def apply_retention(db: Database, *, older_than_days: int) -> int:
    """Remove every tenant's calls (and their PBX legs) that started more than
    ``older_than_days`` ago; returns how many calls. On PostgreSQL whole months go as
    partitions first, each in its own transactions; the rest in one transaction."""
    cutoff = now_micros() - older_than_days * 86_400_000_000
    removed = 0
    if db.dialect == "postgresql":
        removed += await repository.drop_partitions_before(db.writer, cutoff=cutoff)
    async with transaction(db, write=True) as conn:
        await legs.delete_legs_older_than(conn, cutoff=cutoff)
        removed += await repository.delete_older_than(conn, cutoff=cutoff)
    return removed
